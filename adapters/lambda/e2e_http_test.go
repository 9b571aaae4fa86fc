package lambda_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/internal/testutil"
)

// environ is os.Environ without the variables named, so a child process
// sees only what the test gives it.
func environ(without ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, w := range without {
			drop = drop || k == w
		}
		if !drop {
			env = append(env, kv)
		}
	}
	return env
}

// startProcess runs bin in dir (the test's directory when empty) with env,
// and stops it when the test ends.
func startProcess(t *testing.T, bin, dir string, env []string) *process {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s stderr:\n%s", bin, stderr.String())
		}
	})
	return &process{cmd: cmd, exited: exited}
}

// isolated is what a function process must not inherit from the test's
// environment: where to find its config, its name, its carrier, and where
// this machine keeps the ONNX Runtime library.
var isolated = []string{"CORTEX_CONFIG", "CORTEX_ONNXRUNTIME_LIB", "CORTEX_CACHE", "XDG_CACHE_HOME",
	"LAMBDA_TASK_ROOT", "AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME", "K_SERVICE", "PORT"}

// startHTTP runs bin as Knative runs it, an HTTP server on $PORT (no
// AWS_LAMBDA_RUNTIME_API), in dir, with env beside the isolated
// environment, and returns its URL once it is ready.
func startHTTP(t *testing.T, bin, dir string, env ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	env = append(environ(isolated...), append([]string{"PORT=" + port, "CORTEX_HOST=127.0.0.1"}, env...)...)
	p := startProcess(t, bin, dir, env)
	url := "http://127.0.0.1:" + port
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready: %v", bin, p.cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not ready at %s after a minute", bin, url)
		}
	}
}

func httpDo(t *testing.T, method, url, body string) httpAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return httpAnswer{status: resp.StatusCode, header: resp.Header, body: readAll(t, resp.Body)}
}

// TestEndToEndRoutes runs the function binary under Lambda and as an HTTP
// server: its health, readiness, metrics and OIP routes answer alike
// through a function URL and an ALB, as runtime.Main wires them.
func TestEndToEndRoutes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a function binary")
	}
	bin := functionBinary(t)
	base := startHTTP(t, bin, "", "K_SERVICE=fn") // the name Lambda gives it below
	rt := testutil.NewLambdaAPI(t, testARN)
	startFunction(t, rt)
	n := 0
	for _, kind := range []eventKind{eventKinds[0], eventKinds[4]} {
		for _, path := range []string{"/healthz", "/readyz", "/v2", "/v2/health/ready", "/v2/models/fn", "/v1/models/fn", "/metrics"} {
			t.Run(kind.name+"/"+path, func(t *testing.T) {
				want := httpDo(t, "GET", base+path, "")
				n++
				_, res := rt.Invoke(t, fmt.Sprint("route-", n), kind.build(t, "GET", path, ""), time.Minute)
				if res.Kind != testutil.LambdaResponse {
					t.Fatalf("got a %s: %s", res.Kind, res.Body)
				}
				got := decodeAnswer(t, res.Body)
				if path == "/metrics" {
					// The counts differ between the two processes; the
					// answer is the same exposition.
					if got.status != 200 || !strings.Contains(got.body, "# TYPE cortex_") || got.header.Get("Content-Type") != want.header.Get("Content-Type") {
						t.Errorf("got %d %s %.200q, want 200 Prometheus metrics of type %s", got.status, got.header.Get("Content-Type"), got.body, want.header.Get("Content-Type"))
					}
					return
				}
				compareAnswers(t, got, want)
			})
		}
	}
}

// TestEndToEndDirectInvokeMatchesHTTP sends payloads that are not one JSON
// document (malformed, empty, blank, trailing data) by direct invoke
// through the real Runtime API client: each is the function's own 400, as
// the same bytes posted over HTTP are, not aws-lambda-go's decoding error.
func TestEndToEndDirectInvokeMatchesHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a function binary")
	}
	bin := functionBinary(t)
	base := startHTTP(t, bin, "", "K_SERVICE=fn") // the name Lambda gives it below
	rt := testutil.NewLambdaAPI(t, testARN)
	startFunction(t, rt)
	tests := []struct {
		name, payload string
		status        int
	}{
		{"not JSON", "not json", 400},
		{"empty", "", 400},
		{"blank", " \n\t", 400},
		{"truncated", `{"op": `, 400},
		{"trailing data", `{"op": "echo"} {"op": "fail"}`, 400},
		{"invalid UTF-8", "\xff\xfe", 400},
		{"a predictor's own status", `{"op": "fail"}`, 422},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := httpDo(t, "POST", base+"/predict", tt.payload)
			if want.status != tt.status {
				t.Fatalf("over HTTP: got %d %s, want %d", want.status, want.body, tt.status)
			}
			var e struct{ Error string }
			mustUnmarshal(t, []byte(want.body), &e)
			_, res := rt.Invoke(t, fmt.Sprint("direct-", i), []byte(tt.payload), time.Minute)
			typ, msg := lambdaError(t, res)
			text := http.StatusText(tt.status)
			wantType, wantMsg := strings.ReplaceAll(text, " ", ""), fmt.Sprintf("%d %s: %s", tt.status, text, e.Error)
			if typ != wantType || msg != wantMsg {
				t.Errorf("got %s %q\nwant %s %q", typ, msg, wantType, wantMsg)
			}
		})
	}
	// The process still serves.
	_, res := rt.Invoke(t, "after", []byte(`{"op": "echo"}`), time.Minute)
	if res.Kind != testutil.LambdaResponse {
		t.Errorf("after the bad payloads: got %s %s", res.Kind, res.Body)
	}
}
