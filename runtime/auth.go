package runtime

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/rs/cors"

	"github.com/cortexfn/cortex/adapters"
	httpadapter "github.com/cortexfn/cortex/adapters/http"
	"github.com/cortexfn/cortex/functions"
)

// MinTokenLength is the shortest bearer token a function takes: a token
// guards a demo anyone who finds its URL can reach, so it must not be
// guessable.
const MinTokenLength = 16

// TokenPattern is RFC 6750's b64token, what a client can send after
// "Bearer " without quoting: the characters a token may have.
const TokenPattern = `^[A-Za-z0-9._~+/-]+=*$`

var tokenChars = regexp.MustCompile(TokenPattern)

// CheckToken reports what is wrong with token as a function's bearer
// token, naming the variable it came from (name) but never its value; nil
// when it will do. Start calls it, and so do the tools that set the
// variable (cortex deploy, cortex serve), to fail before they deploy or
// start a function that would refuse to start.
func CheckToken(name, token string) error {
	switch {
	case token == "":
		return fmt.Errorf("$%s is empty", name)
	case !tokenChars.MatchString(token):
		return fmt.Errorf("$%s is not a bearer token a client can send: use letters, digits and -._~+/ (then '=' padding), such as the output of openssl rand -hex 32", name)
	case len(token) < MinTokenLength:
		return fmt.Errorf("$%s is %d characters; a bearer token has at least %d, such as the output of openssl rand -hex 32", name, len(token), MinTokenLength)
	}
	return nil
}

// authToken reads the function's bearer token from lookup (the process's
// environment), where the platform put it. The error names the variable,
// the cortex.yaml key and where the value should have come from; it never
// holds the value.
func authToken(a AuthConfig, lookup func(string) (string, bool)) (string, error) {
	token, ok := lookup(a.TokenEnv)
	if !ok {
		from := "on Knative the Service sets it from the Kubernetes Secret named by auth.secret and auth.key"
		if a.Secret != "" {
			from = fmt.Sprintf("on Knative the Service sets it from key %q of the Kubernetes Secret %q (does the Secret exist, with the key?)", a.Key, a.Secret)
		}
		return "", fmt.Errorf("auth.token_env: $%s is not set in the function's environment, and the function requires a bearer token: %s; on Lambda cortex deploy sets it from $%s in the deploying command's environment; under cortex serve and cortex test, from $%s in the command's environment",
			a.TokenEnv, from, a.TokenEnv, a.TokenEnv)
	}
	if err := CheckToken(a.TokenEnv, token); err != nil {
		return "", fmt.Errorf("auth.token_env: %w", err)
	}
	return token, nil
}

// checkAuth is what a process checks of its auth configuration before it
// serves: a function that requires a token it was not given fails to
// start, naming the variable, rather than refuse every caller.
func checkAuth(cfg *Config) error {
	if !cfg.Auth.Required() {
		return nil
	}
	_, err := authToken(cfg.Auth, os.LookupEnv)
	return err
}

// gate puts the function's CORS policy and bearer-token check (cors.* and
// auth.* in cortex.yaml) in front of next: the same middleware for the
// HTTP carrier (Handler) and the Lambda carrier (ServeLambda, through
// lambda.WithGate), so both answer alike. CORS comes first, so that a
// preflight, which carries no credentials, is answered without them, and
// so that a page of an allowed origin can read a 401 and say why. Without
// either in the config next is returned as it is.
//
// pages says whether the carrier serves the function's page, whose static
// shell is then served without the token too (it holds nothing of the
// function's, and asks the person for the token).
func (r *Runtime) gate(pages bool) func(next http.Handler) http.Handler {
	open := httpadapter.Probe
	if pages {
		open = func(req *http.Request) bool { return httpadapter.Probe(req) || httpadapter.PageShell(req) }
	}
	return func(next http.Handler) http.Handler {
		h := next
		if a := r.cfg.Auth; a.Required() {
			token, err := authToken(a, os.LookupEnv)
			if err != nil {
				// Run fails before it serves without a token; a Runtime
				// built by hand (a test, a main of one's own) must fail
				// closed too.
				h = refuseAll(r, err)
			} else {
				h = httpadapter.RequireToken(h, token, r.cfg.Name, open)
			}
		}
		if c := r.cfg.CORS; len(c.AllowOrigins) > 0 {
			h = corsPolicy(c, r.cfg.Auth.Required()).Handler(h)
		}
		return h
	}
}

// refuseAll answers every request but the probes 503: the function
// requires a token it does not have.
func refuseAll(r *Runtime, err error) http.Handler {
	r.log.Error("refusing requests: the function requires a bearer token it was not given", "err", err)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if httpadapter.Probe(req) {
			// Probes stay open, and fail: readiness is not reached.
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		resp := adapters.ErrorResponse(&functions.Error{Status: http.StatusServiceUnavailable,
			Message: "the function requires a bearer token but was not given one: see its log"}, "")
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode())
		_, _ = w.Write(resp.Body)
	})
}

// corsHeaders are the request headers every function takes from a page
// of another origin: the body's type and encoding, what it accepts, the
// request id it may give, and a background prediction's preference and
// webhook (docs/async.md).
var corsHeaders = []string{"Accept", "Content-Type", "Content-Encoding", "X-Request-Id",
	"Prefer", "Cortex-Webhook", "Cortex-Webhook-Events"}

// corsPolicy is the function's CORS policy as github.com/rs/cors applies
// it: the one package every Go router's CORS support leans on, with the
// Fetch standard's corners handled (preflight vs actual request, Vary,
// wildcard origins, header lists split by gateways). A preflight from an
// allowed origin is answered 204 with the allow headers; one from any
// other origin 204 without them, which the browser takes as a refusal;
// an actual request from an allowed origin gets
// Access-Control-Allow-Origin, others none. Credentials (cookies) are
// never allowed: a function has none to take, and a bearer token is a
// header a page sends knowingly, not an ambient credential, so "*" is
// safe with auth too (a page must still hold the token).
func corsPolicy(c CORSConfig, auth bool) *cors.Cors {
	headers := slices.Clone(corsHeaders)
	if auth {
		headers = append(headers, "Authorization")
	}
	for _, h := range c.AllowHeaders {
		if !slices.ContainsFunc(headers, func(have string) bool { return strings.EqualFold(have, h) }) {
			headers = append(headers, h)
		}
	}
	maxAge := int(c.MaxAge.D().Seconds())
	return cors.New(cors.Options{
		AllowedOrigins: c.AllowOrigins,
		// PUT: a background prediction under the caller's id.
		AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut},
		AllowedHeaders: headers,
		// A page may read these of an answer besides the safelisted ones.
		ExposedHeaders: []string{"X-Request-Id", "Retry-After", "WWW-Authenticate", "Location", "Preference-Applied"},
		MaxAge:         maxAge,
	})
}
