package http_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	httpadapter "github.com/cortexfn/cortex/adapters/http"
)

func TestRequireToken(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := httpadapter.RequireToken(ok, "s3cret", "iris", httpadapter.Probe)
	for _, c := range []struct {
		method, path, auth string
		want               int
		challenge          string
	}{
		{"POST", "/predict", "", 401, `Bearer realm="iris"`},
		{"POST", "/predict", "Bearer wrong", 401, `Bearer realm="iris", error="invalid_token"`},
		{"POST", "/predict", "Basic czNjcmV0", 401, `Bearer realm="iris"`},
		{"POST", "/predict", "Bearer s3cret", 204, ""},
		{"POST", "/predict", "bearer  s3cret ", 204, ""},
		{"GET", "/openapi.json", "", 401, `Bearer realm="iris"`},
		{"GET", "/healthz", "", 204, ""},
		{"GET", "/v2/health/ready", "", 204, ""},
		{"POST", "/healthz", "", 401, `Bearer realm="iris"`},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want || w.Header().Get("WWW-Authenticate") != c.challenge {
			t.Errorf("%s %s %q: %d %q, want %d %q", c.method, c.path, c.auth, w.Code, w.Header().Get("WWW-Authenticate"), c.want, c.challenge)
		}
		if w.Code == 401 && (!strings.Contains(w.Body.String(), `"error"`) || strings.Contains(w.Body.String(), "s3cret")) {
			t.Errorf("%s %s: body %s", c.method, c.path, w.Body)
		}
	}
}
