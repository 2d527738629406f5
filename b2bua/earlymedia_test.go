package b2bua

import "testing"

func TestEarlyMediaMatch(t *testing.T) {
	e := &EarlyMedia{Announcements: []Announcement{
		{Causes: []string{"premium", "international"}},
		{Causes: []string{"no_binding"}, Codes: []int{486}},
		{Codes: []int{403}},
	}}
	tests := []struct {
		name   string
		code   int
		causes []string
		want   int // index of the announcement; -1 none
	}{
		{"stage cause", 403, []string{"policy_premium", "premium"}, 0},
		{"call cause", 480, []string{"no_binding", ""}, 1},
		{"code only", 403, []string{"policy_denied", "denied"}, 2},
		{"code of the second", 486, []string{"rejected"}, 1},
		{"nothing", 503, []string{"all_trunks_down", ""}, -1},
		{"empty cause matches nothing", 500, []string{""}, -1},
	}
	for _, tt := range tests {
		got := e.match(tt.code, tt.causes...)
		switch {
		case tt.want < 0 && got != nil:
			t.Errorf("%s: matched %+v, want none", tt.name, *got)
		case tt.want >= 0 && got != &e.Announcements[tt.want]:
			t.Errorf("%s: matched %v, want announcement %d", tt.name, got, tt.want)
		}
	}
	var none *EarlyMedia
	if none.match(403, "premium") != nil {
		t.Error("a nil EarlyMedia matched")
	}
}
