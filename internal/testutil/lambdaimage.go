package testutil

import (
	"testing"
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
	return runBundle(t, lay, tag, "cortex-lambda", func(proc, cfg map[string]any) {
		proc["user"] = map[string]any{"uid": LambdaSandboxUID, "gid": LambdaSandboxUID}
		for _, e := range env {
			proc["env"] = append(proc["env"].([]any), e)
		}
		cfg["mounts"] = append(cfg["mounts"].([]any), map[string]any{
			"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
			"options": []string{"nosuid", "nodev", "mode=1777", "size=64m"},
		})
	})
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
