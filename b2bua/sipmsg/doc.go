// Package sipmsg is the SBC's one wrapper around the gosip message model:
// parsing raw bytes into sip.Message with the SBC's limits and checks,
// answering unparsable requests with a 400 built from their raw header
// lines, and small accessors and builders the B2BUA uses.
//
// gosip's parser is lenient: it skips header fields it cannot parse, takes
// everything after the blank line as the body whatever Content-Length says,
// and was not written for hostile input. Parse therefore checks the framing
// itself first (line lengths, header count, Content-Length), runs gosip's
// parser under recover, and then checks that every header a transaction and
// a dialog need is present and well formed, so the layers above can rely on
// them.
package sipmsg
