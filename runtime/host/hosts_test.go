package host_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/runtime/host"
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
			a, err := host.ParseAllowedHosts(tt.patterns...)
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
	var zero host.AllowedHosts
	if !zero.Allows("localhost:1") || zero.Allows("attacker.example") {
		t.Error("the zero AllowedHosts does not allow exactly what is always allowed")
	}
	for _, bad := range []string{"", "*.", "a b", "exa*mple.com", "http://example.com", "a..b"} {
		if _, err := host.ParseAllowedHosts(bad); err == nil {
			t.Errorf("ParseAllowedHosts(%q): no error", bad)
		}
	}
}

// TestForeignHostIsRefused serves a function behind the check, as cortex
// serve does: a request under a name the host does not answer to (a web
// page's own, after DNS rebinding) gets 421 and neither a prediction nor
// the status; localhost, the bound address, a function's .localhost name
// and a configured name are served.
func TestForeignHostIsRefused(t *testing.T) {
	e := startFront(t, []host.Function{function("echo", host.Autoscaling{})}, func(s *http.Server) {
		a, err := host.ParseAllowedHosts("ml.example.com")
		if err != nil {
			t.Fatal(err)
		}
		s.Handler = a.Handler(s.Handler)
	})
	u, _ := url.Parse(e.srv.URL)
	port := u.Port()
	for _, h := range []string{"localhost:" + port, "127.0.0.1:" + port, "ml.example.com:" + port} {
		if a := e.do(t, e.srv.URL+"/echo/predict", h, "x"); a.status != http.StatusOK || a.echo != "x" {
			t.Errorf("Host %s: %d %s, want 200", h, a.status, a.body)
		}
	}
	if a := e.do(t, e.srv.URL+"/predict", "echo.localhost:"+port, "y"); a.status != http.StatusOK || a.echo != "y" {
		t.Errorf("Host echo.localhost: %d %s, want 200", a.status, a.body)
	}
	for _, path := range []string{"/echo/predict", host.StatusPath} {
		a := e.do(t, e.srv.URL+path, "attacker.example:"+port, "x")
		if a.status != http.StatusMisdirectedRequest || !strings.Contains(a.err, "--allowed-host attacker.example") || !strings.Contains(a.err, "DNS rebinding") {
			t.Errorf("Host attacker.example, %s: %d %s, want 421 naming the fix", path, a.status, a.body)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+host.StatusPath, nil)
	req.Host = "attacker.example"
	resp, err := e.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var v map[string]any
	if resp.StatusCode != http.StatusMisdirectedRequest || json.Unmarshal(b, &v) != nil || v["functions"] != nil {
		t.Errorf("GET %s under a foreign Host: %d %s, want a 421 with no status", host.StatusPath, resp.StatusCode, b)
	}
}
