package http

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// RequireToken returns a handler that passes on to next only the requests
// that bear token (Authorization: Bearer TOKEN, RFC 6750), and answers
// every other one 401 with WWW-Authenticate: Bearer realm="REALM" and a
// JSON error body. open, when not nil, names the requests served without
// the token: health probes, which a platform's prober sends bare, and a
// page's static shell, which holds nothing of the function's.
//
// The token is compared in constant time (both sides hashed first, so its
// length does not show either), and is never written to a log or an
// answer. A CORS preflight carries no credentials: a CORS handler in
// front of this one answers it (see CORS).
func RequireToken(next http.Handler, token, realm string, open func(*http.Request) bool) http.Handler {
	want := sha256.Sum256([]byte(token))
	challenge := `Bearer realm="` + strings.ReplaceAll(realm, `"`, "") + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if open != nil && open(r) {
			next.ServeHTTP(w, r)
			return
		}
		got, ok := BearerToken(r)
		if ok {
			sum := sha256.Sum256([]byte(got))
			if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
				next.ServeHTTP(w, r)
				return
			}
		}
		c, msg := challenge, "this function requires a bearer token: send Authorization: Bearer TOKEN"
		if ok {
			c += `, error="invalid_token"`
			msg = "the bearer token is not valid for this function"
		}
		w.Header().Set("WWW-Authenticate", c)
		writeError(w, http.StatusUnauthorized, msg)
	})
}

// BearerToken returns the token of r's Authorization: Bearer header.
func BearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// Probe reports whether r is a health probe (GET or HEAD of /healthz,
// /readyz, /v2/health/live or /v2/health/ready): platforms probe bare, so
// RequireToken lets them through.
func Probe(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch r.URL.Path {
	case "/healthz", "/readyz", "/v2/health/live", "/v2/health/ready":
		return true
	}
	return false
}
