package activation_test

import (
	"testing"

	"github.com/cortexfn/cortex/runtime/activation"
)

func TestAllowedHosts(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		allowed  []string
		refused  []string
	}{
		{
			name:     "always",
			patterns: nil,
			allowed:  []string{"localhost", "localhost:8080", "LOCALHOST.", "iris.localhost:8080", "a.b.localhost", "127.0.0.1:8080", "127.0.0.2", "[::1]:8080", "::1", ""},
			refused:  []string{"attacker.example", "attacker.example:8080", "localhost.attacker.example", "mylocalhost", "192.168.1.5:8080", "[2001:db8::1]:8080", "0.0.0.0:8080"},
		},
		{
			name:     "bound to one address",
			patterns: []string{"192.168.1.5"},
			allowed:  []string{"192.168.1.5:8080", "192.168.1.5"},
			refused:  []string{"192.168.1.6:8080", "attacker.example"},
		},
		{
			name:     "bound to every address",
			patterns: []string{"::"},
			allowed:  []string{"192.168.1.5:8080", "10.0.0.1", "[2001:db8::1]:8080"},
			refused:  []string{"attacker.example", "ml.example.com"},
		},
		{
			name:     "names and domains",
			patterns: []string{"ml.example.com:8080", "*.corp.example", "Box.LAN."},
			allowed:  []string{"ml.example.com", "ML.example.com:9000", "a.corp.example", "a.b.corp.example:8080", "box.lan"},
			refused:  []string{"example.com", "corp.example", "xcorp.example", "ml.example.com.attacker.example", "192.168.1.5"},
		},
		{
			name:     "any",
			patterns: []string{"*"},
			allowed:  []string{"attacker.example", "192.168.1.5"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := activation.ParseAllowedHosts(tt.patterns...)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tt.allowed {
				if !a.Allows(h) {
					t.Errorf("Host %q refused, want it allowed", h)
				}
			}
			for _, h := range tt.refused {
				if a.Allows(h) {
					t.Errorf("Host %q allowed, want it refused", h)
				}
			}
		})
	}
	var zero activation.AllowedHosts
	if !zero.Allows("localhost:1") || zero.Allows("attacker.example") {
		t.Error("the zero AllowedHosts does not allow exactly what is always allowed")
	}
	for _, bad := range []string{"", "*.", "a b", "exa*mple.com", "http://example.com", "a..b"} {
		if _, err := activation.ParseAllowedHosts(bad); err == nil {
			t.Errorf("ParseAllowedHosts(%q): no error", bad)
		}
	}
}
