package config

import (
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Key is the YAML path with list indexes, e.g. routes[2].match.ruri_user
	// or sip.listeners[0].addr.
	Key string
	// Value is the offending value as text ("" when it is missing).
	Value string
	// Reason says what is wrong, in lower case.
	Reason string
}

// String formats the problem as `key: "value": reason`. The value is quoted
// so that an empty value or one with spaces or colons stays readable.
func (p Problem) String() string {
	return p.Key + ": " + strconv.Quote(p.Value) + ": " + p.Reason
}

// Problems is every problem found in a configuration, in a stable order. Load and Validate return it as their error (use errors.As); it is
// never empty when returned.
type Problems []Problem

// Error lists every problem, one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// add appends a problem.
func (ps *Problems) add(key, value, reason string) {
	*ps = append(*ps, Problem{Key: key, Value: value, Reason: reason})
}

// err returns ps as an error, or nil when there are none (never a typed nil).
func (ps Problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}
