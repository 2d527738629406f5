package admin

import (
	"errors"
	"testing"
)

// TestDrainMigrate: POST /api/v1/drain?migrate=true runs Migrate, not
// Drain: 202 with its status, 409 with its error, 501 without it; a
// migrate value other than true or false is 400 and runs nothing.
func TestDrainMigrate(t *testing.T) {
	h := hdr("Content-Type", "application/json", "Authorization", "Bearer s3cret")
	for _, tt := range []struct {
		name    string
		query   string
		migrate func() (DrainStatus, error)
		want    int
		drains  int
		migrant int
	}{
		{"migrate", "?migrate=true", func() (DrainStatus, error) { return DrainStatus{Draining: true}, nil }, 202, 0, 1},
		{"refused", "?migrate=true", func() (DrainStatus, error) { return DrainStatus{}, errors.New("cluster.replicate_calls is off") }, 409, 0, 1},
		{"no hook", "?migrate=true", nil, 501, 0, 0},
		{"plain drain", "?migrate=false", func() (DrainStatus, error) { return DrainStatus{}, nil }, 202, 1, 0},
		{"bad value", "?migrate=yes", func() (DrainStatus, error) { return DrainStatus{}, nil }, 400, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opt, _, _, _ := fullOptions()
			drains, migrations := 0, 0
			opt.Drain = func() DrainStatus { drains++; return DrainStatus{Draining: true} }
			if tt.migrate != nil {
				opt.Migrate = func() (DrainStatus, error) { migrations++; return tt.migrate() }
			}
			base := startServer(t, opt)
			code, doc := doHeaders(t, "POST", base+"/api/v1/drain"+tt.query, h, "")
			if code != tt.want || drains != tt.drains || migrations != tt.migrant {
				t.Errorf("status %d (%v), drains %d, migrations %d; want %d, %d, %d",
					code, doc, drains, migrations, tt.want, tt.drains, tt.migrant)
			}
			if code == 409 && doc["error"] != "cluster.replicate_calls is off" {
				t.Errorf("409 without the reason: %v", doc)
			}
		})
	}
}
