package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cortexfn/cortex/adapters/lambda"
	"github.com/cortexfn/cortex/functions"
)

const (
	testTokenEnv = "CORTEX_AUTH_TEST_TOKEN_VALUE" // not a name a spec may give: only this test sets it
	testToken    = "t0ken-0123456789-abcdef"
	allowed      = "https://demo.example.com"
	refused      = "https://evil.example.net"
)

// gateCase is one request and what both carriers must answer to it.
type gateCase struct {
	name          string
	method, path  string
	header        map[string]string
	status        int
	predicted     bool   // the predictor ran
	challenge     string // WWW-Authenticate, "" for none
	allowOrigin   string // Access-Control-Allow-Origin, "" for none
	allowHeaders  string // Access-Control-Allow-Headers holds it, "" for none
	noCORSHeaders bool   // no Access-Control-* header at all
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// gateCases is the table for a function with auth and cors, and the
// preflights of a function with cors alone.
func gateCases() []gateCase {
	preflight := func(origin string) map[string]string {
		return map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
	}
	return []gateCase{
		{name: "no token", method: "POST", path: "/predict", status: 401, challenge: `Bearer realm="guarded"`},
		{name: "a wrong token", method: "POST", path: "/predict", header: bearer(testToken + "x"), status: 401, challenge: `Bearer realm="guarded", error="invalid_token"`},
		{name: "another scheme", method: "POST", path: "/predict", header: map[string]string{"Authorization": "Basic " + testToken}, status: 401, challenge: `Bearer realm="guarded"`},
		{name: "the token", method: "POST", path: "/predict", header: bearer(testToken), status: 200, predicted: true},
		{name: "the token on the OIP route", method: "POST", path: "/v2/models/guarded/infer", header: bearer(testToken), status: 200, predicted: true},
		{name: "liveness without a token", method: "GET", path: "/healthz", status: 200},
		{name: "readiness without a token", method: "GET", path: "/readyz", status: 200},
		{name: "OIP readiness without a token", method: "GET", path: "/v2/health/ready", status: 200},
		{name: "metrics without a token", method: "GET", path: "/metrics", status: 401, challenge: `Bearer realm="guarded"`},
		{name: "model list without a token", method: "GET", path: "/v2/models", status: 401, challenge: `Bearer realm="guarded"`},
		{name: "model list with the token", method: "GET", path: "/v2/models", header: bearer(testToken), status: 200},
		{name: "preflight from an allowed origin", method: "OPTIONS", path: "/predict", header: preflight(allowed),
			status: 204, allowOrigin: allowed, allowHeaders: "authorization,content-type"},
		{name: "preflight of a background prediction under the caller's id", method: "OPTIONS", path: "/predictions/p-1",
			header: map[string]string{"Origin": allowed, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization,cortex-webhook,prefer"}, // sorted, as browsers send them
			status: 204, allowOrigin: allowed, allowHeaders: "authorization,cortex-webhook,prefer"},
		{name: "preflight from a refused origin", method: "OPTIONS", path: "/predict", header: preflight(refused),
			status: 204, noCORSHeaders: true},
		{name: "a call from an allowed origin", method: "POST", path: "/predict", header: with(bearer(testToken), "Origin", allowed),
			status: 200, predicted: true, allowOrigin: allowed},
		{name: "a call from an allowed origin without the token", method: "POST", path: "/predict", header: map[string]string{"Origin": allowed},
			status: 401, challenge: `Bearer realm="guarded"`, allowOrigin: allowed},
		{name: "a call from a refused origin", method: "POST", path: "/predict", header: with(bearer(testToken), "Origin", refused),
			status: 200, predicted: true, noCORSHeaders: true},
	}
}

// guarded is a function with auth and cors, started, with its log in a
// buffer; predictions counts its predictions.
func guarded(t *testing.T, cfg Config) (*Runtime, *bytes.Buffer, *atomic.Int64) {
	t.Helper()
	var logs bytes.Buffer
	var predictions atomic.Int64
	p := functions.PredictorFunc(func(_ context.Context, req *functions.Request) (*functions.Response, error) {
		predictions.Add(1)
		return functions.JSON(200, map[string]string{"ok": "yes"})
	})
	rt, err := New(p, cfg, WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return rt, &logs, &predictions
}

func guardedConfig() Config {
	return Config{
		Name: "guarded",
		Auth: AuthConfig{TokenEnv: testTokenEnv, Secret: "demo-token", Key: "token"},
		CORS: CORSConfig{AllowOrigins: []string{allowed}, MaxAge: Duration(600e9)},
	}
}

// TestGateHTTP: a token-protected function refuses requests without the
// token with 401 and a Bearer challenge, takes them with it, leaves its
// probes open, answers CORS preflights without the token, and never logs
// the token.
func TestGateHTTP(t *testing.T) {
	t.Setenv(testTokenEnv, testToken)
	rt, logs, predictions := guarded(t, guardedConfig())
	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()
	for _, tc := range gateCases() {
		t.Run(tc.name, func(t *testing.T) {
			before := predictions.Load()
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(`{"x": 1}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			checkGate(t, tc, resp.StatusCode, resp.Header, body, predictions.Load()-before)
		})
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("the log holds the token:\n%s", logs)
	}
}

// TestGateLambda: the Lambda carrier gives the same answers to the same
// requests in function-URL events, through the options ServeLambda
// starts it with.
func TestGateLambda(t *testing.T) {
	t.Setenv(testTokenEnv, testToken)
	rt, logs, predictions := guarded(t, guardedConfig())
	invoke := functionURL(t, rt)
	for _, tc := range gateCases() {
		t.Run(tc.name, func(t *testing.T) {
			before := predictions.Load()
			header := map[string]string{"content-type": "application/json"}
			for k, v := range tc.header {
				header[strings.ToLower(k)] = v
			}
			status, h, body := invoke(tc.method, tc.path, header, `{"x": 1}`)
			checkGate(t, tc, status, h, body, predictions.Load()-before)
		})
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("the log holds the token:\n%s", logs)
	}
}

func checkGate(t *testing.T, tc gateCase, status int, h http.Header, body []byte, predicted int64) {
	t.Helper()
	if status != tc.status {
		t.Errorf("status %d, want %d: %s", status, tc.status, body)
	}
	if (predicted > 0) != tc.predicted {
		t.Errorf("the predictor ran %d times, want it to run: %v", predicted, tc.predicted)
	}
	if got := h.Get("WWW-Authenticate"); got != tc.challenge {
		t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
	}
	if status == 401 {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, "bearer token") {
			t.Errorf("401 body %s, want a JSON error that says a bearer token is needed", body)
		}
	}
	if bytes.Contains(body, []byte(testToken)) {
		t.Errorf("the answer holds the token: %s", body)
	}
	if got := h.Get("Access-Control-Allow-Origin"); got != tc.allowOrigin {
		t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tc.allowOrigin)
	}
	if tc.allowHeaders != "" && !strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), tc.allowHeaders) {
		t.Errorf("Access-Control-Allow-Headers %q, want it to hold %q", h.Get("Access-Control-Allow-Headers"), tc.allowHeaders)
	}
	if tc.allowOrigin != "" && !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
		t.Errorf("Vary %q, want it to name Origin: the answer depends on it", h.Values("Vary"))
	}
	if tc.noCORSHeaders {
		for k := range h {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s: %q, want no CORS header for a refused origin", k, h.Get(k))
			}
		}
	}
}

// TestCORSWithoutAuth: without auth, an allowed origin may not send
// Authorization (the function takes none), and without cors a function
// sends no CORS headers at all.
func TestCORSWithoutAuth(t *testing.T) {
	rt, _, _ := guarded(t, Config{Name: "open", CORS: CORSConfig{AllowOrigins: []string{"*"}, AllowHeaders: []string{"X-Client"}}})
	plain, _, _ := guarded(t, Config{Name: "plain"})
	tests := []struct {
		name        string
		h           http.Handler
		reqHeaders  string
		allowOrigin string
	}{
		{"any origin, its headers", rt.Handler(), "content-type,x-client", "*"},
		{"any origin, Authorization", rt.Handler(), "authorization", ""},
		{"no cors", plain.Handler(), "content-type", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("OPTIONS", "/predict", nil)
			req.Header.Set("Origin", refused)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", tt.reqHeaders)
			w := httptest.NewRecorder()
			tt.h.ServeHTTP(w, req)
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != tt.allowOrigin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q (status %d)", got, tt.allowOrigin, w.Code)
			}
		})
	}
}

// TestAuthWithoutToken: a function that requires a token it was not
// given does not start, and says which variable and where it comes from;
// a Runtime built by hand refuses every caller rather than serve without
// it.
func TestAuthWithoutToken(t *testing.T) {
	dir := t.TempDir()
	cfg := guardedConfig()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ConfigName)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CORTEX_CONFIG", path)
	t.Setenv("PORT", "0")
	p := functions.PredictorFunc(func(context.Context, *functions.Request) (*functions.Response, error) { return nil, nil })
	for _, tc := range []struct{ name, value, want string }{
		{"unset", "", `function "guarded": auth.token_env: $CORTEX_AUTH_TEST_TOKEN_VALUE is not set in the function's environment, and the function requires a bearer token: on Knative the Service sets it from key "token" of the Kubernetes Secret "demo-token"`},
		{"short", "abc", `$CORTEX_AUTH_TEST_TOKEN_VALUE is 3 characters; a bearer token has at least 16`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.value == "" {
				os.Unsetenv(testTokenEnv)
			} else {
				t.Setenv(testTokenEnv, tc.value)
			}
			err := Run(context.Background(), p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: %v, want %q", err, tc.want)
			}
		})
	}

	os.Unsetenv(testTokenEnv)
	rt, logs, predictions := guarded(t, cfg)
	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/predict", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || predictions.Load() != 0 {
		t.Errorf("without its token: %d with %d predictions, want 503 and none", resp.StatusCode, predictions.Load())
	}
	if !strings.Contains(logs.String(), testTokenEnv) {
		t.Errorf("the log does not say which variable is missing:\n%s", logs)
	}
}

// TestGatePages: the page's static shell is served without the token
// (it holds nothing of the function's, and asks for the token) by the
// HTTP carrier, and by the Lambda carrier only when targets.lambda.pages
// asks it to serve the page at all; what the page then calls needs the
// token.
func TestGatePages(t *testing.T) {
	t.Setenv(testTokenEnv, testToken)
	withPages := guardedConfig()
	withPages.LambdaPages = true
	rt, _, _ := guarded(t, guardedConfig())
	rtPages, _, _ := guarded(t, withPages)
	tests := []struct {
		name       string
		serve      func(method, path string) (int, http.Header)
		path       string
		status     int
		challenged bool
	}{
		{"HTTP: the page", httpServe(t, rt), "/", 200, false},
		{"HTTP: the docs", httpServe(t, rt), "/docs", 200, false},
		{"HTTP: the page's script", httpServe(t, rt), "/-/page.js", 200, false},
		{"HTTP: the OpenAPI document", httpServe(t, rt), "/openapi.json", 401, true},
		{"Lambda: no page", lambdaServe(t, rt), "/", 401, true},
		{"Lambda: no docs", lambdaServe(t, rt), "/docs", 401, true},
		{"Lambda with pages: the page", lambdaServe(t, rtPages), "/", 200, false},
		{"Lambda with pages: the page's script", lambdaServe(t, rtPages), "/-/page.js", 200, false},
		{"Lambda with pages: the OpenAPI document", lambdaServe(t, rtPages), "/openapi.json", 401, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h := tt.serve("GET", tt.path)
			if status != tt.status || (h.Get("WWW-Authenticate") != "") != tt.challenged {
				t.Errorf("GET %s without a token: %d, WWW-Authenticate %q; want %d, challenged %v", tt.path, status, h.Get("WWW-Authenticate"), tt.status, tt.challenged)
			}
		})
	}
}

func httpServe(t *testing.T, rt *Runtime) func(method, path string) (int, http.Header) {
	h := rt.Handler()
	return func(method, path string) (int, http.Header) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w.Code, w.Header()
	}
}

func lambdaServe(t *testing.T, rt *Runtime) func(method, path string) (int, http.Header) {
	invoke := functionURL(t, rt)
	return func(method, path string) (int, http.Header) {
		status, h, _ := invoke(method, path, map[string]string{}, "")
		return status, h
	}
}

// functionURL returns a call of rt's Lambda carrier, with the options
// ServeLambda starts it with, by a function-URL event: method, path,
// headers (lower-case names) and body in; status, headers and body out.
func functionURL(t *testing.T, rt *Runtime) func(method, path string, header map[string]string, body string) (int, http.Header, []byte) {
	h, err := lambda.Handler(rt, rt.lambdaOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	return func(method, path string, header map[string]string, body string) (int, http.Header, []byte) {
		payload, err := json.Marshal(events.LambdaFunctionURLRequest{
			Version: "2.0", RawPath: path, Headers: header, Body: body,
			RequestContext: events.LambdaFunctionURLRequestContext{RequestID: "req-1", DomainName: "abc.lambda-url.us-east-1.on.aws",
				HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: method, Path: path}},
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := h(context.Background(), payload)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(out)
		var resp events.LambdaFunctionURLResponse
		if err := json.Unmarshal(b, &resp); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		hdr := http.Header{}
		for k, v := range resp.Headers {
			hdr.Set(k, v)
		}
		return resp.StatusCode, hdr, []byte(resp.Body)
	}
}
