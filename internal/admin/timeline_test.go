package admin

import (
	"net/http"
	"testing"
)

func TestTimelineEndpoint(t *testing.T) {
	opt, _, _, _ := fullOptions()
	var asked []string
	opt.Timeline = func(id string) (any, bool) {
		asked = append(asked, id)
		if id != "c0ffee" {
			return nil, false
		}
		return map[string]any{"id": id, "events": []any{map[string]string{"what": "INVITE"}}}, true
	}
	base := startServer(t, opt)
	if code, _ := do(t, "GET", base+"/api/v1/calls/c0ffee/timeline", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("without the token: %d, want 401", code)
	}
	code, doc := do(t, "GET", base+"/api/v1/calls/c0ffee/timeline", opt.Token, "")
	if code != http.StatusOK || doc["id"] != "c0ffee" || len(doc["events"].([]any)) != 1 {
		t.Fatalf("timeline: %d %v", code, doc)
	}
	code, doc = do(t, "GET", base+"/api/v1/calls/gone/timeline", opt.Token, "")
	if code != http.StatusNotFound || doc["error"] != "no timeline for call gone" {
		t.Fatalf("unknown call: %d %v", code, doc)
	}
	if len(asked) != 2 || asked[1] != "gone" {
		t.Fatalf("asked for %v", asked)
	}
}
