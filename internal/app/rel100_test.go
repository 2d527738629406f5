package app

import (
	"testing"

	"github.com/sbc-project/sbc/b2bua"
	"github.com/sbc-project/sbc/internal/config"
)

// TestRel100: sip.prack reaches the B2BUA as what leg B's INVITE says.
func TestRel100(t *testing.T) {
	tests := []struct {
		value string
		want  b2bua.Rel100
	}{
		{config.PRACKSupported, b2bua.Rel100Supported},
		{config.PRACKRequired, b2bua.Rel100Required},
		{config.PRACKOff, b2bua.Rel100Off},
	}
	for _, tt := range tests {
		cfg := config.Default()
		cfg.SIP.PRACK = tt.value
		if got := serverConfig(cfg, Options{}).Rel100; got != tt.want {
			t.Errorf("sip.prack %q: Rel100 %d, want %d", tt.value, got, tt.want)
		}
	}
}
