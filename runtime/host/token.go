package host

import (
	"fmt"
	"net/http"
	"strings"

	httpadapter "github.com/cortexfn/cortex/adapters/http"
	"github.com/cortexfn/cortex/runtime"
)

// The front's bearer token (WithToken; cortex serve --token). The check is
// httpadapter.RequireToken, the one a function's own HTTP carrier applies
// for auth: in cortex.yaml: constant-time, an RFC 6750 challenge on a 401,
// the token never in a log or an answer.
//
// What is open without it (Host.open): the front page's static shell
// (GET / and its script and style), a function page's static shell (GET
// /{function}/, /{function}/docs and the page's assets) and the redirect
// from /{function} to it. They hold no data: the page asks for the token
// and sends it on every call it makes. And a CORS preflight (OPTIONS with
// Origin and Access-Control-Request-Method) to a function: browsers send
// it without credentials, and the function's CORS settings answer it. Only for a function the host
// serves, so that an unknown name gets 401, as everything else does,
// rather than a 404 listing the functions.
//
// The proxied request keeps its Authorization header: a function that
// requires a token of its own (auth: in its cortex.yaml) gets the same
// one, so behind a front with a token it must have that token or none.
// A function's own socket (Function.Listener, cortex serve --ports) is
// not behind the front, and so not behind its token: its processes
// answer there, with the function's own auth.

// tokenRealm names the front in its WWW-Authenticate challenge.
const tokenRealm = "cortex serve"

// TokenEnv is the environment variable that holds cortex serve's token:
// `cortex serve` takes it when --token is not given, and the CLI's
// commands that call a local cortex serve send it (see TokenClient).
const TokenEnv = "CORTEX_SERVE_TOKEN"

// WithToken has the front require Authorization: Bearer token on every
// request but the page shells (see token.go's comment for which); others
// get 401 with WWW-Authenticate. The token must pass CheckToken.
func WithToken(token string) Option {
	return func(o *options) error {
		if err := CheckToken(token); err != nil {
			return fmt.Errorf("host: WithToken: %w", err)
		}
		o.token = token
		return nil
	}
}

// CheckToken reports why token cannot be the front's bearer token, or
// nil: the rules a function's own token follows (runtime.CheckToken: at
// least 16 characters a client can send unquoted), so a token that guards
// a function guards the front too. The error never holds the token.
func CheckToken(token string) error {
	return runtime.CheckToken(TokenEnv, token)
}

// open reports whether r is served without the token: a read of a page's
// static shell, or of the redirect to one, for a function the host
// serves; or a CORS preflight to such a function, which a browser sends
// without credentials and the function's CORS handler answers (its own
// token check sits behind that).
func (h *Host) open(r *http.Request) bool {
	preflight := r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !preflight {
		return false
	}
	if name, ok := hostFunction(r.Host); ok {
		return h.fns[name] != nil && (preflight || pageShell(r, r.URL.Path))
	}
	switch r.URL.Path {
	case "/", frontJS, frontCSS:
		return !preflight
	}
	name, rest, slash := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case h.fns[name] == nil:
		return false
	case preflight:
		return slash
	}
	return !slash || pageShell(r, "/"+rest)
}

// pageShell reports whether a read of path on a function is its page's
// static shell, as the function's HTTP carrier decides it
// (httpadapter.PageShell): the carrier serves it without its own token
// too, so the two agree on one list.
func pageShell(r *http.Request, path string) bool {
	u := *r.URL
	u.Path, u.RawPath = path, ""
	in := *r // shallow: PageShell reads the method and the path
	in.URL = &u
	return httpadapter.PageShell(&in)
}
