package build_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cortexfn/cortex/packager/build"
	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime"
)

const echoDir = "../../samples/echo-go"

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// TestBinaryEchoGo builds the echo-go sample, runs it as a function
// process would run, asks it for a prediction and stops it with SIGTERM.
func TestBinaryEchoGo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	s, err := spec.Load(echoDir)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	var progress bytes.Buffer
	opts := build.Options{Dir: echoDir, Spec: s, CacheDir: cache, Progress: &progress}
	ctx := context.Background()
	res, err := build.Binary(ctx, opts)
	if err != nil {
		t.Fatalf("Binary: %v", err)
	}
	if res.Cached {
		t.Error("first build reports Cached")
	}
	if !strings.HasPrefix(res.Path, filepath.Join(cache, "bin")) {
		t.Errorf("binary %s is not in the cache %s", res.Path, cache)
	}
	again, err := build.Binary(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Path != res.Path {
		t.Errorf("second build: got %+v, want the cached %s", again, res.Path)
	}
	if !strings.Contains(progress.String(), "building echo-go") || !strings.Contains(progress.String(), "using the cached echo-go binary") {
		t.Errorf("progress:\n%s", progress.String())
	}

	cfgPath := filepath.Join(t.TempDir(), "config.json")
	if err := build.WriteConfig(s.RuntimeConfig(), cfgPath); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cmd := exec.Command(res.Path)
	cmd.Env = append(os.Environ(), "PORT="+port, "CORTEX_HOST=127.0.0.1", "CORTEX_CONFIG="+cfgPath)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})
	base := "http://127.0.0.1:" + port
	waitReady(t, base+"/readyz", exited, &logs)

	resp, err := http.Post(base+"/predict?shout=true", "application/json", strings.NewReader(`{"name":"Ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"message":"HELLO, ADA!"`) {
		t.Errorf("POST /predict: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Post(base+"/predict", "application/json", strings.NewReader(`{"name":"Bartholomew Montgomery Fitzwilliam"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 422 || !strings.Contains(string(body), "at most 32") {
		t.Errorf("a name longer than predictor.config.max_name_length: %d %s", resp.StatusCode, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit 15s after SIGTERM\n%s", logs.String())
	}
}

func waitReady(t *testing.T, url string, exited chan error, logs *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("function exited before ready: %v\n%s", err, logs.String())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("not ready in 20s\n%s", logs.String())
}

// TestGoContract builds predictors outside any module (so they are overlaid
// into the CLI's SDK) and checks that a New with the wrong shape is
// reported as the contract it breaks.
func TestGoContract(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	const imports = "package predictor\n\nimport (\n\t\"context\"\n\n\t\"github.com/cortexfn/cortex/functions\"\n)\n\n" +
		"type P struct{}\n\nfunc (*P) Predict(context.Context, *functions.Request) (*functions.Response, error) { return nil, nil }\n\n"
	tests := []struct {
		name string
		src  string
		want string // substring of the error; "" for success
	}{
		{"concrete return type is fine", imports + "func New() *P { return &P{} }\n", ""},
		{"no New", imports + "func Make() functions.Predictor { return &P{} }\n", "does not export func New() functions.Predictor"},
		{"New returns an error too", imports + "func New() (functions.Predictor, error) { return &P{}, nil }\n", "New must return exactly one value"},
		{"New takes arguments", imports + "func New(cfg string) functions.Predictor { return &P{} }\n", "New must take no arguments"},
		{"New returns something else", imports + "func New() int { return 1 }\n", "New must return a functions.Predictor"},
		{"New is a variable", imports + "var New = 3\n", "New must be a function"},
		{"package main", "package main\n\nfunc main() {}\n", "is package main"},
		{"user code does not compile", imports + "func New() functions.Predictor { return &P{} }\nvar x int = \"s\"\n", "the Go code does not compile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "cortex.yaml"), "name: contract\npredictor: {type: go, path: ./predictor}\n")
			write(t, filepath.Join(dir, "predictor", "predictor.go"), tt.src)
			s, err := spec.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			_, err = build.Binary(context.Background(), build.Options{Dir: dir, Spec: s, CacheDir: t.TempDir()})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Binary: %v", err)
				}
				return
			}
			var be *build.Error
			if !errors.As(err, &be) {
				t.Fatalf("got %v (%T), want a *build.Error", err, err)
			}
			if !strings.Contains(be.Message, tt.want) {
				t.Errorf("got message %q, want it to contain %q\n%s", be.Message, tt.want, err)
			}
			if be.Output == "" {
				t.Error("the compiler's output is missing")
			}
		})
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWriteConfig(t *testing.T) {
	s, err := spec.Load(echoDir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sub", "config.json")
	if err := build.WriteConfig(s.RuntimeConfig(), path); err != nil {
		t.Fatal(err)
	}
	got, err := runtime.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := s.RuntimeConfig()
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("read back:\n got %+v\nwant %+v", *got, want)
	}
	if got.Predictor.Values["greeting"] != "Hello" {
		t.Errorf("predictor.config did not survive: %v", got.Predictor.Values)
	}
}

// TestSameFunctionElsewhere: the same function in another directory (a
// second checkout, a CI clone, a test's copy) is the same binary, so the
// cache has it, whether it builds in the SDK (no go.mod) or in its own
// module; changing one of its Go files makes another.
func TestSameFunctionElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	for _, tc := range []struct {
		name  string
		gomod string // written into each copy when set
	}{
		{"in the SDK", ""},
		{"its own module", "module example.com/echo\n\ngo 1.26\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			build1 := func(dir string) build.Result {
				t.Helper()
				s, err := spec.Load(dir)
				if err != nil {
					t.Fatal(err)
				}
				res, err := build.Binary(context.Background(), build.Options{Dir: dir, Spec: s, CacheDir: cache})
				if err != nil {
					t.Fatalf("building %s: %v", dir, err)
				}
				return res
			}
			copyOf := func() string {
				t.Helper()
				dir := filepath.Join(t.TempDir(), "echo-go")
				if err := os.CopyFS(dir, os.DirFS(echoDir)); err != nil {
					t.Fatal(err)
				}
				os.RemoveAll(filepath.Join(dir, "dist"))
				if tc.gomod != "" {
					if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(tc.gomod), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				return dir
			}
			first := build1(copyOf())
			second := build1(copyOf())
			if !second.Cached || second.Path != first.Path {
				t.Errorf("the same function in another directory: %+v, want the cached %s", second, first.Path)
			}
			changed := copyOf()
			if err := os.WriteFile(filepath.Join(changed, "predictor", "extra.go"), []byte("package predictor\n\nconst extra = 1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if third := build1(changed); third.Cached || third.Path == first.Path {
				t.Errorf("a function with another Go file: %+v, want a new build", third)
			}
		})
	}
}
