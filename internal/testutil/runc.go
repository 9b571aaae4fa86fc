package testutil

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Container is an OCI image unpacked by umoci and running under runc, on
// the host's network: a real container runtime, as a node would run the
// image. umoci and runc are Debian packages (`make tools`); runc needs root.
type Container struct {
	// URL is the function's base URL (http://127.0.0.1:PORT).
	URL string
	// User is the uid the image's config runs as.
	User float64
	id   string
	logs SyncBuffer
	done chan error
}

// RunImage unpacks image tag of the OCI layout lay, runs it with PORT set to
// a free port and waits until /readyz answers 200. The container is killed
// and deleted when the test ends.
func RunImage(t testing.TB, lay, tag string) *Container {
	t.Helper()
	port := FreePort(t)
	c := runBundle(t, lay, tag, "cortex-test", func(proc map[string]any, _ map[string]any) {
		// A free port, in place of the image's PORT.
		var env []any
		for _, e := range proc["env"].([]any) {
			if !strings.HasPrefix(e.(string), "PORT=") {
				env = append(env, e)
			}
		}
		proc["env"] = append(env, fmt.Sprintf("PORT=%d", port))
	})
	c.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(c.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return c
			}
		}
		select {
		case err := <-c.done:
			t.Fatalf("the container exited before it was ready: %v\n%s", err, c.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container was not ready after 60s\n%s", c.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop sends SIGTERM, as Knative does, and waits for the function to drain
// and exit.
func (c *Container) Stop(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("runc", "kill", c.id, "TERM").CombinedOutput(); err != nil {
		t.Fatalf("runc kill: %v\n%s", err, out)
	}
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the container did not stop after SIGTERM\n%s", c.logs.String())
	}
}

// Logs is what the container printed so far.
func (c *Container) Logs() string { return c.logs.String() }

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runBundle unpacks image tag of the OCI layout lay into a runc bundle and
// runs it as the platforms run a function: no terminal, a read-only root
// file system, the host's network (no network namespace, so a test reaches
// it on loopback), after edit has changed the bundle's process and
// config. The container is killed and deleted when the test ends. umoci
// and runc are Debian packages (`make tools`); runc needs root.
func runBundle(t testing.TB, lay, tag, idPrefix string, edit func(proc, cfg map[string]any)) *Container {
	t.Helper()
	for _, tool := range []string{"umoci", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make tools` (apt-get install -y umoci runc)", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("runc needs root: run the tests as root (CI does)")
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command("umoci", "unpack", "--image", lay+":"+tag, bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	c := &Container{id: fmt.Sprintf("%s-%d-%d", idPrefix, os.Getpid(), time.Now().UnixNano()), done: make(chan error, 1)}
	proc := cfg["process"].(map[string]any)
	c.User, _ = proc["user"].(map[string]any)["uid"].(float64)
	proc["terminal"] = false
	cfg["root"].(map[string]any)["readonly"] = true
	linux := cfg["linux"].(map[string]any)
	var ns []any
	for _, n := range linux["namespaces"].([]any) {
		if n.(map[string]any)["type"] != "network" {
			ns = append(ns, n)
		}
	}
	linux["namespaces"] = ns
	edit(proc, cfg)
	raw, _ = json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("runc", "run", "--bundle", bundle, c.id)
	cmd.Stdout, cmd.Stderr = &c.logs, &c.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		exec.Command("runc", "kill", c.id, "KILL").Run()
		exec.Command("runc", "delete", "--force", c.id).Run()
	})
	return c
}
