// Package outside uses the cortex CLI as a user would: a copy of the built
// binary, run from a directory outside this repository with a fresh HOME
// and cortex cache, with the repository hidden from it (a tmpfs mounted over
// it in a mount namespace of its own), and the Go module proxy switched off:
// whatever it builds, it builds from what the binary carries and the module
// cache holds.
package outside

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cortexfn/cortex"
	"github.com/cortexfn/cortex/internal/testutil"
)

// user is one person's machine: a HOME, a work directory and the CLI.
type user struct {
	t    *testing.T
	repo string
	cli  string
	work string
	env  []string
}

// The CLI is built once for the package's tests (buildCLI): linking it is
// seconds each time, and every test's user gets the same binary anyway.
var (
	cliOnce  sync.Once
	cliDir   string // removed by TestMain
	cliBuilt string
	cliErr   error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cliDir != "" {
		os.RemoveAll(cliDir)
	}
	os.Exit(code)
}

// buildCLI builds the CLI from the repository at repo, the first time it
// is called, and returns the binary's path.
func buildCLI(repo string) (string, error) {
	cliOnce.Do(func() {
		if cliDir, cliErr = os.MkdirTemp("", "cortex-outside-cli-"); cliErr != nil {
			return
		}
		cliBuilt = filepath.Join(cliDir, "cortex")
		build := exec.Command("go", "build", "-o", cliBuilt, "./cmd/cortex") // make build's flags: its compiled packages are shared
		build.Dir = repo
		if out, err := build.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("building the CLI: %w\n%s", err, out)
		}
	})
	return cliBuilt, cliErr
}

// newUser gives a test a user outside the repository: the CLI, built once
// (buildCLI) into a directory that holds nothing else, and a fresh home,
// cache and work directory.
func newUser(t *testing.T) *user {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("hiding the repository needs a mount namespace: run the tests as root (CI does)")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	u := &user{t: t, repo: repo, work: filepath.Join(root, "work")}
	if u.cli, err = buildCLI(repo); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(root, "home")
	for _, d := range []string{home, u.work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The Go module and build caches stay warm (they are the machine's, not
	// cortex's); npm keeps its own cache so ONNX Runtime is not downloaded
	// again, though it is fetched into the fresh cortex cache.
	goEnv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	npmCache := filepath.Join(os.Getenv("HOME"), ".npm") // npm's default
	if out, err := exec.Command("npm", "config", "get", "cache").Output(); err == nil {
		npmCache = strings.TrimSpace(string(out))
	}
	drop := map[string]bool{"HOME": true, "CORTEX_CACHE": true, "XDG_CACHE_HOME": true, "GOFLAGS": true, "GOPROXY": true,
		"GOWORK": true, "CORTEX_ONNXRUNTIME_LIB": true, "PWD": true}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			u.env = append(u.env, kv)
		}
	}
	u.env = append(u.env, "HOME="+home, "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local",
		"GOMODCACHE="+goEnv("GOMODCACHE"), "GOCACHE="+goEnv("GOCACHE"), "npm_config_cache="+npmCache)
	// Prove the hiding works before relying on it.
	if out := u.must("sh", "-c", `ls -A "$0" | wc -l`, repo); strings.TrimSpace(out) != "0" {
		t.Fatalf("the repository is still visible to the CLI: %s entries", out)
	}
	return u
}

// command runs name in the work directory, in a mount namespace where the
// repository is an empty tmpfs.
func (u *user) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	wrapped := append([]string{"--mount", "--propagation", "private", "--", "sh", "-c",
		`mount -t tmpfs cortex-hidden "$0" && exec "$@"`, u.repo, name}, args...)
	cmd := exec.CommandContext(ctx, "unshare", wrapped...)
	cmd.Dir = u.work
	cmd.Env = u.env
	return cmd
}

