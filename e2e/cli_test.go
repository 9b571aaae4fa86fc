package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// repoRoot is the cortex checkout this module replaces
// github.com/cortexfn/cortex with.
const repoRoot = ".."

// cliDir holds the CLI cortexCLI builds; TestMain removes it.
var cliDir string

// cortexCLI builds the cortex command once per run, from the main module,
// with make build's flags (-trimpath, which make test gives every go
// command in GOFLAGS), so that in make test it shares the compiled packages
// of that build, of e2e/outside's and of this module's own tree
// (Kubernetes' clients) and only links.
var cortexCLI = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "cortex-e2e-cli-")
	if err != nil {
		return "", err
	}
	cliDir = dir
	bin := filepath.Join(dir, "cortex")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/cortex")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/cortex: %v\n%s", err, out)
	}
	return bin, nil
})

// removeCLI removes the CLI cortexCLI built, if it built one.
func removeCLI() {
	if cliDir != "" {
		os.RemoveAll(cliDir)
	}
}

type run struct {
	stdout, stderr string
	err            error
}

// cortex runs the CLI from the repository root (where it finds the cortex
// module to build functions with), with stdin.
func cortex(t *testing.T, stdin string, args ...string) run {
	t.Helper()
	return cortexEnv(t, nil, stdin, args...)
}

// cortexEnv is cortex with env added to the CLI's environment.
func cortexEnv(t *testing.T, env []string, stdin string, args ...string) run {
	t.Helper()
	bin, err := cortexCLI()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = repoRoot
	cmd.Stdin = strings.NewReader(stdin)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return run{o.String(), e.String(), err}
}

