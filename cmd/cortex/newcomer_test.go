package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
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