// cortex runs the CLI and returns its stdout; stderr goes to the test log.
func (u *user) cortex(args ...string) (string, error) {
	u.t.Helper()
	cmd := u.command(context.Background(), u.cli, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	u.t.Logf("$ cortex %s\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
	if err != nil {
		return stdout.String(), fmt.Errorf("cortex %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

func (u *user) must(name string, args ...string) string {
	u.t.Helper()
	if name == "cortex" {
		out, err := u.cortex(args...)
		if err != nil {
			u.t.Fatal(err)
		}
		return out
	}
	out, err := u.command(context.Background(), name, args...).CombinedOutput()
	if err != nil {
		u.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// write puts files (relative path -> content) into the work directory.
func (u *user) write(files map[string]string) {
	u.t.Helper()
	for rel, content := range files {
		p := filepath.Join(u.work, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			u.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			u.t.Fatal(err)
		}
	}
}

// serve starts `cortex serve DIR` on a free port, sends one request to the
// function (a cold start: it starts at zero processes) and stops serve.
func (u *user) serve(dir, path, body string) (int, string) {
	u.t.Helper()
	port := testutil.FreePort(u.t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := u.command(ctx, u.cli, "serve", dir, "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--status-every", "0")
	var logs testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		u.t.Logf("cortex serve %s:\n%s", dir, logs.String())
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if resp, err := http.Get(base + "/-/status"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("cortex serve did not answer /-/status\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return post(u.t, base+"/"+filepath.Base(dir)+path, body)
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// packageAndRun packages dir, runs its image in runc and sends one request.
func (u *user) packageAndRun(dir, path, body string) (int, string) {
	u.t.Helper()
	out := u.must("cortex", "package", dir, "--image-tag", "e2e", "-o", "json")
	var res struct {
		Image struct{ Layout string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Image.Layout == "" {
		u.t.Fatalf("cortex package -o json: %v\n%s", err, out)
	}
	lay := res.Image.Layout
	if !filepath.IsAbs(lay) {
		lay = filepath.Join(u.work, lay)
	}
	c := testutil.RunImage(u.t, lay, "e2e")
	defer c.Stop(u.t)
	return post(u.t, c.URL+path, body)
}

// TestGoFunction: init, test, serve and package a Go function in a
// directory of the user's own, with nothing but the CLI.
func TestGoFunction(t *testing.T) {
	u := newUser(t)
	u.must("cortex", "init", "greeter", "--type", "go")
	for _, f := range []string{"go.mod", ".gitignore", "go.work", "go.work.sum"} {
		if _, err := os.Stat(filepath.Join(u.work, "greeter", f)); err != nil {
			t.Errorf("cortex init wrote no %s: %v", f, err)
		}
	}
	if out := u.must("cortex", "test", "greeter"); !strings.Contains(out, "greeter: 2 passed, 0 failed") {
		t.Fatalf("cortex test: %s", out)
	}
	// The go.work cortex init wrote lets the go command itself check the code.
	u.must("sh", "-c", `cd greeter && GOWORK= GOFLAGS= go vet ./...`)

	status, body := u.serve("greeter", "/predict", `{"name": "Ada"}`)
	if status != 200 || !strings.Contains(body, `"message":"Hello, Ada!"`) {
		t.Errorf("cortex serve: %d %s", status, body)
	}
	status, body = u.packageAndRun("greeter", "/predict", `{"name": "Ada"}`)
	if status != 200 || !strings.Contains(body, `"message":"Hello, Ada!"`) {
		t.Errorf("the packaged image: %d %s", status, body)
	}
}

// TestONNXFunction: a function with no Go code at all.
func TestONNXFunction(t *testing.T) {
	u := newUser(t)
	u.must("cortex", "init", "clf", "--type", "onnx")
	if _, err := os.Stat(filepath.Join(u.work, "clf", "go.mod")); err == nil {
		t.Error("cortex init wrote a go.mod for a function with no Go code")
	}
	if out := u.must("cortex", "test", "clf"); !strings.Contains(out, "clf: 1 passed, 0 failed") {
		t.Fatalf("cortex test: %s", out)
	}
	const req = `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`
	const want = `"data":[5.1,3.5,1.4,0.2]`
	status, body := u.serve("clf", "/v2/models/clf/infer", req)
	if status != 200 || !strings.Contains(body, want) {
		t.Errorf("cortex serve: %d %s", status, body)
	}
	status, body = u.packageAndRun("clf", "/v2/models/clf/infer", req)
	if status != 200 || !strings.Contains(body, want) {
		t.Errorf("the packaged image: %d %s", status, body)
	}
}

// TestOwnModule: a Go function with a go.mod of its own and a third-party
// dependency builds with the CLI's SDK; a go.mod that requires another
// cortex version is refused, naming both versions and the fix.
func TestOwnModule(t *testing.T) {
	u := newUser(t)
	files := map[string]string{
		"idgen/cortex.yaml": "name: idgen\npredictor:\n  type: go\n  path: ./predictor\n",
		"idgen/go.mod": "module example.com/idgen\n\ngo 1.26.0\n\nrequire (\n\tgithub.com/cortexfn/cortex " + cortex.Version +
			"\n\tgithub.com/google/uuid v1.6.0\n)\n",
		"idgen/predictor/predictor.go": `package predictor

import (
	"context"

	"github.com/cortexfn/cortex/functions"
	"github.com/google/uuid"
)

type In struct {
	Name string ` + "`json:\"name\"`" + `
}

type Out struct {
	ID string ` + "`json:\"id\"`" + `
}

func New() functions.Predictor {
	return functions.Typed(func(ctx context.Context, in In) (Out, error) {
		return Out{ID: uuid.NewSHA1(uuid.NameSpaceURL, []byte(in.Name)).String()}, nil
	})
}
`,
		// uuid v5 of "ada" in the URL namespace (RFC 9562).
		"idgen/examples/ada.json": `{"request": {"method": "POST", "path": "/predict", "body": {"name": "ada"}},
 "response": {"status": 200, "body": {"id": "8ec5d38c-e51c-5c50-835c-5baa510d4616"}}}
`,
	}
	u.write(files)
	if out := u.must("cortex", "test", "idgen"); !strings.Contains(out, "idgen: 1 passed, 0 failed") {
		t.Fatalf("cortex test: %s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(u.work, "idgen", "go.mod")); string(b) != files["idgen/go.mod"] {
		t.Errorf("the build changed the user's go.mod:\n%s", b)
	}

	u.write(map[string]string{"idgen/go.mod": strings.Replace(files["idgen/go.mod"], cortex.Version, "v0.1.0", 1)})
	_, err := u.cortex("test", "idgen")
	for _, want := range []string{"requires github.com/cortexfn/cortex v0.1.0", "this cortex CLI is " + cortex.Version, "go mod edit -require=github.com/cortexfn/cortex@" + cortex.Version} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a go.mod requiring cortex v0.1.0: got %v, want an error containing %q", err, want)
		}
	}
}