// copyDir copies the sample function dir to a temporary directory, so
// dist/ is written there.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if d.Name() == "dist" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestCLI drives the cortex command against the API server: deploy (which
// packages the echo-go sample and pushes it to an in-process registry),
// get, predict by name, a dry run, rollback and delete.
func TestCLI(t *testing.T) {
	c := startCluster(t)
	// Simulated: the cluster's ingress. The URL Knative gives the function
	// is http://echo-go.fn.example.com; cortex predict reaches it through
	// this proxy (HTTP_PROXY), which answers for the function as the
	// ingress would route to it, by Host.
	// It answers /metrics with a cold start, as the function's runtime
	// does, and counts those reads: cortex get reads them only from a
	// function with a replica running.
	var scrapes atomic.Int32
	ingress := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "echo-go.fn.example.com" {
			http.Error(w, "no route for host "+r.Host, http.StatusNotFound)
			return
		}
		if r.URL.Path == "/metrics" {
			scrapes.Add(1)
			io.WriteString(w, "# TYPE cortex_cold_start_seconds histogram\n"+
				"cortex_cold_start_seconds_bucket{phase=\"load\",le=\"+Inf\"} 1\n"+
				"cortex_cold_start_seconds_sum{phase=\"load\"} 0.045\n"+
				"cortex_cold_start_seconds_count{phase=\"load\"} 1\n")
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"path": r.URL.Path, "body": string(b)})
	}))
	defer ingress.Close()
	viaIngress := []string{"HTTP_PROXY=" + ingress.URL, "http_proxy=" + ingress.URL, "NO_PROXY=", "no_proxy="}
	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	regHost := strings.TrimPrefix(reg.URL, "http://")

	kc := c.kubeconfig(t)
	dir := copyDir(t, filepath.Join(repoRoot, "samples", "echo-go"))

	r := cortex(t, "", "deploy", dir, "--kubeconfig", kc, "--registry", regHost+"/acme", "--timeout", "60s")
	if r.err != nil {
		t.Fatalf("cortex deploy: %v\n%s", r.err, r.stderr)
	}
	if got := strings.TrimSpace(r.stdout); got != "http://echo-go.fn.example.com" {
		t.Errorf("deploy printed %q, want the URL Knative gives it, http://echo-go.fn.example.com\nstderr:\n%s", got, r.stderr)
	}
	if !strings.Contains(r.stderr, "visibility public: anyone who reaches the cluster's ingress can call it") {
		t.Errorf("deploy did not say the function is public:\n%s", r.stderr)
	}
	svc, err := c.serving.ServingV1().Services("fn").Get(context.Background(), "echo-go", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	image := svc.Spec.Template.Spec.Containers[0].Image
	if !strings.HasPrefix(image, regHost+"/acme/echo-go@sha256:") {
		t.Errorf("deployed image %s", image)
	}
	ref, err := name.ParseReference(image)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(ref); err != nil {
		t.Errorf("the deployed image is not in the registry: %v", err)
	}

	r = cortex(t, "", "get", "--kubeconfig", kc, "-o", "json")
	var fs []struct{ Name, URL, Ready, Revision string }
	if err := json.Unmarshal([]byte(r.stdout), &fs); err != nil || len(fs) != 1 || fs[0].Name != "echo-go" || fs[0].Ready != "True" || fs[0].Revision != "echo-go-00001" {
		t.Errorf("cortex get -o json: %v %+v\n%s%s", err, fs, r.stdout, r.stderr)
	}
	r = cortexEnv(t, viaIngress, "", "get", "echo-go", "--kubeconfig", kc)
	if r.err != nil || !strings.Contains(r.stdout, "echo-go-00001=100%") || !strings.Contains(r.stdout, "last cold start: load 45ms") || scrapes.Load() != 1 {
		t.Errorf("cortex get echo-go (a replica running): %v, %d reads of /metrics, want the last cold start read once\n%s%s", r.err, scrapes.Load(), r.stdout, r.stderr)
	}
	// At zero replicas cortex get does not read the metrics: through the
	// URL that would start a replica.
	c.scaleToZero(t, "fn", "echo-go-00001")
	r = cortexEnv(t, viaIngress, "", "get", "echo-go", "--kubeconfig", kc)
	if r.err != nil || strings.Contains(r.stdout, "last cold start") || !strings.Contains(r.stderr, "no replica running") || scrapes.Load() != 1 {
		t.Errorf("cortex get echo-go (at zero): %v, %d reads of /metrics, want none more and a word why\n%s%s", r.err, scrapes.Load(), r.stdout, r.stderr)
	}

	r = cortexEnv(t, viaIngress, "", "predict", "echo-go", "--kubeconfig", kc, "-d", `{"name":"Ada"}`)
	if r.err != nil || !strings.Contains(r.stdout, `"body":"{\"name\":\"Ada\"}"`) || !strings.Contains(r.stdout, `"path":"/predict"`) {
		t.Errorf("cortex predict echo-go: %v\n%s%s", r.err, r.stdout, r.stderr)
	}

	r = cortex(t, "", "deploy", dir, "--kubeconfig", kc, "--registry", regHost+"/acme", "--dry-run")
	if r.err != nil || !strings.Contains(r.stdout, "kind: Service") || !strings.Contains(r.stdout, "image: "+regHost+"/acme/echo-go@sha256:") {
		t.Errorf("cortex deploy --dry-run: %v\n%s%s", r.err, r.stdout, r.stderr)
	}

	// The namespace: --namespace, else the context's ("fn"; echo-go's
	// cortex.yaml names none), else default. A client dry run reads no
	// kubeconfig, so only the flag moves it.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dry-run=server"}, "fn"},
		{[]string{"--dry-run=server", "-n", "fn"}, "fn"},
		{[]string{"--dry-run", "-n", "elsewhere"}, "elsewhere"},
		{[]string{"--dry-run"}, "default"},
	} {
		r = cortex(t, "", append([]string{"deploy", dir, "--kubeconfig", kc, "-o", "json"}, tc.args...)...)
		var res struct{ Namespace string }
		if err := json.Unmarshal([]byte(r.stdout), &res); r.err != nil || err != nil || res.Namespace != tc.want {
			t.Errorf("cortex deploy %v: namespace %q, want %q: %v %v\n%s%s", tc.args, res.Namespace, tc.want, r.err, err, r.stdout, r.stderr)
		}
	}
	r = cortex(t, "", "get", "--kubeconfig", kc, "-n", "default")
	if r.err != nil || r.stdout != "" || strings.TrimSpace(r.stderr) != "no functions in namespace default" {
		t.Errorf("cortex get -n default: %v\nstdout %q\nstderr %q", r.err, r.stdout, r.stderr)
	}
	r = cortex(t, "", "predict", "echo-go", "--kubeconfig", kc, "--target", "elsewhere")
	if r.err == nil || !strings.Contains(r.stderr, `--target "elsewhere": use local, knative or lambda`) {
		t.Errorf("cortex predict --target elsewhere: %v\n%s", r.err, r.stderr)
	}

	r = cortex(t, "", "rollback", "echo-go", "--kubeconfig", kc)
	if r.err == nil || !strings.Contains(r.stderr, "no Ready revision older than echo-go-00001") {
		t.Errorf("rollback with one revision: %v\n%s", r.err, r.stderr)
	}

	r = cortex(t, "n\n", "delete", "echo-go", "--kubeconfig", kc)
	if r.err == nil || !strings.Contains(r.stderr, "[y/N]") {
		t.Errorf("delete answered no: %v\n%s", r.err, r.stderr)
	}
	r = cortex(t, "", "delete", "echo-go", "--kubeconfig", kc)
	if r.err == nil {
		t.Errorf("delete with no answer on stdin deleted")
	}
	r = cortex(t, "y\n", "delete", "echo-go", "--kubeconfig", kc)
	if r.err != nil {
		t.Errorf("delete answered yes: %v\n%s", r.err, r.stderr)
	}
	if _, err := c.serving.ServingV1().Services("fn").Get(context.Background(), "echo-go", metav1.GetOptions{}); err == nil {
		t.Error("echo-go still exists after delete")
	}

	// A cluster whose operator caps containerConcurrency below the
	// function's limits.max_concurrency (64 by default): Knative's webhook
	// refuses the Service and cortex deploy says what it said.
	c.setConfig(t, "config-defaults", map[string]string{"container-concurrency-max-limit": "10"})
	const want = `admission webhook "validation.webhook.serving.knative.dev" denied the request: validation failed: expected 0 <= 64 <= 10: spec.template.spec.containerConcurrency`
	var last run
	err = wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		// The webhook learns of the change through a watch.
		last = cortex(t, "", "deploy", dir, "--kubeconfig", kc, "--registry", regHost+"/acme", "--dry-run=server")
		return last.err != nil, nil
	})
	if err != nil || !strings.Contains(last.stderr, want) {
		t.Errorf("cortex deploy --dry-run=server under a 10 containerConcurrency cap: %v %v\n%s\nwant stderr to hold: %s", err, last.err, last.stderr, want)
	}
	r = cortex(t, "", "deploy", dir, "--kubeconfig", kc, "--registry", regHost+"/acme")
	if r.err == nil || !strings.Contains(r.stderr, want) {
		t.Errorf("cortex deploy under a 10 containerConcurrency cap: %v\n%s\nwant stderr to hold: %s", r.err, r.stderr, want)
	}
}
