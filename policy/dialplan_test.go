package policy

import (
	"strings"
	"testing"
)

var (
	planNANP = DialRulesSpec{CountryCode: "1", NationalPrefix: "1", InternationalPrefix: "011", MaxShortDigits: 6}
	planUK   = DialRulesSpec{CountryCode: "44", NationalPrefix: "0", InternationalPrefix: "00", MaxShortDigits: 6}
	planDE   = DialRulesSpec{CountryCode: "49", NationalPrefix: "0", InternationalPrefix: "00", MaxShortDigits: 6}
	planDK   = DialRulesSpec{CountryCode: "45", NationalPrefix: "", InternationalPrefix: "00", MaxShortDigits: 6} // closed plan
	// planPBX is NANP behind a PBX: 9 for an outside line, *67 and *82 for
	// caller-ID blocking and unblocking.
	planPBX = DialRulesSpec{CountryCode: "1", NationalPrefix: "1", InternationalPrefix: "011",
		AccessCodes: []string{"9"}, FeatureCodes: []string{"*67", "*82"}, MaxShortDigits: 6}
	// planDEPBX is Germany behind a PBX whose outside line is 0, the
	// national prefix too.
	planDEPBX = DialRulesSpec{CountryCode: "49", NationalPrefix: "0", InternationalPrefix: "00",
		AccessCodes: []string{"0"}, MaxShortDigits: 4}
)

func readNumber(s string) Dialed { return Dialed{Kind: DialNumber, Number: s} }
func readShort(s string) Dialed  { return Dialed{Kind: DialShort, Number: s} }
func readName(s string) Dialed   { return Dialed{Kind: DialName, Number: s} }

var readNothing = Dialed{}

