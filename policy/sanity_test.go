package policy

import (
	"context"
	"testing"
)

func TestSanity(t *testing.T) {
	self := func(sentBy string) bool { return sentBy == "203.0.113.5:5060" || sentBy == "203.0.113.5" }
	spiral := func(user string) bool { return user == "tok3n" }
	tests := []struct {
		name   string
		method string
		modify func(r *Request)
		want   Decision
	}{
		{"fine", "INVITE", func(r *Request) {}, Pass},
		{"loop top via", "INVITE", func(r *Request) { r.Vias = []string{"203.0.113.5:5060", "192.0.2.1:5060"} },
			Decision{Action: Answer, Code: 482, Reason: "Loop Detected", Cause: causeLoop}},
		{"loop lower via", "BYE", func(r *Request) { r.Vias = []string{"192.0.2.1:5060", "203.0.113.5"} },
			Decision{Action: Answer, Code: 482, Reason: "Loop Detected", Cause: causeLoop}},
		{"spiral to a registered contact", "INVITE", func(r *Request) {
			r.Vias = []string{"192.0.2.1:5060", "203.0.113.5:5060"}
			r.RURIUser = "tok3n"
		}, Pass},
		{"loop to another user", "INVITE", func(r *Request) {
			r.Vias = []string{"192.0.2.1:5060", "203.0.113.5:5060"}
			r.RURIUser = "bob"
		}, Decision{Action: Answer, Code: 482, Reason: "Loop Detected", Cause: causeLoop}},
		{"in-dialog request of a spiral", "BYE", func(r *Request) {
			r.Vias = []string{"192.0.2.1:5060", "203.0.113.5:5060"}
			r.ToTag = "b1"
		}, Pass},
		{"other port is not self", "INVITE", func(r *Request) { r.Vias = []string{"203.0.113.5:5070"} }, Pass},
		{"no call-id", "REGISTER", func(r *Request) { r.CallID = "" },
			Decision{Action: Answer, Code: 400, Reason: "Bad Request", Cause: causeMissingHeader}},
		{"no from", "OPTIONS", func(r *Request) { r.From = "" },
			Decision{Action: Answer, Code: 400, Reason: "Bad Request", Cause: causeMissingHeader}},
		{"no to", "OPTIONS", func(r *Request) { r.To = "" },
			Decision{Action: Answer, Code: 400, Reason: "Bad Request", Cause: causeMissingHeader}},
		{"invite without from tag", "INVITE", func(r *Request) { r.FromTag = "" },
			Decision{Action: Answer, Code: 400, Reason: "Missing From Tag", Cause: causeNoFromTag}},
		{"RFC 2543 invite without from tag", "INVITE", func(r *Request) { r.FromTag = ""; r.RFC2543 = true }, Pass},
		{"options without from tag", "OPTIONS", func(r *Request) { r.FromTag = "" }, Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req("192.0.2.1", tt.method)
			tt.modify(r)
			if got := (&sanity{isSelf: self, spiral: spiral}).Check(context.Background(), r); !sameDecision(got, tt.want) {
				t.Errorf("Check = %+v, want %+v", got, tt.want)
			}
		})
	}
	t.Run("no IsSelf", func(t *testing.T) {
		r := req("192.0.2.1", "INVITE")
		r.Vias = []string{"203.0.113.5:5060"}
		if got := (&sanity{}).Check(context.Background(), r); got.Action != Continue {
			t.Errorf("Check = %+v without IsSelf, want Pass", got)
		}
	})
}
