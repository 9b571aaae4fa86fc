package testutil

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// LambdaSandboxUID is the uid RunLambdaImage runs an image as: Lambda runs
// a container image as a least-privileged user of its choosing, not the
// image's USER (its sandbox users are in the 990s), so a file only the
// image's user could read would fail there.
const LambdaSandboxUID = 993

// RunLambdaImage unpacks image tag of the OCI layout lay with umoci and
// runs it under runc as Lambda runs a container image: its entrypoint and
// working directory, a read-only root file system with a writable /tmp,
// another user than the image's (LambdaSandboxUID), the host's network
// (the Runtime API double listens on loopback), and env added, which
// should name the Runtime API ($AWS_LAMBDA_RUNTIME_API). It does not wait
// for anything: the caller invokes the function through its Runtime API.
// The container is killed and deleted when the test ends. umoci and runc
// are Debian packages (`make tools`); runc needs root.
func RunLambdaImage(t testing.TB, lay, tag string, env ...string) *Container {
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
	c := &Container{id: fmt.Sprintf("cortex-lambda-%d-%d", os.Getpid(), time.Now().UnixNano()), done: make(chan error, 1)}
	proc := cfg["process"].(map[string]any)
	c.User, _ = proc["user"].(map[string]any)["uid"].(float64)
	proc["user"] = map[string]any{"uid": LambdaSandboxUID, "gid": LambdaSandboxUID}
	proc["terminal"] = false
	for _, e := range env {
		proc["env"] = append(proc["env"].([]any), e)
	}
	cfg["root"].(map[string]any)["readonly"] = true
	cfg["mounts"] = append(cfg["mounts"].([]any), map[string]any{
		"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
		"options": []string{"nosuid", "nodev", "mode=1777", "size=64m"},
	})
	linux := cfg["linux"].(map[string]any)
	var ns []any
	for _, n := range linux["namespaces"].([]any) {
		if n.(map[string]any)["type"] != "network" {
			ns = append(ns, n)
		}
	}
	linux["namespaces"] = ns
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

// Exited reports whether the container's process has exited, and how.
func (c *Container) Exited() (bool, error) {
	select {
	case err := <-c.done:
		c.done <- err
		return true, err
	default:
		return false, nil
	}
}
