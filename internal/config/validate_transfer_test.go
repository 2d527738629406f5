package config

import "testing"

// TestValidateTransfer: trunks[].transfer and routes[].transfer take the
// transfer modes; anything else is named with its key.
func TestValidateTransfer(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"modes", func(c *Config) {
			withTrunks(c)
			c.Trunks[0].Transfer, c.Trunks[1].Transfer = "relay", "refuse"
			c.Routes[len(c.Routes)-1].Transfer = "local"
		}, nil},
		{"trunk", func(c *Config) { withTrunks(c); c.Trunks[1].Transfer = "blind" },
			[]string{"trunks[1].transfer: want local, relay or refuse"}},
		{"route", func(c *Config) { withTrunks(c); c.Routes[len(c.Routes)-1].Transfer = "Local" },
			[]string{"routes[1].transfer: want local, relay or refuse"}},
	})
}
