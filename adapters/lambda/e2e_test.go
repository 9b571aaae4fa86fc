package lambda_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cortexfn/cortex/internal/testutil"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// functionBinary builds testdata/fn as Lambda runs Go: -tags lambda.norpc.
func functionBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cortex-lambda-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "bootstrap")
		out, err := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", binPath, "./testdata/fn").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building the function: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// process is a running function binary; exited closes when it ends.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startFunction runs the function binary against rt.
func startFunction(t *testing.T, rt *testutil.LambdaAPI, env ...string) *process {
	t.Helper()
	e := append(os.Environ(), "AWS_LAMBDA_RUNTIME_API="+rt.Addr(), "AWS_LAMBDA_FUNCTION_NAME=fn", "CORTEX_LAMBDA_INVOKE_MODE=")
	return startProcess(t, functionBinary(t), "", append(e, env...))
}

func urlEvent(t *testing.T, body string) []byte {
	var ev events.LambdaFunctionURLRequest
	mustUnmarshal(t, readEvent(t, "lambda-urls-request.json"), &ev)
	ev.Body = body
	ev.Headers["content-type"] = "application/json"
	// The capture's path (/my/path) is not a route of a function: post to
	// the function's own route, as a client of a deployed function does.
	ev.RawPath, ev.RequestContext.HTTP.Path = "/predict", "/predict"
	b, _ := json.Marshal(ev)
	return b
}

func urlResult(t *testing.T, res testutil.LambdaResult) events.LambdaFunctionURLResponse {
	t.Helper()
	if res.Kind != testutil.LambdaResponse {
		t.Fatalf("got a %s (%s), want a response", res.Kind, res.Body)
	}
	var r events.LambdaFunctionURLResponse
	mustUnmarshal(t, res.Body, &r)
	return r
}

func lambdaError(t *testing.T, res testutil.LambdaResult) (typ, msg string) {
	t.Helper()
	if res.Kind != testutil.LambdaError {
		t.Fatalf("got a %s (%.200s), want a function error", res.Kind, res.Body)
	}
	var e struct {
		Message string `json:"errorMessage"`
		Type    string `json:"errorType"`
	}
	mustUnmarshal(t, res.Body, &e)
	return e.Type, e.Message
}

