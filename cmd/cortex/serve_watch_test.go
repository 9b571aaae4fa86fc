package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/runtime/host"
)

// copyFunctionDir copies the function directory src to dst.
func copyFunctionDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if d.Name() == "dist" {
				return filepath.SkipDir
			}
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// serveRun is a `cortex serve` running in the test.
type serveRun struct {
	base   string
	stderr *testutil.SyncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startServe runs serveFunctions on dirs (on 127.0.0.1 unless o.addr says
// otherwise) until the test ends, and waits for it to print the URLs of
// want functions.
func startServe(t *testing.T, dirs []string, o serveOptions, want int) *serveRun {
	t.Helper()
	if o.addr == "" {
		o.addr = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &serveRun{stderr: &testutil.SyncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	stdout := &testutil.SyncBuffer{}
	go func() { s.done <- serveFunctions(ctx, dirs, o, stdout, s.stderr) }()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("cortex serve's stderr:\n%s", s.stderr.String())
		}
	})
	var urls []string
	for deadline := time.Now().Add(5 * time.Minute); len(urls) < want; time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("serve ended early: %v\n%s", err, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve printed %q after 5 minutes, want %d URLs", urls, want)
		}
		urls = strings.Fields(stdout.String())
	}
	u := urls[0]
	s.base = u[:strings.Index(u[len("http://"):], "/")+len("http://")]
	return s
}

// stop cancels serve (Ctrl-C) and checks that it ends cleanly.
func (s *serveRun) stop(t *testing.T) {
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
		s.done <- nil // a second stop returns at once
	case <-time.After(2 * time.Minute):
		t.Error("serve did not return within 2 minutes of cancel")
	}
}

func (s *serveRun) status(t *testing.T) map[string]host.FunctionStatus {
	t.Helper()
	m, err := host.FetchStatus(context.Background(), nil, s.base)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// watchReply is one answer from a function: its status and the "message" or
// "error" of its JSON body.
type watchReply struct {
	status  int
	message string
	err     string
}

var watchClient = &http.Client{Timeout: time.Minute}

func watchPost(url, body string) watchReply {
	resp, err := watchClient.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return watchReply{err: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v struct{ Message, Error string }
	if err := json.Unmarshal(b, &v); err != nil {
		return watchReply{status: resp.StatusCode, err: fmt.Sprintf("body not JSON: %q", b)}
	}
	return watchReply{status: resp.StatusCode, message: v.Message, err: v.Error}
}

// pollUntil calls cond until it holds, failing the test after a generous bound.
func pollUntil(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(bound); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", bound, what)
		}
	}
}

// TestServeWatchSwapsWithoutFailing edits a served Go function while 20
// clients call it: the answers switch to the new code with no request
// failing; then a syntax error leaves the new code serving, with the build
// error in /-/status.
func TestServeWatchSwapsWithoutFailing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs functions")
	}
	dir := filepath.Join(t.TempDir(), "echo-go")
	copyFunctionDir(t, echoDir, dir)
	s := startServe(t, []string{dir}, serveOptions{watch: true}, 1)
	url := s.base + "/echo-go/predict"
	const before, after = "Hello, Ada!", "Hello again, Ada!"
	if r := watchPost(url, `{"name":"Ada"}`); r.status != http.StatusOK || r.message != before {
		t.Fatalf("first request: %+v, want 200 %q", r, before)
	}

	const clients = 20
	var (
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		total   atomic.Int64
		replies = make([][]watchReply, clients)
	)
	for c := range clients {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				replies[c] = append(replies[c], watchPost(url, `{"name":"Ada"}`))
				total.Add(1)
			}
		})
	}
	more := func(n int64) {
		t.Helper()
		want := total.Load() + n
		pollUntil(t, 2*time.Minute, fmt.Sprintf("the clients did not get %d more answers", n), func() bool { return total.Load() >= want })
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}()
	more(100)

	src := filepath.Join(dir, "predictor", "predictor.go")
	code, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(code), `fmt.Sprintf("%s, %s!", e.greeting, name)`, `fmt.Sprintf("%s again, %s!", e.greeting, name)`, 1)
	if edited == string(code) {
		t.Fatal("the sample's predictor no longer has the line this test edits")
	}
	if err := os.WriteFile(src, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 5*time.Minute, "the edited predictor never answered", func() bool {
		return watchPost(url, `{"name":"Ada"}`).message == after
	})
	more(100)

	// A syntax error: the build fails, the edited code serves on.
	if err := os.WriteFile(src, []byte(edited+"\nfunc broken( {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 5*time.Minute, "/-/status never showed the build error", func() bool {
		return s.status(t)["echo-go"].BuildError != ""
	})
	more(100)
	close(stop)
	wg.Wait()

	seen := map[string]int{}
	failed := 0
	for c, rs := range replies {
		switched := false
		for i, r := range rs {
			switch {
			case r.status != http.StatusOK || (r.message != before && r.message != after):
				if failed++; failed <= 5 {
					t.Errorf("client %d request %d: %+v, want 200 with %q or %q", c, i, r, before, after)
				}
				continue
			case r.message == before && switched:
				t.Errorf("client %d request %d: the old code answered after the new one had", c, i)
			}
			switched = switched || r.message == after
			seen[r.message]++
		}
	}
	if failed > 0 {
		t.Errorf("%d failed requests, want 0", failed)
	}
	if seen[before] == 0 || seen[after] == 0 {
		t.Errorf("answers: %v, want both the old and the new code's", seen)
	}

	st := s.status(t)["echo-go"]
	if st.State != host.StateReady || st.Revision != 2 {
		t.Errorf("/-/status after the failed build: state %q revision %d, want ready and 2", st.State, st.Revision)
	}
	if !strings.Contains(st.BuildError, "predictor.go") {
		t.Errorf("/-/status build error %q, want it to name predictor.go", st.BuildError)
	}
	if r := watchPost(url, `{"name":"Ada"}`); r.status != http.StatusOK || r.message != after {
		t.Errorf("request after the failed build: %+v, want 200 %q", r, after)
	}
	if logs := s.stderr.String(); !strings.Contains(logs, "echo-go: the rebuild failed, the previous build serves on") {
		t.Errorf("stderr does not report the failed rebuild:\n%s", logs)
	}
}