// dialPlanCases are dialed strings and how plans read them.
var dialPlanCases = []struct {
	name string
	plan DialRulesSpec
	in   string
	want Dialed
}{
	{"nanp ten digits", planNANP, "2125551234", readNumber("+12125551234")},
	{"nanp national prefix", planNANP, "12125551234", readNumber("+12125551234")},
	{"nanp separators", planNANP, "1 (212) 555-1234", readNumber("+12125551234")},
	{"nanp dots", planNANP, "212.555.1234", readNumber("+12125551234")},
	{"nanp international", planNANP, "011442079460958", readNumber("+442079460958")},
	{"nanp plus", planNANP, "+44 20 7946 0958", readNumber("+442079460958")},
	{"nanp premium", planNANP, "1-900-555-0100", readNumber("+19005550100")},
	{"nanp send key", planNANP, "011442079460958#", readNumber("+442079460958")},
	{"nanp two send keys", planNANP, "011442079460958##", readNothing},
	{"nanp unknown feature code", planNANP, "*67011442079460958", readNothing},
	{"nanp unknown access code", planNANP, "9011442079460958", readNothing},
	{"nanp european prefix", planNANP, "00442079460958", readNothing},
	{"nanp slash", planNANP, "+44/2079460958", readNothing},
	{"nanp area code 0", planNANP, "+10114420794", readNothing},
	{"nanp exchange 1", planNANP, "2121551234", readNothing},
	{"nanp emergency", planNANP, "911", readShort("911")},
	{"nanp info", planNANP, "411", readShort("411")},
	{"nanp extension", planNANP, "1000", readShort("1000")},
	{"nanp extension send key", planNANP, "1000#", readShort("1000#")},
	{"nanp seven digits", planNANP, "5551234", readNothing},
	{"nanp operator", planNANP, "0", readShort("0")},
	{"nanp star code", planNANP, "*67", readShort("*67")},
	{"nanp voicemail", planNANP, "*97", readShort("*97")},
	{"nanp incomplete international", planNANP, "011", readNothing},
	{"nanp international country code only", planNANP, "0114", readNumber("+4")},
	{"uk national", planUK, "020 7946 0958", readNumber("+442079460958")},
	{"uk international", planUK, "0049 30 123456", readNumber("+4930123456")},
	{"uk plus own", planUK, "+442079460958", readNumber("+442079460958")},
	{"uk premium", planUK, "09098790000", readNumber("+449098790000")},
	{"uk emergency", planUK, "999", readShort("999")},
	{"uk 112", planUK, "112", readShort("112")},
	{"uk local", planUK, "79460958", readNothing},
	{"uk prefix only", planUK, "0", readShort("0")},
	{"uk intl prefix only", planUK, "00", readNothing},
	{"uk intl then zero", planUK, "000123", readNothing},
	{"uk gsm code", planUK, "#31#0201234", readNothing},
	{"de national", planDE, "030 123456", readNumber("+4930123456")},
	{"de international nanp", planDE, "001 212 555 1234", readNumber("+12125551234")},
	{"de mobile", planDE, "0171-1234567", readNumber("+491711234567")},
	{"closed plan", planDK, "33 12 34 56", readNumber("+4533123456")},
	{"closed plan international", planDK, "0046812345678", readNumber("+46812345678")},
	{"pbx access code", planPBX, "9011442079460958", readNumber("+442079460958")},
	{"pbx access code national", planPBX, "9 1 212 555 1234", readNumber("+12125551234")},
	{"pbx feature code", planPBX, "*67011442079460958", readNumber("+442079460958")},
	{"pbx feature then access", planPBX, "*679011442079460958", readNumber("+442079460958")},
	{"pbx access then feature", planPBX, "9*672125551234", readNumber("+12125551234")},
	{"pbx two access codes", planPBX, "99011442079460958", readNothing},
	{"pbx emergency kept", planPBX, "911", readShort("911")},
	{"pbx emergency after access", planPBX, "9911", readShort("9911")},
	{"pbx plain", planPBX, "2125551234", readNumber("+12125551234")},
	{"de pbx access code first", planDEPBX, "0030123456", readNumber("+4930123456")},
	{"de pbx international", planDEPBX, "00030123456", readNumber("+30123456")},
	{"tel uri", planUK, "tel:+44-20-7946-0958", readNumber("+442079460958")},
	{"userinfo tel", planNANP, "tel:+442079460958", readNumber("+442079460958")},
	{"sip uri with host", planUK, "sip:02079460958@pbx.example", readNumber("+442079460958")},
	{"user=phone params", planUK, "+442079460958;user=phone", readNumber("+442079460958")},
	{"phone-context global", planNANP, "5551234;phone-context=+1-212", readNumber("+12125551234")},
	{"phone-context foreign", planNANP, "2079460958;phone-context=+44", readNumber("+442079460958")},
	{"phone-context too long", planNANP, "011442079460958;phone-context=+1", readNothing},
	{"phone-context domain", planNANP, "5551234;phone-context=example.com", readNothing},
	{"phone-context short", planNANP, "911;phone-context=+1", readShort("911")},
	{"phone-context ignored for global", planNANP, "+4930123;phone-context=+1212", readNumber("+4930123")},
	{"name", planUK, "alice", readName("alice")},
	{"name with digits", planUK, "user_42", readName("user_42")},
	{"name hiding a number", planNANP, "x011442079460958", readNothing},
	{"vanity", planNANP, "1-800-FLOWERS", readNothing},
	{"name with colon", planNANP, "alice:secret", readNothing},
	{"empty", planUK, "", readName("")},
	{"plus only", planUK, "+", readNothing},
	{"plus zero", planUK, "+0441234", readNothing},
	{"plus letters", planUK, "+44abc", readNothing},
	{"sixteen digits", planUK, "+4412345678901234", readNothing},
	{"fifteen digits", planUK, "+441234567890123", readNumber("+441234567890123")},
	{"short plus", planUK, "+4490", readNumber("+4490")},
	{"percent escape", planUK, "%2B44%20909%20879%200000", readNumber("+449098790000")},
	{"double escape", planUK, "%252B449098790000", readNothing},
	{"bad percent escape", planUK, "%2G4490", readNothing},
	{"fullwidth digits", planNANP, "０１１４４2079460958", readNothing},
	{"arabic-indic digits", planNANP, "٠١١٤٤٢٠٧٩٤٦٠٩٥٨", readNothing},
	{"control character", planNANP, "2125551234\x00", readNothing},
	{"too long", planUK, strings.Repeat(" ", 200) + "02079460958", readNothing},
	{"long digits", planNANP, strings.Repeat("1", 40), readNothing},
}

func TestDialPlanRead(t *testing.T) {
	for _, tt := range dialPlanCases {
		t.Run(tt.name, func(t *testing.T) {
			got := newDialPlan(tt.plan).read(tt.in)
			if got != tt.want {
				t.Fatalf("read(%q) = %v %q; want %v %q", tt.in, got.Kind, got.Number, tt.want.Kind, tt.want.Number)
			}
		})
	}
}
