package trunkreg

import "time"

// State is where a registration stands.
type State string

// States of a registration.
const (
	StateRegistering  State = "registering"  // the first REGISTER, or a new one after a stop
	StateRegistered   State = "registered"   // the registrar accepted; refreshed before it expires
	StateFailed       State = "failed"       // the last attempt failed; retrying after a backoff
	StateUnregistered State = "unregistered" // stopped (shutdown, reload)
)

// Status is a snapshot of one registration for the admin API.
type Status struct {
	Trunk     string
	State     State
	Registrar string    // the request-URI of the REGISTERs
	Contact   string    // the Contact registered
	Expires   time.Time // when the registration runs out; zero unless registered
	LastError string    // why the last attempt failed; "" after a success
	Failures  int       // failed attempts in a row
	Since     time.Time // when State last changed
	NextTry   time.Time // the next REGISTER (refresh or retry); zero when stopped
}
