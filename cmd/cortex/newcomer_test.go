package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex"
	"github.com/cortexfn/cortex/internal/testutil"
)

// TestTestCommandDirectories: cortex test on something that is not a
// function says so, and how to make one; with no argument it tests the
// current directory.
func TestTestCommandDirectories(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing", []string{"test", filepath.Join(empty, "nope")}, "is not a function directory"},
		{"no cortex.yaml", []string{"test", empty}, "no cortex.yaml in " + empty + ": create one with `cortex init`"},
		{"the current directory", []string{"test"}, "no cortex.yaml in .: create one with `cortex init`"},
	}
	t.Chdir(empty)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := run(t, "", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "no examples") {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestVersionFlag(t *testing.T) {
	out, _, err := run(t, "", "--version")
	if err != nil || out != "cortex "+cortex.Version+"\n" {
		t.Errorf("cortex --version: %q, %v", out, err)
	}
	out, _, err = run(t, "", "version", "-o", "json")
	var v VersionInfo
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || v.Version != cortex.Version {
		t.Errorf("cortex version -o json: %q, %v; want version %s", out, err, cortex.Version)
	}
}

// TestDeployDryRunNeedsNoCluster: a client dry run packages and prints the
// Service with no kubeconfig and no registry; a real deploy without a
// cluster fails before it packages anything.
func TestDeployDryRunNeedsNoCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a function")
	}
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	// A newcomer's cortex cache is empty; their Go build and module caches
	// are the machine's, as e2e/outside keeps them (with HOME alone moved,
	// go would compile the standard library and every module afresh: 80 s
	// of a race-instrumented test run spent on what no cortex code does).
	for _, name := range []string{"GOCACHE", "GOMODCACHE"} {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv(name, strings.TrimSpace(string(out)))
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CORTEX_CACHE", t.TempDir())
	fn := filepath.Join(t.TempDir(), "echo-go")
	if err := os.CopyFS(fn, os.DirFS(echoDir)); err != nil {
		t.Fatal(err)
	}

	_, errOut, err := run(t, "", "deploy", fn, "--registry", "example.com/acme")
	if err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Errorf("deploy without a cluster: %v, want an error about the kubeconfig", err)
	}
	if strings.Contains(errOut, "building") || strings.Contains(errOut, "assembling") {
		t.Errorf("deploy packaged before finding there is no cluster:\n%s", errOut)
	}

	out, errOut, err := run(t, "", "deploy", fn, "--dry-run", "-o", "yaml")
	if err != nil {
		t.Fatalf("deploy --dry-run: %v\n%s", err, errOut)
	}
	for _, want := range []string{"dry_run: true", "kind: Service", "name: echo-go", "image: cortex.local/echo-go@sha256:"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy --dry-run -o yaml lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := run(t, "", "deploy", fn, "--dry-run=later"); err == nil || !strings.Contains(err.Error(), "use client") {
		t.Errorf("--dry-run=later: %v", err)
	}
}

// TestPredictServeLayout: cortex predict NAME finds the function under
// cortex serve's /NAME/ when serve lists it, and -o json prints the whole
// answer.
func TestPredictServeLayout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/-/status":
			io.WriteString(w, `{"functions":[{"name":"greeter","state":"idle"}]}`)
		case "/greeter/predict":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"got":`+string(b)+`}`)
		default:
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	out, errOut, err := run(t, "", "predict", "greeter", "--serve-addr", addr, "-d", `{"name":"Ada"}`)
	if err != nil || strings.TrimSpace(out) != `{"got":{"name":"Ada"}}` || !strings.Contains(errOut, "cortex serve at "+addr) {
		t.Errorf("predict greeter: %q %q %v", out, errOut, err)
	}
	out, _, err = run(t, "", "predict", "greeter", "--serve-addr", addr, "-d", `{"name":"Ada"}`, "-o", "json")
	var res PredictResult
	var body bytes.Buffer
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Status != 200 || json.Compact(&body, res.Body) != nil || body.String() != `{"got":{"name":"Ada"}}` {
		t.Errorf("predict -o json: %q %v", out, err)
	}
	out, _, err = run(t, "", "predict", "--url", srv.URL, "--path", "/nope", "-o", "json")
	if err == nil || json.Unmarshal([]byte(out), &res) != nil || res.Status != 404 {
		t.Errorf("predict -o json of a 404: %q %v, want the answer on stdout and a failure", out, err)
	}
	// A function serve does not list is looked up where it is deployed.
	_, _, err = run(t, "", "predict", "other", "--serve-addr", addr, "--kubeconfig", filepath.Join(t.TempDir(), "none"))
	if err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Errorf("predict other: %v, want the Knative lookup's error", err)
	}
}

// TestOldSpellings: -t for init's --type and --tag for package's image tag
// still work (pflag prints a deprecation notice).
func TestOldSpellings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "clf")
	if _, errOut, err := run(t, "", "init", dir, "-t", "onnx"); err != nil {
		t.Errorf("init -t onnx: %v\n%s", err, errOut)
	}
	if f := initCmd().Flags().Lookup("type"); f == nil || f.Shorthand != "t" || f.ShorthandDeprecated == "" {
		t.Errorf("init: -t should be a deprecated shorthand of --type")
	}
	if _, err := os.Stat(filepath.Join(dir, "model", "model.onnx")); err != nil {
		t.Errorf("init -t onnx did not make an onnx function: %v", err)
	}
	cmd := packageCmd()
	if f := cmd.Flags().Lookup("tag"); f == nil || f.Deprecated == "" || cmd.Flags().Lookup("image-tag") == nil {
		t.Errorf("package: --tag should be a deprecated spelling of --image-tag")
	}
}

// TestServeJSON: cortex serve -o json makes stdout one JSON object a line,
// the function's URL first, then its status changes.
func TestServeJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a function")
	}
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &testutil.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- serveFunctions(ctx, []string{echoDir},
			serveOptions{addr: "127.0.0.1:0", statusEvery: 50 * time.Millisecond, output: "json"}, stdout, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	lines := func() []map[string]any {
		var out []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			var m map[string]any
			if l != "" && json.Unmarshal([]byte(l), &m) != nil {
				t.Fatalf("stdout line %q is not JSON", l)
			}
			if l != "" {
				out = append(out, m)
			}
		}
		return out
	}
	var url string
	for deadline := time.Now().Add(3 * time.Minute); url == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ls := lines(); len(ls) > 0 && ls[0]["name"] == "echo-go" {
			url, _ = ls[0]["url"].(string)
		}
	}
	if !strings.HasSuffix(url, "/echo-go/") {
		t.Fatalf("the first stdout line does not give echo-go's URL: %q", stdout.String())
	}
	resp, err := http.Post(url+"predict", "application/json", strings.NewReader(`{"name":"Ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		ls := lines()
		if last := ls[len(ls)-1]; last["name"] == "echo-go" && last["state"] == "ready" && last["cold_starts"] == 1.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no status line shows echo-go ready after its cold start:\n%s", stdout.String())
		}
	}
}