// TestEndToEnd runs the compiled function binary against a Runtime API
// server, as Lambda runs it.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a function binary")
	}
	rt := testutil.NewLambdaAPI(t, testARN)
	config := filepath.Join(t.TempDir(), "cortex.json")
	if err := os.WriteFile(config, []byte(`{"name":"fn","limits":{"max_body":`+strconv.Itoa(1<<20)+`}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	fn := startFunction(t, rt, "CORTEX_CONFIG="+config)

	t.Run("success", func(t *testing.T) {
		_, res := rt.Invoke(t, "ok-1", urlEvent(t, `{"op": "echo"}`), time.Minute)
		// A buffered result is posted the way aws-lambda-go posts a
		// lambda.Handler's (the one handler kind it gives the payload as
		// it came): as application/octet-stream. Lambda reads a buffered
		// result alike whatever its type; a streamed one names its own
		// (TestEndToEndStreaming).
		if ct := res.Header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("posted with Content-Type %q, want application/octet-stream", ct)
		}
		r := urlResult(t, res)
		var got map[string]any
		mustUnmarshal(t, []byte(r.Body), &got)
		attrs := got["attributes"].(map[string]any)
		if r.StatusCode != 200 || got["path"] != "/predict" || got["carrier"] != "lambda" || got["id"] != "ok-1" ||
			attrs["lambda-request-id"] != "ok-1" || attrs["lambda-function-arn"] != testARN || r.Headers["X-Request-Id"] != "ok-1" {
			t.Errorf("got %d %s %v", r.StatusCode, r.Body, r.Headers)
		}
		_, res = rt.Invoke(t, "ok-direct", []byte(`{"op": "echo", "x": [1, 2]}`), time.Minute)
		if res.Kind != testutil.LambdaResponse {
			t.Fatalf("direct invoke: got %s %s", res.Kind, res.Body)
		}
		mustUnmarshal(t, res.Body, &got)
		if got["path"] != "/predict" || got["method"] != "POST" || got["body"] != `{"op": "echo", "x": [1, 2]}` {
			t.Errorf("direct invoke: got %s", res.Body)
		}
	})

	t.Run("any path", func(t *testing.T) {
		var ev events.LambdaFunctionURLRequest
		mustUnmarshal(t, urlEvent(t, `{}`), &ev)
		ev.RawPath, ev.RequestContext.HTTP.Path = "/my/path", "/my/path"
		b, _ := json.Marshal(ev)
		_, res := rt.Invoke(t, "route-1", b, time.Minute)
		// API Gateway and ALB mount functions under their own paths: any
		// path that is not an OIP or V1 route is the function's own route.
		r := urlResult(t, res)
		var got map[string]any
		mustUnmarshal(t, []byte(r.Body), &got)
		if r.StatusCode != 200 || got["path"] != "/my/path" {
			t.Errorf("got %d %s, want the predictor to see /my/path", r.StatusCode, r.Body)
		}
	})

	t.Run("predictor error", func(t *testing.T) {
		_, res := rt.Invoke(t, "fail-1", urlEvent(t, `{"op": "fail"}`), time.Minute)
		if r := urlResult(t, res); r.StatusCode != 422 || r.Body != `{"error":"cannot classify this input"}` {
			t.Errorf("got %d %s, want 422 with the message", r.StatusCode, r.Body)
		}
		_, res = rt.Invoke(t, "fail-2", []byte(`{"op": "fail"}`), time.Minute)
		if typ, msg := lambdaError(t, res); typ != "UnprocessableEntity" || msg != "422 Unprocessable Entity: cannot classify this input" {
			t.Errorf("direct invoke: got %s %q", typ, msg)
		}
	})

	t.Run("panic", func(t *testing.T) {
		_, res := rt.Invoke(t, "panic-1", urlEvent(t, `{"op": "panic"}`), time.Minute)
		if r := urlResult(t, res); r.StatusCode != 500 || !strings.Contains(r.Body, "panic-1") {
			t.Errorf("got %d %s, want 500 naming the request id", r.StatusCode, r.Body)
		}
		_, res = rt.Invoke(t, "panic-2", []byte(`{"op": "panic"}`), time.Minute)
		if typ, _ := lambdaError(t, res); typ != "InternalServerError" {
			t.Errorf("direct invoke: got %s", typ)
		}
		// The process survives and serves the next invocation.
		_, res = rt.Invoke(t, "after-panic", urlEvent(t, `{}`), time.Minute)
		if r := urlResult(t, res); r.StatusCode != 200 {
			t.Errorf("after a panic: got %d", r.StatusCode)
		}
		select {
		case <-fn.exited:
			t.Error("the function exited after a panic")
		default:
		}
	})

	t.Run("timeout", func(t *testing.T) {
		inv, res := rt.Invoke(t, "slow-1", urlEvent(t, `{"op": "sleep"}`), 800*time.Millisecond)
		if r := urlResult(t, res); r.StatusCode != 504 {
			t.Errorf("got %d %s, want 504", r.StatusCode, r.Body)
		}
		if !res.At.Before(inv.Deadline) {
			t.Errorf("answered %s after the deadline", res.At.Sub(inv.Deadline))
		}
		inv, res = rt.Invoke(t, "slow-2", []byte(`{"op": "sleep"}`), 800*time.Millisecond)
		if typ, _ := lambdaError(t, res); typ != "GatewayTimeout" {
			t.Errorf("direct invoke: got %s", typ)
		}
		if !res.At.Before(inv.Deadline) {
			t.Errorf("direct invoke answered %s after the deadline", res.At.Sub(inv.Deadline))
		}
	})

	t.Run("oversized payload", func(t *testing.T) {
		_, res := rt.Invoke(t, "big-req", urlEvent(t, strings.Repeat("x", 1<<20+1)), time.Minute)
		if r := urlResult(t, res); r.StatusCode != 413 || !strings.Contains(r.Body, "1048577 bytes") {
			t.Errorf("request body over the limit: got %d %s", r.StatusCode, r.Body)
		}
		_, res = rt.Invoke(t, "big-direct", []byte(`"`+strings.Repeat("x", 1<<20)+`"`), time.Minute)
		if typ, _ := lambdaError(t, res); typ != "RequestEntityTooLarge" {
			t.Errorf("direct payload over the limit: got %s", typ)
		}
		// Without the carrier's check Lambda would refuse this response and
		// the runtime loop would end (the fake answers 413 as Lambda does).
		_, res = rt.Invoke(t, "big-resp", urlEvent(t, `{"op": "big", "n": 7340032}`), time.Minute)
		if r := urlResult(t, res); r.StatusCode != 413 || !strings.Contains(r.Body, "RESPONSE_STREAM") {
			t.Errorf("response over 6 MB: got %d %s", r.StatusCode, r.Body)
		}
		_, res = rt.Invoke(t, "still-up", urlEvent(t, `{}`), time.Minute)
		if r := urlResult(t, res); r.StatusCode != 200 {
			t.Errorf("after oversized payloads: got %d", r.StatusCode)
		}
	})
}

// TestEndToEndStreaming runs the binary with InvokeMode RESPONSE_STREAM: a
// response past the buffered limit is streamed.
func TestEndToEndStreaming(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a function binary")
	}
	rt := testutil.NewLambdaAPI(t, testARN)
	startFunction(t, rt, "CORTEX_LAMBDA_INVOKE_MODE=RESPONSE_STREAM")
	const n = 7 << 20
	_, res := rt.Invoke(t, "stream-1", urlEvent(t, fmt.Sprintf(`{"op": "big", "n": %d}`, n)), time.Minute)
	if res.Kind != testutil.LambdaResponse {
		t.Fatalf("got %s %.200s", res.Kind, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/vnd.awslambda.http-integration-response" {
		t.Errorf("Content-Type: got %q", ct)
	}
	prelude, body, ok := bytes.Cut(res.Body, make([]byte, 8))
	if !ok {
		t.Fatalf("no prelude in %.200q", res.Body)
	}
	var p struct {
		StatusCode int               `json:"statusCode"`
		Headers    map[string]string `json:"headers"`
	}
	mustUnmarshal(t, prelude, &p)
	if p.StatusCode != 200 || p.Headers["Content-Type"] != "text/plain; charset=utf-8" || len(body) != n {
		t.Errorf("got %d %v and %d bytes, want 200 text and %d bytes", p.StatusCode, p.Headers, len(body), n)
	}
}

// TestEndToEndInitError checks that a function that cannot initialise
// reports it to init/error and exits.
func TestEndToEndInitError(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a function binary")
	}
	rt := testutil.NewLambdaAPI(t, testARN)
	fn := startFunction(t, rt, "CORTEX_TEST_INIT_ERROR=loading model: model.onnx: no such file")
	select {
	case res := <-rt.Results():
		if res.Kind != testutil.LambdaInitError {
			t.Fatalf("got %s, want init-error", res.Kind)
		}
		if got := res.Header.Get("Lambda-Runtime-Function-Error-Type"); got != "InitError" {
			t.Errorf("Lambda-Runtime-Function-Error-Type: got %q", got)
		}
		var e struct{ ErrorMessage, ErrorType string }
		mustUnmarshal(t, res.Body, &e)
		if e.ErrorType != "InitError" || !strings.Contains(e.ErrorMessage, `function "fn": loading model: model.onnx: no such file`) {
			t.Errorf("body: got %s", res.Body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no init error reported")
	}
	select {
	case <-fn.exited:
		if code := fn.cmd.ProcessState.ExitCode(); code == 0 {
			t.Errorf("exit code: got 0, want a failure")
		}
	case <-time.After(10 * time.Second):
		t.Error("the function did not exit after its init error")
	}
}
