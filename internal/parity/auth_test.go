package parity_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/internal/testutil"
)

// The token-protected function: samples/iris with auth and cors.
const (
	tokenEnv  = "PARITY_DEMO_TOKEN"
	token     = "parity-0123456789abcdef"
	demoPage  = "https://demo.example.com"
	otherPage = "https://elsewhere.example.net"
	authYAML  = "auth: {token_env: " + tokenEnv + ", secret: demo-token, key: token}\n" +
		"cors: {allow_origins: [\"" + demoPage + "\"]}\n" +
		"targets: {lambda: {url_auth: NONE}}\n"
)

// authRow is a request with headers to the token-protected function and
// what every carrier must answer.
type authRow struct {
	name      string
	req       request
	header    map[string]string
	status    int
	challenge string // WWW-Authenticate
	origin    string // Access-Control-Allow-Origin
}

func authRows() []authRow {
	withToken := map[string]string{"Authorization": "Bearer " + token}
	preflight := func(origin string) map[string]string {
		return map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
	}
	return []authRow{
		{name: "prediction without a token", req: post("/predict", jsonType, setosa), status: 401, challenge: `Bearer realm="iris"`},
		{name: "prediction with a wrong token", req: post("/predict", jsonType, setosa), header: map[string]string{"Authorization": "Bearer " + token + "0"},
			status: 401, challenge: `Bearer realm="iris", error="invalid_token"`},
		{name: "prediction with the token", req: post("/predict", jsonType, setosa), header: withToken, status: 200},
		{name: "OIP prediction without a token", req: post("/v2/models/iris/infer", jsonType, setosa), status: 401, challenge: `Bearer realm="iris"`},
		{name: "model metadata without a token", req: get("/v2/models/iris"), status: 401, challenge: `Bearer realm="iris"`},
		{name: "metrics without a token", req: get("/metrics"), status: 401, challenge: `Bearer realm="iris"`},
		{name: "liveness without a token", req: get("/healthz"), status: 200},
		{name: "readiness without a token", req: get("/v2/health/ready"), status: 200},
		{name: "bad body without a token", req: post("/predict", jsonType, `{"inputs": [`), status: 401, challenge: `Bearer realm="iris"`},
		{name: "bad body with the token", req: post("/predict", jsonType, `{"inputs": [`), header: withToken, status: 400},
		{name: "preflight from the demo page", req: request{method: http.MethodOptions, path: "/predict"}, header: preflight(demoPage), status: 204, origin: demoPage},
		{name: "preflight from another page", req: request{method: http.MethodOptions, path: "/predict"}, header: preflight(otherPage), status: 204},
		{name: "call from the demo page without a token", req: post("/predict", jsonType, setosa), header: map[string]string{"Origin": demoPage},
			status: 401, challenge: `Bearer realm="iris"`, origin: demoPage},
		{name: "call from the demo page", req: post("/predict", jsonType, setosa), header: map[string]string{"Origin": demoPage, "Authorization": "Bearer " + token},
			status: 200, origin: demoPage},
	}
}

// TestAuthParity sends every row to samples/iris packaged with a token
// and CORS, over plain HTTP and every Lambda HTTP event shape: the
// status, the challenge, the CORS origin and the error text agree, and
// the token is never in an answer.
func TestAuthParity(t *testing.T) {
	if testing.Short() {
		t.Skip("packages samples/iris and runs it twice")
	}
	task := packageGuardedIris(t)
	t.Setenv(tokenEnv, token) // the processes' environment comes from the test's
	base := startHTTP(t, task)
	api := startLambda(t, task)
	captures := loadCaptures(t)
	n := 0
	for i, r := range authRows() {
		id := fmt.Sprintf("auth-%02d", i)
		t.Run(r.name, func(t *testing.T) {
			hr := newRequest(t, r.req.method, base, r.req.path, r.req.query, r.req.body)
			if r.req.contentType != "" {
				hr.Header.Set("Content-Type", r.req.contentType)
			}
			hr.Header.Set("X-Request-Id", id)
			for k, v := range r.header {
				hr.Header.Set(k, v)
			}
			want := do(t, hr)
			checkAuthAnswer(t, "http", r, want)
			for _, c := range lambdaCarriers {
				t.Run(string(c), func(t *testing.T) {
					n++
					payload := withHeaders(t, lambdaEvent(t, c, captures, r.req, id), r.header)
					_, res := api.Invoke(t, fmt.Sprintf("%s-%s-%d", id, c, n), payload, time.Minute)
					if res.Kind != testutil.LambdaResponse {
						t.Fatalf("an HTTP event got a %s, want a response: %.300s", res.Kind, res.Body)
					}
					got := lambdaAnswer(t, c, res.Body)
					checkAuthAnswer(t, string(c), r, got)
					if got.status >= 400 {
						g, _ := errorText(got.body)
						w, _ := errorText(want.body)
						if g != w {
							t.Errorf("error %q, want %q as over HTTP", g, w)
						}
					}
				})
			}
		})
	}
}

func checkAuthAnswer(t *testing.T, c string, r authRow, a answer) {
	t.Helper()
	if a.status != r.status {
		t.Errorf("%s: status %d, want %d: %.300s", c, a.status, r.status, a.body)
	}
	if got := a.header.Get("WWW-Authenticate"); got != r.challenge {
		t.Errorf("%s: WWW-Authenticate %q, want %q", c, got, r.challenge)
	}
	if got := a.header.Get("Access-Control-Allow-Origin"); got != r.origin {
		t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", c, got, r.origin)
	}
	if strings.Contains(string(a.body), token) {
		t.Errorf("%s: the answer holds the token: %s", c, a.body)
	}
}

// withHeaders sets headers in an event's headers and multiValueHeaders,
// whichever it has, as the invoking service passes a client's headers.
func withHeaders(t *testing.T, event []byte, headers map[string]string) []byte {
	t.Helper()
	if len(headers) == 0 {
		return event
	}
	var ev map[string]any
	unmarshal(t, event, &ev)
	for k, v := range headers {
		if m, ok := ev["headers"].(map[string]any); ok {
			m[strings.ToLower(k)] = v
		}
		if m, ok := ev["multiValueHeaders"].(map[string]any); ok {
			m[strings.ToLower(k)] = []string{v}
		}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// packageGuardedIris packages a copy of samples/iris whose cortex.yaml
// requires a token and allows one origin, and unzips its Lambda zip as
// Lambda does. The token is in no file the packager writes.
func packageGuardedIris(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "iris")
	if err := os.MkdirAll(filepath.Join(dir, "model"), 0o755); err != nil {
		t.Fatal(err)
	}
	yaml, err := os.ReadFile(filepath.Join(irisDir, "cortex.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	model, err := os.ReadFile(filepath.Join(irisDir, "model", "iris.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cortex.yaml"), append(yaml, authYAML...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model", "iris.onnx"), model, 0o644); err != nil {
		t.Fatal(err)
	}
	task := pack(t, dir)
	config, err := os.ReadFile(filepath.Join(task, "cortex.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(config), tokenEnv) || strings.Contains(string(config), token) {
		t.Fatalf("cortex.json %s: want the token's variable and not the token", config)
	}
	return task
}