// TestServeServesABrokenFunction serves a function whose model is missing
// beside one that works: it answers 503 with the spec's error and shows as
// failed; with --watch, adding the model makes it healthy.
func TestServeServesABrokenFunction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs functions")
	}
	root := t.TempDir()
	echo, iris := filepath.Join(root, "echo-go"), filepath.Join(root, "iris")
	copyFunctionDir(t, echoDir, echo)
	copyFunctionDir(t, "../../samples/iris", iris)
	model := filepath.Join(iris, "model", "iris.onnx")
	onnx, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Dir(model)); err != nil {
		t.Fatal(err)
	}

	s := startServe(t, []string{echo, iris}, serveOptions{watch: true}, 2)
	r := watchPost(s.base+"/iris/predict", `{}`)
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("request to iris without its model: %+v, want 503", r)
	}
	for _, want := range []string{filepath.Join(iris, "cortex.yaml"), "predictor.model", "model/iris.onnx does not exist"} {
		if !strings.Contains(r.err, want) {
			t.Errorf("503 error %q, want it to contain %q", r.err, want)
		}
	}
	if r := watchPost(s.base+"/echo-go/predict", `{"name":"Ada"}`); r.status != http.StatusOK {
		t.Errorf("request to echo-go beside a broken function: %+v, want 200", r)
	}
	st := s.status(t)
	if got := st["iris"]; got.State != host.StateFailed || !strings.Contains(got.Error, "model/iris.onnx does not exist") {
		t.Errorf("/-/status of iris: state %q error %q, want failed with the spec's error", got.State, got.Error)
	}
	if got := st["echo-go"]; got.State != host.StateReady {
		t.Errorf("/-/status of echo-go: state %q, want ready", got.State)
	}

	// The model arrives: iris builds and serves.
	if err := os.MkdirAll(filepath.Dir(model), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(model, onnx, 0o644); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 5*time.Minute, "iris did not serve once its model was there", func() bool {
		return watchPost(s.base+"/iris/predict", `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`).status == http.StatusOK
	})
	if got := s.status(t)["iris"]; got.State != host.StateReady || got.Error != "" || got.Revision != 2 {
		t.Errorf("/-/status of iris once it builds: %+v, want ready, revision 2, no error", got)
	}
}

func TestServeFailsWhenNothingBuilds(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "iris")
	copyFunctionDir(t, "../../samples/iris", dir)
	if err := os.RemoveAll(filepath.Join(dir, "model")); err != nil {
		t.Fatal(err)
	}
	err := serveFunctions(context.Background(), []string{dir}, serveOptions{addr: "127.0.0.1:0"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "model/iris.onnx does not exist") {
		t.Errorf("serve of a lone function that does not build, without --watch: %v, want its error", err)
	}
}

func TestWatchIgnores(t *testing.T) {
	tests := []struct {
		rel  string
		want bool
	}{
		{"predictor/predictor.go", false},
		{"cortex.yaml", false},
		{"model/iris.onnx", false},
		{"stages/main.go", false},
		{"go.mod", false},
		{"dist/image.tar", true},
		{"dist", true},
		{"predictor/dist.go", false},
		{".git/index", true},
		{"predictor/.predictor.go.swp", true},
		{"predictor/.#predictor.go", true},
		{"predictor/#predictor.go#", true},
		{"predictor/predictor.go~", true},
		{"predictor/4913", true},
		{"predictor/predictor.go___jb_tmp___", true},
		{".idea/workspace.xml", true},
	}
	for _, tt := range tests {
		t.Run(tt.rel, func(t *testing.T) {
			if got := ignored(filepath.FromSlash(tt.rel)); got != tt.want {
				t.Errorf("ignored(%q) = %v, want %v", tt.rel, got, tt.want)
			}
		})
	}
}

func TestFailedName(t *testing.T) {
	dir := t.TempDir()
	mk := func(name, yaml string) string {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if yaml != "" {
			if err := os.WriteFile(filepath.Join(d, "cortex.yaml"), []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	tests := []struct {
		name, dir, want string
	}{
		{"the spec's name", mk("a", "name: sentiment\npredictor: {type: onnx, model: nope.onnx}\n"), "sentiment"},
		{"unreadable yaml", mk("My_Func", "name: [\n"), "my-func"},
		{"invalid name", mk("b", "name: Not Valid\n"), "b"},
		{"no spec", mk("--", ""), "function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := failedName(tt.dir); got != tt.want {
				t.Errorf("failedName(%s) = %q, want %q", tt.dir, got, tt.want)
			}
		})
	}
}
