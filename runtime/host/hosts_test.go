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
