package routing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sbc-project/sbc/b2bua/transport"
)

// RegisterSpec makes the SBC register to a trunk on its behalf
// (TrunkSpec.Register): the carrier then sends calls to the Contact the
// SBC registered, whose user is ContactUser.
type RegisterSpec struct {
	Username, Password string // answer the registrar's digest challenges
	// Realm, when set, is the only realm the credentials are given to.
	Realm string
	// Expires is the registration lifetime asked for; the registrar's
	// answer decides.
	Expires time.Duration
	// ContactUser is the user of the Contact registered: calls whose
	// request-URI user equals it are the trunk's (match.trunk).
	ContactUser string
	// Registrar is the registrar's URI when it is not the trunk's; "": the
	// trunk's host, port and transport.
	Registrar string
	// AOR is the user of the address of record (From and To); "": Username.
	AOR string
}

// Registration is a trunk's compiled RegisterSpec. Its fields must not be
// modified.
type Registration struct {
	RegisterSpec
	registrar *Trunk // where REGISTERs go: the registrar URI compiled, or the trunk
}

// compileRegister checks spec and compiles its registrar URI.
func (tr *Trunk) compileRegister(spec RegisterSpec) error {
	switch {
	case spec.Username == "" || spec.Password == "":
		return errors.New("register: username and password are required")
	case spec.Expires < time.Second:
		return fmt.Errorf("register: expires %s is below 1s", spec.Expires)
	case spec.ContactUser == "":
		return errors.New("register: contact_user is required")
	}
	reg := &Registration{RegisterSpec: spec, registrar: tr}
	if spec.Registrar != "" {
		r, err := newTrunk(TrunkSpec{Name: tr.Name, URI: spec.Registrar, TLS: tr.TLS})
		if err != nil {
			return fmt.Errorf("register.registrar: %w", err)
		}
		reg.registrar = r
	}
	tr.Register = reg
	return nil
}

// RequestURI is the request-URI of a REGISTER: the registrar's scheme,
// host and port, no user (RFC 3261 section 10.2).
func (r *Registration) RequestURI() URI { return r.registrar.RequestURI("") }

// Domain is the host of the address of record: the trunk's from_domain,
// else the registrar's host.
func (r *Registration) Domain(tr *Trunk) string {
	if tr.FromDomain != "" {
		return tr.FromDomain
	}
	return r.registrar.Host
}

// Targets are where the REGISTERs go, in the order to try them (as
// Trunk.Targets: RFC 3263 with the table's resolver).
func (r *Registration) Targets(ctx context.Context) ([]transport.Target, error) {
	return r.registrar.Targets(ctx)
}
