package policy

import (
	"context"
	"strings"
	"testing"
)

// testDialRules is a UK plan with groups for every rule.
func testDialRules() DialRulesSpec {
	cfg := planUK
	cfg.PremiumPrefixes = []string{"+4490", "+44871", "+881"}
	cfg.DefaultGroup = "default"
	cfg.Groups = []DialGroupSpec{
		{Name: "default"},
		{Name: "intl", International: true, Deny: []string{"+7", "+44 20 7946"}},
		{Name: "premium", Premium: true},
		{Name: "everything", International: true, Premium: true, Allow: []string{"*"}},
		{Name: "london", Allow: []string{"+4420"}},
		{Name: "intl-allowed", Allow: []string{"+1", "+4420"}},
	}
	return cfg
}

func TestDialRules(t *testing.T) {
	d, err := NewDialRules(testDialRules())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		target Target
		group  string
		user   string
		cause  string // "" passes
	}{
		{"national default group", TargetTrunks, "", "02071234567", ""},
		{"national named default", TargetTrunks, "default", "+442071234567", ""},
		{"international refused", TargetTrunks, "", "0012125551234", "international"},
		{"international plus refused", TargetTrunks, "", "+4930123456", "international"},
		{"international allowed", TargetTrunks, "intl", "0012125551234", ""},
		{"premium refused", TargetTrunks, "", "09098790000", "premium"},
		{"premium refused for intl", TargetTrunks, "intl", "09098790000", "premium"},
		{"foreign premium refused", TargetTrunks, "intl", "+881612345678", "premium"},
		{"premium allowed", TargetTrunks, "premium", "0909 879 0000", ""},
		{"premium group still national", TargetTrunks, "premium", "+4930123", "international"},
		{"deny first", TargetTrunks, "intl", "+74951234567", "denied"},
		{"deny national range", TargetTrunks, "intl", "020 7946 0000", "denied"},
		{"deny not matching", TargetTrunks, "intl", "020 7947 0000", ""},
		{"allow any", TargetTrunks, "everything", "+881612345678", ""},
		{"allow list match", TargetTrunks, "london", "020 1234 5678", ""},
		{"allow list miss", TargetTrunks, "london", "0161 123 4567", "not_allowed"},
		{"allow list then international", TargetTrunks, "intl-allowed", "+12125551234", "international"},
		{"name open group", TargetTrunks, "", "alice", ""},
		{"short code open group", TargetTrunks, "", "999", ""},
		{"name with allow any", TargetTrunks, "everything", "alice", ""},
		{"name with allow list", TargetTrunks, "london", "alice", "not_a_number"},
		{"empty with allow list", TargetTrunks, "london", "", "not_a_number"},
		{"unreadable", TargetTrunks, "", "+44/2079460958", "unreadable"},
		{"unreadable for intl", TargetTrunks, "intl", "*67 00 7 495 123 4567", "unreadable"},
		{"unreadable for premium", TargetTrunks, "premium", "0044 909 879 0000#x", "unreadable"},
		{"unreadable with allow any", TargetTrunks, "everything", "*67 00 7 495 123 4567", ""},
		{"unknown group", TargetTrunks, "nobody", "02071234567", "unknown_group"},
		{"registered target not checked", TargetRegistered, "nobody", "+881612345678", ""},
		{"echo target not checked", TargetEcho, "", "09098790000", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{Target: tt.target, Group: tt.group, RURIUser: tt.user}
			got := d.Check(context.Background(), r)
			if tt.cause == "" {
				if got.Action != Continue {
					t.Fatalf("Check = %+v, want pass", got)
				}
				return
			}
			want := Decision{Action: Answer, Code: 403, Reason: dialReason, Stage: StageDialRules, Cause: tt.cause}
			if tt.cause == causeUnreadable {
				want.Code, want.Reason = 484, "Address Incomplete"
			}
			if got.Action != want.Action || got.Code != want.Code || got.Reason != want.Reason || got.Stage != want.Stage || got.Cause != want.Cause {
				t.Fatalf("Check = %+v, want %+v", got, want)
			}
		})
	}
}

func TestNewDialRulesErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*DialRulesSpec)
		want string // in the error; "" no error
	}{
		{"valid", func(*DialRulesSpec) {}, ""},
		{"separators in prefixes", func(c *DialRulesSpec) { c.Groups[1].Deny = []string{"+44 (20) 7946"} }, ""},
		{"default group missing", func(c *DialRulesSpec) { c.DefaultGroup = "staff" }, `default group "staff"`},
		{"duplicate group", func(c *DialRulesSpec) { c.Groups[1].Name = "default" }, `groups[1] name "default"`},
		{"empty group name", func(c *DialRulesSpec) { c.Groups[2].Name = "" }, `groups[2] name ""`},
		{"deny without plus", func(c *DialRulesSpec) { c.Groups[1].Deny = []string{"4420"} }, `groups[1].deny[0] "4420"`},
		{"star in deny", func(c *DialRulesSpec) { c.Groups[1].Deny = []string{"*"} }, `groups[1].deny[0] "*"`},
		{"letters in allow", func(c *DialRulesSpec) { c.Groups[4].Allow = []string{"+44x"} }, `groups[4].allow[0]`},
		{"bad premium", func(c *DialRulesSpec) { c.PremiumPrefixes = []string{"+"} }, `premium_prefixes[0] "+"`},
		{"country code", func(c *DialRulesSpec) { c.CountryCode = "+44" }, `country_code "+44"`},
		{"empty country code", func(c *DialRulesSpec) { c.CountryCode = "" }, `country_code ""`},
		{"national prefix", func(c *DialRulesSpec) { c.NationalPrefix = "O" }, `national_prefix "O"`},
		{"international prefix", func(c *DialRulesSpec) { c.InternationalPrefix = "+" }, `international_prefix "+"`},
		{"codes", func(c *DialRulesSpec) { c.AccessCodes, c.FeatureCodes = []string{"9", "0"}, []string{"*67", "#31#"} }, ""},
		{"access code", func(c *DialRulesSpec) { c.AccessCodes = []string{"9", "*9"} }, `access_codes[1] "*9"`},
		{"long access code", func(c *DialRulesSpec) { c.AccessCodes = []string{"99999"} }, `access_codes[0] "99999"`},
		{"feature code", func(c *DialRulesSpec) { c.FeatureCodes = []string{"67"} }, `feature_codes[0] "67"`},
		{"feature code letters", func(c *DialRulesSpec) { c.FeatureCodes = []string{"*6a"} }, `feature_codes[0] "*6a"`},
		{"short digits", func(c *DialRulesSpec) { c.MaxShortDigits = 7 }, "max_short_digits 7"},
		{"negative short digits", func(c *DialRulesSpec) { c.MaxShortDigits = -1 }, "max_short_digits -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testDialRules()
			tt.mod(&cfg)
			d, err := NewDialRules(cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("NewDialRules: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("NewDialRules error = %v, want one with %q", err, tt.want)
			case tt.want != "" && d != nil:
				t.Fatal("NewDialRules returned rules with an error")
			}
		})
	}
}

// TestDialRulesNANPDefaults checks the shipped defaults against North
// American dialing: premium prefixes and every way of writing an
// international number are refused to the default group, national and
// short numbers pass, and what passes is what leg B dials.
func TestDialRulesNANPDefaults(t *testing.T) {
	d, err := NewDialRules(DefaultSpec().DialRules)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user  string
		cause string // "" passes
		dial  string // what leg B dials when it passes
	}{
		{"2125551234", "", "+12125551234"},
		{"1-212-555-1234", "", "+12125551234"},
		{"911", "", "911"},
		{"1000", "", "1000"},
		{"alice", "", "alice"},
		{"9005550100", causePremium, ""},
		{"1 976 555 0100", causePremium, ""},
		{"+8816123456", causePremium, ""},
		{"011 44 20 7946 0958", causeInternational, ""},
		{"011442079460958", causeInternational, ""},
		{"011442079460958#", causeInternational, ""},
		{"*67011442079460958", causeUnreadable, ""},
		{"9011442079460958", causeUnreadable, ""},
		{"00442079460958", causeUnreadable, ""},
		{"+44/2079460958", causeUnreadable, ""},
		{"%2B442079460958", causeInternational, ""},
		{"tel:+442079460958", causeInternational, ""},
		{"2079460958;phone-context=+44", causeInternational, ""},
		{"０１１４４2079460958", causeUnreadable, ""},
		{"x011442079460958", causeUnreadable, ""},
		{"+1 011 442 0794", causeUnreadable, ""},
	}
	for _, tt := range tests {
		r := &Request{Target: TargetTrunks, RURIUser: tt.user}
		got := d.Check(context.Background(), r)
		if got.Cause != tt.cause || (tt.cause == "") != (got.Action == Continue) || r.Dial != tt.dial {
			t.Errorf("%q: %+v, dial %q; want cause %q, dial %q", tt.user, got, r.Dial, tt.cause, tt.dial)
		}
	}
}

// BenchmarkDialRulesDecide is the dial_rules stage's cost per routed
// INVITE, for a PBX plan with codes and a number behind them.
func BenchmarkDialRulesDecide(b *testing.B) {
	d := fuzzRules(b, planPBX)
	b.ReportAllocs()
	for b.Loop() {
		if dd := d.Decide("national", "*67 9 1 (212) 555-1234#"); dd.Action != Continue {
			b.Fatalf("refused: %+v", dd)
		}
	}
}
