package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cortexfn/cortex/cmd/cortex/internal/examples"
	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/runtime/host"
)

func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(strings.NewReader(stdin), &out, &errb)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestPredict(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), "bad") {
			w.WriteHeader(422)
			io.WriteString(w, `{"error":"bad input"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"path": r.URL.Path, "q": r.URL.RawQuery, "h": r.Header.Get("X-K"), "body": string(body), "method": r.Method})
	}))
	defer srv.Close()
	tests := []struct {
		name       string
		stdin      string
		args       []string
		wantOut    string
		wantErrOut string
		wantErr    bool
	}{
		{"body", "", []string{"-d", `{"a":1}`}, `"body":"{\"a\":1}"`, "", false},
		{"stdin, route, query and header", `{"b":2}`, []string{"-d", "@-", "--path", "/v1/models/x:predict", "--query", "k=v", "-H", "X-K: 1"},
			`"h":"1","method":"POST","path":"/v1/models/x:predict","q":"k=v"`, "", false},
		{"no body is a GET", "", nil, `"method":"GET"`, "", false},
		{"non-2xx", "", []string{"-d", "bad"}, "", `422 {"error":"bad input"}`, true},
		{"bad header", "", []string{"-H", "nocolon"}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := run(t, tt.stdin, append([]string{"predict", "--url", srv.URL}, tt.args...)...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout %q, want it to contain %q", out, tt.wantOut)
			}
			if !strings.Contains(errOut, tt.wantErrOut) {
				t.Errorf("stderr %q, want it to contain %q", errOut, tt.wantErrOut)
			}
			if tt.name == "non-2xx" && out != "" {
				t.Errorf("an error body reached stdout: %q", out)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, _, err := run(t, "", "version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var v VersionInfo
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Version == "" || v.Go == "" {
		t.Errorf("version -o json: %q (%v)", out, err)
	}
	if _, _, err := run(t, "", "version", "-o", "yaml"); err == nil {
		t.Error("--output yaml accepted")
	}
}

const echoDir = "../../samples/echo-go"

// TestTestCommand runs `cortex test` on the echo-go sample end to end.
func TestTestCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a function")
	}
	t.Setenv("CORTEX_CACHE", t.TempDir())
	out, errOut, err := run(t, "", "test", echoDir, "-o", "json")
	if err != nil {
		t.Fatalf("cortex test: %v\n%s", err, errOut)
	}
	var sum examples.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if sum.Function != "echo-go" || sum.Failed != 0 || sum.Passed < 5 {
		t.Errorf("summary: %+v", sum)
	}
	if !strings.Contains(errOut, "echo-go | ") {
		t.Errorf("function logs are not forwarded with a prefix:\n%s", errOut)
	}
}

// TestServe runs `cortex serve` on two real samples behind one front
// server: each starts at zero processes, the first request cold-starts one,
// an idle function scales back to zero, and Ctrl-C leaves no process behind.
func TestServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs functions")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &testutil.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- serveFunctions(ctx, []string{echoDir, "../../samples/iris"},
			serveOptions{addr: "127.0.0.1:0", scaleDownAfter: time.Second, statusEvery: 100 * time.Millisecond,
				ports: map[string]int{"iris": 0}}, stdout, io.Discard)
	}()
	var urls []string
	for deadline := time.Now().Add(3 * time.Minute); len(urls) < 2 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		urls = strings.Fields(stdout.String())
		select {
		case err := <-done:
			t.Fatalf("serve ended early: %v", err)
		default:
		}
	}
	// iris has a port of its own (--ports iris=0): its URL is that port's.
	base := strings.TrimSuffix(urls[0], "/echo-go/")
	if len(urls) != 2 || !strings.HasSuffix(urls[0], "/echo-go/") || !strings.HasPrefix(urls[1], "http://127.0.0.1:") ||
		strings.HasPrefix(urls[1], base) || strings.Count(urls[1], "/") != 3 {
		t.Fatalf("serve printed %q, want the URL of echo-go on the front and iris's own port", urls)
	}
	status := func() map[string]host.FunctionStatus {
		m, err := host.FetchStatus(context.Background(), nil, base)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if s := status(); len(s["iris"].Processes) != 0 || len(s["echo-go"].Processes) != 0 {
		t.Fatalf("processes before any request: %+v, want none", s)
	}

	resp, err := http.Post(urls[1]+"predict", "application/json", strings.NewReader(
		`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"label"`) {
		t.Fatalf("iris cold request: %d %s", resp.StatusCode, body)
	}
	s := status()["iris"]
	if s.ColdStarts != 1 || len(s.Processes) != 1 {
		t.Fatalf("iris after one request: %d cold starts, %d processes; want 1 and 1", s.ColdStarts, len(s.Processes))
	}
	pid := s.Processes[0].PID
	// Warm, the process answers on the port itself: the host counts the
	// request from its report.
	resp, err = http.Post(urls[1]+"v2/models/iris/infer", "application/json", strings.NewReader(
		`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"label"`) {
		t.Fatalf("iris warm request on its port: %d %s", resp.StatusCode, body)
	}
	for deadline := time.Now().Add(10 * time.Second); status()["iris"].DirectRequests == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("iris's process did not report the request it answered on its port")
		}
	}

	// Idle for the scale-down time: back to zero, the process gone.
	for deadline := time.Now().Add(time.Minute); len(status()["iris"].Processes) != 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("iris did not scale to zero within a minute of idling")
		}
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after scale to zero: %v", pid, err)
	}

	resp, err = http.Post(urls[0]+"predict", "application/json", strings.NewReader(`{"name":"Ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("echo-go: %d", resp.StatusCode)
	}
	echoPID := status()["echo-go"].Processes[0].PID
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("serve did not return after cancel")
	}
	if err := syscall.Kill(echoPID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after serve returned: %v", echoPID, err)
	}
}

