package calls

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sbc-project/sbc/internal/admin"
	"github.com/sbc-project/sbc/internal/config"
	"github.com/sbc-project/sbc/test/e2e"
	"github.com/sbc-project/sbc/test/sipptest"
)

// Addresses of the trunk registration tests.
var (
	registrarIP = e2e.IP(10)
	carrierIP   = e2e.IP(11) // the carrier's calls to the registered Contact
)

// TestTrunkRegistration: the SBC registers a trunk at a SIPp registrar
// that checks the digest (verifyauth), refreshes at half the granted
// time, rides out a 503 with a backoff and registers again, shows the
// state in the admin API and the metrics, takes a call to the registered
// Contact on the trunk's route, and unregisters (Expires: 0) at shutdown.
func TestTrunkRegistration(t *testing.T) {
	e2e.NeedSIPp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reg := sipptest.Start(ctx, t, sipptest.Options{Scenario: filepath.Join("testdata", "trunk_registrar.xml"),
		LocalIP: registrarIP, Timeout: 45 * time.Second, MessageLog: true})
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Mutate: func(c *config.Config) {
		e2e.WithAdmin("")(c)
		c.Trunks = []config.Trunk{{Name: "carrier", URI: "sip:" + reg.Addr().String(), FailureThreshold: 1, OptionsTimeout: time.Second,
			Register: config.TrunkRegister{Username: "acct1", Password: "s3cret", ContactUser: "acct1-in", Expires: time.Minute}}}
		// The carrier's calls to the Contact the SBC registered are the
		// trunk's (match.trunk), whatever address they come from.
		c.Routes = []config.Route{{Name: "from-carrier", Match: config.Match{Trunk: "carrier"}, Target: config.TargetEcho,
			TrustedSources: []string{e2e.Subnet()}}}
	}})
	api := sbc.Admin(t, "")
	failed := waitRegistration(t, api, 20*time.Second, func(r *admin.TrunkRegistration) bool { return r.State == "failed" })
	if failed.NextTry == nil || failed.NextTry.Sub(*failed.Since) < 900*time.Millisecond || failed.LastError == "" {
		t.Errorf("after the 503 with Retry-After: 1: %+v, want a retry at least 1 s later", failed)
	}
	st := waitRegistration(t, api, 20*time.Second, func(r *admin.TrunkRegistration) bool {
		return r.State == "registered" && r.Expires != nil && time.Until(*r.Expires) > 30*time.Second
	})
	if st.Contact == "" || st.LastError != "" || st.Failures != 0 {
		t.Errorf("registration after recovery = %+v", st)
	}
	if v := api.Metrics()[`sbc_trunk_registration_state{trunk="carrier"}`]; v != 1 {
		t.Errorf("sbc_trunk_registration_state = %v, want 1", v)
	}
	if v := api.Metrics()[`sbc_trunk_registration_changes_total{state="failed",trunk="carrier"}`]; v != 1 {
		t.Errorf("failed transitions = %v, want 1 (the 503)", v)
	}
	uac := sipptest.Start(ctx, t, sipptest.Options{Scenario: sipptest.ScenarioPath("call_caller_bye_uac.xml"),
		LocalIP: carrierIP, Remote: sbc.UDP.String(), Timeout: 20 * time.Second, Args: []string{"-s", "acct1-in", "-d", "300"}})
	if err := uac.Wait().Check(1); err != nil {
		t.Errorf("call to the registered contact: %v", err)
	}
	if err := sbc.App.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	res := reg.Wait()
	if err := res.Check(1); err != nil {
		t.Fatalf("registrar scenario (digest, refresh, 503, de-REGISTER): %v", err)
	}
	seqs := map[string]bool{} // UDP retransmissions repeat a CSeq
	for _, m := range res.Received() {
		if m.Method() == "REGISTER" {
			seqs[m.Header("CSeq")] = true
		}
	}
	// Two per registration (challenge, answer): the first, the refresh,
	// the 503 (one), the recovery and the de-REGISTER.
	if len(seqs) != 9 {
		t.Errorf("registrar got %d REGISTERs, want 9: %v", len(seqs), seqs)
	}
}

// waitRegistration polls GET /api/v1/trunks until the carrier's
// registration satisfies ok.
func waitRegistration(t *testing.T, api *e2e.AdminClient, limit time.Duration, ok func(*admin.TrunkRegistration) bool) admin.TrunkRegistration {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last *admin.TrunkRegistration
	for time.Now().Before(deadline) {
		var body struct{ Trunks []admin.Trunk }
		api.JSON("GET", "/api/v1/trunks", "", 200, &body)
		if len(body.Trunks) == 1 && body.Trunks[0].Registration != nil {
			last = body.Trunks[0].Registration
			if ok(last) {
				return *last
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("registration not as wanted after %s: %+v", limit, last)
	return admin.TrunkRegistration{}
}
