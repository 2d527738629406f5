package config

import "testing"

func TestIsToken(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"P-Asserted-Identity", true}, {"X-Foo_bar.1", true}, {"", false}, {"A B", false}, {"A:B", false}, {"é", false},
	}
	for _, tt := range tests {
		if got := isToken(tt.in); got != tt.want {
			t.Errorf("isToken(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