func TestExitErrorIsSilent(t *testing.T) {
	var silent exitError
	if !errors.As(error(exitError{"x"}), &silent) {
		t.Error("exitError not found")
	}
}

// TestSamples runs `cortex test` on every sample: each is built as a user
// would build it (the ONNX ones against the real ONNX Runtime, iris-wasm
// with its stage compiled to WebAssembly) and must pass all its examples.
func TestSamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every sample")
	}
	dirs, err := filepath.Glob("../../samples/*/cortex.yaml")
	if err != nil || len(dirs) < 3 {
		t.Fatalf("samples found: %v (%v), want at least iris, iris-wasm and echo-go", dirs, err)
	}
	for _, y := range dirs {
		dir := filepath.Dir(y)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out, errOut, err := run(t, "", "test", dir, "-o", "json")
			if err != nil {
				t.Fatalf("cortex test %s: %v\n%s", dir, err, errOut)
			}
			var sum examples.Summary
			if err := json.Unmarshal([]byte(out), &sum); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, out)
			}
			if sum.Failed != 0 || sum.Passed < 4 {
				t.Errorf("%s: %d passed, %d failed, want every example (at least 4) to pass:\n%s", dir, sum.Passed, sum.Failed, out)
			}
		})
	}
}

// TestPredictStream: --stream asks for server-sent events and prints each
// event's data as it arrives (the server waits for the first to be read
// before it sends the rest); -o json prints one object an event; an error
// event fails.
func TestPredictStream(t *testing.T) {
	firstRead := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "text/event-stream" {
			io.WriteString(w, `{"whole":true}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: output\ndata: {\"text\":\"In\"}\n\n")
		w.(http.Flusher).Flush()
		if strings.Contains(string(body), "wait") {
			<-firstRead
		}
		io.WriteString(w, "event: output\ndata: {\"text\":\" the\"}\n\n")
		if strings.Contains(string(body), "fail") {
			io.WriteString(w, "event: error\ndata: {\"status\":504,\"error\":\"too slow\"}\n\n")
			return
		}
		io.WriteString(w, "event: done\ndata: {\"status\":\"succeeded\"}\n\n")
	}))
	defer srv.Close()

	// As it arrives: the first line is printed before the rest is sent.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		root := newRoot(strings.NewReader(""), pw, io.Discard)
		root.SetArgs([]string{"predict", "--url", srv.URL, "--stream", "-d", "wait"})
		done <- root.ExecuteContext(context.Background())
		pw.Close()
	}()
	br := bufio.NewReader(pr)
	first, _ := br.ReadString('\n')
	close(firstRead)
	rest, _ := io.ReadAll(br)
	if err := <-done; err != nil || first != "{\"text\":\"In\"}\n" || string(rest) != "{\"text\":\" the\"}\n" {
		t.Errorf("streamed: %v %q %q", err, first, rest)
	}

	out, _, err := run(t, "", "predict", "--url", srv.URL, "--stream", "-d", "x", "-o", "json")
	if err != nil || out != "{\"event\":\"output\",\"data\":{\"text\":\"In\"}}\n{\"event\":\"output\",\"data\":{\"text\":\" the\"}}\n{\"event\":\"done\",\"data\":{\"status\":\"succeeded\"}}\n" {
		t.Errorf("-o json: %v %q", err, out)
	}
	out, errOut, err := run(t, "", "predict", "--url", srv.URL, "--stream", "-d", "fail")
	if err == nil || !strings.Contains(errOut, "too slow") || strings.Contains(out, "too slow") {
		t.Errorf("error event: %v, stdout %q, stderr %q", err, out, errOut)
	}
	if out, _, err := run(t, "", "predict", "--url", srv.URL, "-d", "x"); err != nil || out != "{\"whole\":true}\n" {
		t.Errorf("without --stream: %v %q", err, out)
	}
}
