// Package outcome is the vocabulary of how a call attempt ends: the hangup
// causes the SBC produces, the side that ended the call, the call record
// the B2BUA fills for CDRs and metrics, the Observer that receives it, and
// the one classifier (Classify) that turns a cause into the SIP final
// response for the caller, the CDR disposition and the metrics label.
//
// It is a leaf: it imports only the standard library, so that CDR writers,
// metrics and the B2BUA share it without depending on one another (a CDR
// file writer does not pull in the SIP stack, the media engine or the
// policy chain). The README's "Disposition" and "Hangup causes" tables
// document what this package decides; a test keeps them in step.
package outcome
