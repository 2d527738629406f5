package policy

import (
	"strings"
	"testing"

	"github.com/sbc-project/sbc/internal/config"
)

var (
	planNANP = config.DialRules{CountryCode: "1", NationalPrefix: "1", InternationalPrefix: "011"}
	planUK   = config.DialRules{CountryCode: "44", NationalPrefix: "0", InternationalPrefix: "00"}
	planDE   = config.DialRules{CountryCode: "49", NationalPrefix: "0", InternationalPrefix: "00"}
	planDK   = config.DialRules{CountryCode: "45", NationalPrefix: "", InternationalPrefix: "00"} // closed plan
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name   string
		plan   config.DialRules
		in     string
		want   string
		wantOK bool
	}{
		{"nanp ten digits", planNANP, "2125551234", "+12125551234", true},
		{"nanp national prefix", planNANP, "12125551234", "+12125551234", true},
		{"nanp separators", planNANP, "1 (212) 555-1234", "+12125551234", true},
		{"nanp dots", planNANP, "212.555.1234", "+12125551234", true},
		{"nanp international", planNANP, "011442079460958", "+442079460958", true},
		{"nanp plus", planNANP, "+44 20 7946 0958", "+442079460958", true},
		{"nanp premium", planNANP, "1-900-555-0100", "+19005550100", true},
		{"nanp emergency", planNANP, "911", "", false},
		{"nanp info", planNANP, "411", "", false},
		{"nanp seven digits", planNANP, "5551234", "", false},
		{"nanp operator", planNANP, "0", "", false},
		{"nanp star code", planNANP, "*67", "", false},
		{"uk national", planUK, "020 7946 0958", "+442079460958", true},
		{"uk international", planUK, "0049 30 123456", "+4930123456", true},
		{"uk plus own", planUK, "+442079460958", "+442079460958", true},
		{"uk premium", planUK, "09098790000", "+449098790000", true},
		{"uk emergency", planUK, "999", "", false},
		{"uk 112", planUK, "112", "", false},
		{"uk local", planUK, "79460958", "", false},
		{"uk prefix only", planUK, "0", "", false},
		{"uk intl prefix only", planUK, "00", "", false},
		{"uk intl then zero", planUK, "000123", "", false},
		{"de national", planDE, "030 123456", "+4930123456", true},
		{"de international nanp", planDE, "001 212 555 1234", "+12125551234", true},
		{"de mobile", planDE, "0171-1234567", "+491711234567", true},
		{"closed plan", planDK, "33 12 34 56", "+4533123456", true},
		{"closed plan international", planDK, "0046812345678", "+46812345678", true},
		{"tel uri", planUK, "tel:+44-20-7946-0958", "+442079460958", true},
		{"sip uri with host", planUK, "sip:02079460958@pbx.example", "+442079460958", true},
		{"user=phone params", planUK, "+442079460958;user=phone", "+442079460958", true},
		{"phone-context global", planNANP, "5551234;phone-context=+1-212", "+12125551234", true},
		{"phone-context domain", planNANP, "5551234;phone-context=example.com", "", false},
		{"phone-context ignored for global", planNANP, "+4930123;phone-context=+1212", "+4930123", true},
		{"name", planUK, "alice", "", false},
		{"letters in number", planNANP, "1-800-FLOWERS", "", false},
		{"empty", planUK, "", "", false},
		{"plus only", planUK, "+", "", false},
		{"plus zero", planUK, "+0441234", "", false},
		{"plus letters", planUK, "+44abc", "", false},
		{"sixteen digits", planUK, "+4412345678901234", "", false},
		{"fifteen digits", planUK, "+441234567890123", "+441234567890123", true},
		{"short plus", planUK, "+4490", "+4490", true},
		{"hash", planUK, "#31#0201234", "", false},
		{"percent escape", planUK, "%2B44%20909%20879%200000", "+449098790000", true},
		{"bad percent escape", planUK, "%2G4490", "", false},
		{"too long", planUK, strings.Repeat(" ", 200) + "02079460958", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Normalize(tt.in, tt.plan)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("Normalize(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// FuzzNormalize checks Normalize's contract on any input: ok results are
// "+" and 1 to 15 digits, not starting with 0, and normalizing one again
// gives it back unchanged.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"2125551234", "011442079460958", "+44 20 7946 0958", "tel:5551234;phone-context=+1212", "911", "alice"} {
		f.Add(s)
	}
	plans := []config.DialRules{planNANP, planUK, planDK}
	f.Fuzz(func(t *testing.T, in string) {
		for _, plan := range plans {
			got, ok := Normalize(in, plan)
			if !ok {
				if got != "" {
					t.Fatalf("Normalize(%q) = %q with ok false", in, got)
				}
				continue
			}
			d := got[1:]
			if got[0] != '+' || len(d) < 1 || len(d) > maxE164Digits || d[0] == '0' || !allDigits(d) {
				t.Fatalf("Normalize(%q) = %q: not E.164", in, got)
			}
			if again, ok := Normalize(got, plan); !ok || again != got {
				t.Fatalf("Normalize(%q) = %q, %v; want it unchanged", got, again, ok)
			}
		}
	})
}
