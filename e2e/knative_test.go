// Package e2e runs cortex's Knative deployer against a real Kubernetes API
// server (k8s.io/kubernetes v1.29.2's test server, on etcd) running
// Knative Serving v0.42's own controller and admission webhook in this
// process (serving_test.go), with only nodes, autoscaler and ingress
// simulated (simulate_test.go). It is a module of its own so the main
// module never requires k8s.io/kubernetes. Run it with `go test ./...` in
// this directory; it needs etcd on PATH (Debian: etcd-server).
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/kubernetes/test/integration/framework"
	"knative.dev/serving/pkg/apis/serving"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	deploy "github.com/cortexfn/cortex/packager/deploy/knative"
	"github.com/cortexfn/cortex/packager/knative"
	"github.com/cortexfn/cortex/packager/spec"
)

func TestMain(m *testing.M) {
	// Knative's code finds its namespace here, as its Deployments set it.
	os.Setenv("SYSTEM_NAMESPACE", systemNamespace)
	if err := findAPIServerFixtures(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	framework.EtcdMain(func() int {
		code := m.Run()
		removeCLI()
		return code
	})
}

func digest(c byte) string {
	return "registry.example/acme/iris@sha256:" + strings.Repeat(string(c), 64)
}

// service is the Service cortex package writes for a function, in
// namespace fn.
func service(t *testing.T, image string, gpu int) *servingv1.Service {
	t.Helper()
	s := &spec.Spec{Name: "iris", Predictor: spec.Predictor{Type: spec.TypeONNX, Model: "model.onnx"}, Compute: spec.Compute{GPU: gpu}}
	s.Targets.Knative.Namespace = "fn"
	s.SetDefaults()
	svc, err := knative.Service(s, knative.Options{Image: image, ModelSize: 1 << 20, ImageSize: 10 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func newClient(t *testing.T, cfg *rest.Config, progress *bytes.Buffer) *deploy.Client {
	t.Helper()
	c, err := deploy.New(cfg, deploy.WithProgress(progress))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func live(t *testing.T, c *cluster, name string) *servingv1.Service {
	t.Helper()
	s, err := c.serving.ServingV1().Services("fn").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func traffic(ts []deploy.Traffic) string {
	var parts []string
	for _, t := range ts {
		p := t.Revision + "=" + itoa(t.Percent)
		if t.Tag != "" {
			p += "(" + t.Tag + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

func itoa(n int64) string {
	b := []byte{}
	if n == 0 {
		return "0"
	}
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// racer edits the Service between the deployer's read and its write: on
// the first PUT to the Service it first updates the Service itself,
// so the deployer's write carries a stale resource version.
type racer struct {
	rt    http.RoundTripper
	edit  func()
	mu    sync.Mutex
	puts  []int
	raced bool
}

func (r *racer) RoundTrip(req *http.Request) (*http.Response, error) {
	isPut := req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "/services/iris")
	if isPut {
		r.mu.Lock()
		if !r.raced {
			r.raced = true
			r.edit()
		}
		r.mu.Unlock()
	}
	resp, err := r.rt.RoundTrip(req)
	if isPut && err == nil {
		r.mu.Lock()
		r.puts = append(r.puts, resp.StatusCode)
		r.mu.Unlock()
	}
	return resp, err
}

// TestDeployLifecycle: first deploy through a kubeconfig file, update with
// a changed image keeping what others set, an update racing a concurrent
// edit, a dry run, get and list, a canary, a rollback, a deploy after the
// rollback, and delete.
func TestDeployLifecycle(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()

	cfg, ns, explicit, err := deploy.Kubeconfig{Path: c.kubeconfig(t)}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if ns != "fn" || !explicit {
		t.Errorf("kubeconfig namespace %q (explicit %v), want fn from the context", ns, explicit)
	}
	var progress bytes.Buffer
	d := newClient(t, cfg, &progress)

	// First deploy.
	res, err := d.Deploy(ctx, service(t, digest('a'), 0), deploy.DeployOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("first deploy: %v\n%s", err, progress.String())
	}
	if res.Action != "created" || res.Revision != "iris-00001" || res.URL != "http://iris.fn.example.com" {
		t.Errorf("first deploy: action %q revision %q url %q, want created iris-00001 http://iris.fn.example.com", res.Action, res.Revision, res.URL)
	}
	if !strings.Contains(progress.String(), "Ready=True") {
		t.Errorf("progress does not show the Ready condition:\n%s", progress.String())
	}

	// Others label and annotate it, and add a template annotation.
	s := live(t, c, "iris")
	s.Labels["team"] = "ml"
	s.Annotations["owner"] = "ada" // Knative's webhook keeps its own (creator, last modifier)
	s.Spec.Template.Annotations["sidecar.istio.io/inject"] = "false"
	if _, err := c.serving.ServingV1().Services("fn").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Update with a changed image and without scale-down-delay.
	svc := service(t, digest('b'), 0)
	res, err = d.Deploy(ctx, svc, deploy.DeployOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("update: %v\n%s", err, progress.String())
	}
	if res.Action != "updated" || !strings.HasPrefix(res.Revision, "iris-0000") || res.Revision == "iris-00001" {
		t.Errorf("update: action %q revision %q, want updated and a new revision", res.Action, res.Revision)
	}
	s = live(t, c, "iris")
	if got := s.Spec.Template.Spec.Containers[0].Image; got != digest('b') {
		t.Errorf("image after update %s, want %s", got, digest('b'))
	}
	if s.Labels["team"] != "ml" || s.Annotations["owner"] != "ada" || s.Spec.Template.Annotations["sidecar.istio.io/inject"] != "false" {
		t.Errorf("update dropped what others set: labels %v annotations %v template annotations %v", s.Labels, s.Annotations, s.Spec.Template.Annotations)
	}
	if s.Labels[knative.FunctionLabel] != "iris" {
		t.Errorf("labels %v lack %s", s.Labels, knative.FunctionLabel)
	}

	// The same again: nothing changes.
	res, err = d.Deploy(ctx, service(t, digest('b'), 0), deploy.DeployOptions{Timeout: 30 * time.Second})
	if err != nil || res.Action != "unchanged" {
		t.Errorf("same deploy again: action %q, err %v; want unchanged", res.Action, err)
	}

	// An update racing a concurrent edit: the conflict is retried and
	// both changes survive.
	rc := &racer{edit: func() {
		s := live(t, c, "iris")
		s.Labels["racer"] = "yes"
		if _, err := c.serving.ServingV1().Services("fn").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Errorf("concurrent edit: %v", err)
		}
	}}
	rcfg := rest.CopyConfig(cfg)
	rcfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { rc.rt = rt; return rc })
	progress.Reset()
	res, err = newClient(t, rcfg, &progress).Deploy(ctx, service(t, digest('c'), 0), deploy.DeployOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("racing update: %v\n%s", err, progress.String())
	}
	if len(rc.puts) != 2 || rc.puts[0] != http.StatusConflict || rc.puts[1] != http.StatusOK {
		t.Errorf("PUT statuses %v, want [409 200]", rc.puts)
	}
	if !strings.Contains(progress.String(), "changed since it was read") {
		t.Errorf("progress does not mention the retry:\n%s", progress.String())
	}
	s = live(t, c, "iris")
	if s.Labels["racer"] != "yes" || s.Spec.Template.Spec.Containers[0].Image != digest('c') {
		t.Errorf("after the race: labels %v image %s; want the racer's label and %s", s.Labels, s.Spec.Template.Spec.Containers[0].Image, digest('c'))
	}
	current := res.Revision

	// A dry run shows the object and writes nothing.
	before := live(t, c, "iris").ResourceVersion
	res, err = d.Deploy(ctx, service(t, digest('d'), 0), deploy.DeployOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != "update" || res.Object.Spec.Template.Spec.Containers[0].Image != digest('d') || res.Object.Labels["racer"] != "yes" {
		t.Errorf("dry run: action %q object %+v", res.Action, res.Object.ObjectMeta)
	}
	if after := live(t, c, "iris").ResourceVersion; after != before {
		t.Errorf("dry run wrote the Service (resource version %s -> %s)", before, after)
	}

	// Get and List.
	f, err := d.Get(ctx, "fn", "iris")
	if err != nil {
		t.Fatal(err)
	}
	if f.Ready != "True" || f.Revision != current || f.URL != "http://iris.fn.example.com" || f.MinScale != "0" || f.MaxScale != "10" || f.Image != digest('c') {
		t.Errorf("get: %+v", f)
	}
	if got := traffic(f.Traffic); got != current+"=100" {
		t.Errorf("get: traffic %s, want %s=100", got, current)
	}
	fs, err := d.List(ctx, "fn")
	if err != nil || len(fs) != 1 || fs[0].Name != "iris" {
		t.Errorf("list: %+v, %v", fs, err)
	}

	// A canary: 20% to the new revision under a tag, the rest stays.
	res, err = d.Deploy(ctx, service(t, digest('e'), 0), deploy.DeployOptions{Traffic: 20, Tag: "canary", Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("canary: %v", err)
	}
	canary := res.Revision
	if got, want := traffic(res.Traffic), current+"=80 "+canary+"=20(canary)"; got != want {
		t.Errorf("canary traffic %s, want %s", got, want)
	}
	for _, tr := range res.Traffic {
		if tr.Tag == "canary" && tr.URL != "http://canary-iris.fn.example.com" {
			t.Errorf("canary URL %q", tr.URL)
		}
	}

	// Rollback: all traffic to the revision before the one serving most.
	progress.Reset()
	res, err = d.Rollback(ctx, "fn", "iris", deploy.RollbackOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("rollback: %v\n%s", err, progress.String())
	}
	revs, err := d.Revisions(ctx, "fn", "iris")
	if err != nil {
		t.Fatal(err)
	}
	var previous string
	for i, r := range revs {
		if r.Name == current {
			previous = revs[i-1].Name
		}
	}
	if res.Revision != previous || traffic(res.Traffic) != previous+"=100" {
		t.Errorf("rollback to %s with traffic %s; want %s=100 (revisions %+v)", res.Revision, traffic(res.Traffic), previous, revs)
	}
	// Rollback to a named revision.
	res, err = d.Rollback(ctx, "fn", "iris", deploy.RollbackOptions{Revision: "iris-00001", Timeout: 30 * time.Second})
	if err != nil || traffic(res.Traffic) != "iris-00001=100" {
		t.Errorf("rollback to iris-00001: traffic %s, err %v", traffic(res.Traffic), err)
	}
	if _, err := d.Rollback(ctx, "fn", "iris", deploy.RollbackOptions{Revision: "iris-00042"}); err == nil {
		t.Error("rollback to a revision that does not exist: no error")
	}

	// A plain deploy after cortex's rollback sends all traffic to it again.
	res, err = d.Deploy(ctx, service(t, digest('f'), 0), deploy.DeployOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := traffic(res.Traffic); got != res.Revision+"=100" {
		t.Errorf("deploy after rollback: traffic %s, want %s=100", got, res.Revision)
	}

	// Traffic someone else pins is kept, with a warning.
	s = live(t, c, "iris")
	s.Spec.Traffic = []servingv1.TrafficTarget{{RevisionName: "iris-00001", Percent: ptr(int64(100))}}
	if _, err := c.serving.ServingV1().Services("fn").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err = d.Deploy(ctx, service(t, digest('1'), 0), deploy.DeployOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := traffic(res.Traffic); got != "iris-00001=100" || len(res.Warnings) == 0 || !strings.Contains(res.Warnings[len(res.Warnings)-1], "--traffic 100") {
		t.Errorf("deploy with pinned traffic: traffic %s warnings %q", got, res.Warnings)
	}

	// Delete.
	if err := d.Delete(ctx, "fn", "iris"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(ctx, "fn", "iris"); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("get after delete: %v, want ErrNotFound", err)
	}
	if err := d.Delete(ctx, "fn", "iris"); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
}

// TestDeployFailures: a revision that fails, one that never reports,
// a GPU function on a cluster whose feature flags are off, a missing
// namespace and a user without permissions.
func TestDeployFailures(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	var progress bytes.Buffer
	d := newClient(t, c.cfg, &progress)

	t.Run("failing revision", func(t *testing.T) {
		if _, err := d.Deploy(ctx, service(t, digest('a'), 0), deploy.DeployOptions{Timeout: 30 * time.Second}); err != nil {
			t.Fatal(err)
		}
		// The new image's container exits: Knative's revision reconciler
		// reads the pod, fails the revision, and the route keeps serving
		// the last ready one.
		c.kubelet.crash(digest('9'), "loading model.onnx: no such file or directory")
		crashing := service(t, digest('9'), 0)
		// Knative looks at the pods when the Deployment's status changes;
		// should the kubelet's report land after that, the progress
		// deadline changes it again (in a cluster, the kubelet's restarts
		// of the container take that part).
		crashing.Spec.Template.Annotations[serving.ProgressDeadlineAnnotationKey] = "5s"
		_, err := d.Deploy(ctx, crashing, deploy.DeployOptions{Timeout: 30 * time.Second})
		var re *deploy.RevisionError
		if !errors.As(err, &re) {
			t.Fatalf("error %v (%T), want a *RevisionError", err, err)
		}
		const want = `Revision "iris-00002" failed with message: Container failed with: loading model.onnx: no such file or directory.`
		if re.Reason != "RevisionFailed" || re.Message != want || re.Revision != "iris-00002" {
			t.Errorf("revision error %+v, want reason RevisionFailed, revision iris-00002, message %s", re, want)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks Knative's message", err)
		}
		f, err := d.Get(ctx, "fn", "iris")
		if err != nil {
			t.Fatal(err)
		}
		if got := traffic(f.Traffic); got != "iris-00001=100" || f.Revision != "iris-00001" {
			t.Errorf("after the failed deploy: revision %s, traffic %s; want iris-00001=100", f.Revision, got)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		c.kubelet.hang(digest('8'))
		start := time.Now()
		_, err := d.Deploy(ctx, service(t, digest('8'), 0), deploy.DeployOptions{Timeout: 2 * time.Second})
		var re *deploy.RevisionError
		if !errors.As(err, &re) || !re.TimedOut {
			t.Fatalf("error %v, want a timed-out *RevisionError", err)
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("timeout of 2s took %s", el)
		}
	})

	t.Run("gpu feature flags", func(t *testing.T) {
		gpu := service(t, digest('a'), 1)
		gpu.Name = "big"
		_, err := d.Deploy(ctx, gpu, deploy.DeployOptions{Timeout: 30 * time.Second})
		var fe *deploy.FeatureError
		if !errors.As(err, &fe) {
			t.Fatalf("error %v (%T), want a *FeatureError", err, err)
		}
		for _, want := range []string{"kubernetes.podspec-nodeselector", "kubernetes.podspec-tolerations", "spec.template.spec.nodeSelector",
			`kubectl patch configmap/config-features -n knative-serving --type merge -p '{"data":{"kubernetes.podspec-nodeselector":"enabled","kubernetes.podspec-tolerations":"enabled"}}'`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not say %q:\n%v", want, err)
			}
		}
		if _, err := c.serving.ServingV1().Services("fn").Get(ctx, "big", metav1.GetOptions{}); err == nil {
			t.Error("the preflight failed but the Service was written")
		}
		// The preflight speaks for Knative: its webhook refuses the same
		// Service for the same fields.
		_, err = c.serving.ServingV1().Services("fn").Create(ctx, gpu, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil || !strings.Contains(err.Error(), "denied the request") || !strings.Contains(err.Error(), "nodeSelector") {
			t.Errorf("Knative's webhook with the flags off: %v, want it to refuse nodeSelector", err)
		}
		// One flag on, one off: only the other is reported.
		c.setFeatures(t, map[string]string{"kubernetes.podspec-nodeselector": "enabled"})
		_, err = d.Deploy(ctx, gpu, deploy.DeployOptions{Timeout: 30 * time.Second})
		if !errors.As(err, &fe) || len(fe.Disabled) != 1 || fe.Disabled[0].Flag != "kubernetes.podspec-tolerations" {
			t.Fatalf("with nodeselector on: %v", err)
		}
		c.setFeatures(t, map[string]string{"kubernetes.podspec-tolerations": "enabled"})
		res, err := d.Deploy(ctx, gpu, deploy.DeployOptions{Timeout: 30 * time.Second})
		if err != nil {
			t.Fatalf("with both flags on: %v", err)
		}
		if len(res.Features) != 2 {
			t.Errorf("features %+v", res.Features)
		}
		f, err := d.Get(ctx, "fn", "big")
		if err != nil || f.GPU != 1 {
			t.Errorf("get: %+v %v", f, err)
		}
	})

	t.Run("refused by Knative's webhook", func(t *testing.T) {
		svc := service(t, digest('a'), 0)
		svc.Name = "invalid"
		svc.Spec.Template.Spec.ContainerConcurrency = ptr(int64(-1))
		_, err := d.Deploy(ctx, svc, deploy.DeployOptions{Timeout: 30 * time.Second})
		const want = `admission webhook "validation.webhook.serving.knative.dev" denied the request: validation failed: expected 0 <= -1 <= 1000: spec.template.spec.containerConcurrency`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want Knative's webhook's: %s", err, want)
		}
		if _, err := c.serving.ServingV1().Services("fn").Get(ctx, "invalid", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the refused Service exists (%v)", err)
		}
	})

	t.Run("missing namespace", func(t *testing.T) {
		svc := service(t, digest('a'), 0)
		svc.Namespace = "nope"
		_, err := d.Deploy(ctx, svc, deploy.DeployOptions{})
		if !errors.Is(err, deploy.ErrNoNamespace) || !strings.Contains(err.Error(), "kubectl create namespace nope") {
			t.Fatalf("error %v, want ErrNoNamespace with the fix", err)
		}
	})

	t.Run("forbidden user", func(t *testing.T) {
		var p bytes.Buffer
		alice := newClient(t, c.as("alice"), &p)
		svc := service(t, digest('a'), 0)
		svc.Name = "alices"
		_, err := alice.Deploy(ctx, svc, deploy.DeployOptions{})
		var fe *deploy.ForbiddenError
		if !errors.As(err, &fe) {
			t.Fatalf("error %v (%T), want a *ForbiddenError", err, err)
		}
		if strings.Join(fe.Verbs, ",") != "get,create,update" || fe.Namespace != "fn" {
			t.Errorf("forbidden error %+v", fe)
		}
		// Get only is not enough to deploy.
		c.grant(t, "fn", "alice", "get")
		_, err = alice.Deploy(ctx, svc, deploy.DeployOptions{})
		if !errors.As(err, &fe) || strings.Join(fe.Verbs, ",") != "create,update" {
			t.Fatalf("with get: %v", err)
		}
		// A user with a namespace Role for Services (and no right to read
		// namespaces or knative-serving) deploys.
		bob := "bob"
		c.grant(t, "fn", bob, "get", "list", "watch", "create", "update")
		res, err := newClient(t, c.as(bob), &p).Deploy(ctx, svc, deploy.DeployOptions{Timeout: 30 * time.Second})
		if err != nil {
			t.Fatalf("bob with a Role: %v\n%s", err, p.String())
		}
		if res.Revision != "alices-00001" {
			t.Errorf("bob's revision %q", res.Revision)
		}
		// Knative's defaulting webhook records who created it.
		if got := live(t, c, "alices").Annotations[serving.CreatorAnnotation]; got != bob {
			t.Errorf("annotation %s = %q, want %s (set by Knative's webhook)", serving.CreatorAnnotation, got, bob)
		}
	})

	t.Run("traffic on first deploy", func(t *testing.T) {
		svc := service(t, digest('a'), 0)
		svc.Name = "fresh"
		_, err := d.Deploy(ctx, svc, deploy.DeployOptions{Traffic: 10})
		if err == nil || !strings.Contains(err.Error(), "does not exist yet") {
			t.Fatalf("error %v", err)
		}
	})
}

// findAPIServerFixtures lets kube-apiserver's test server find its
// package's testdata when this test binary is built with -trimpath, as make
// test builds everything (so that one compiled tree serves the CLI, the
// function binaries and this module). The server finds that directory
// through runtime.Caller, which -trimpath leaves as "module@version/dir";
// for Bazel, which trims paths too, it joins TEST_SRCDIR and TEST_WORKSPACE
// before it: set to the module cache and ".", they make the module cache's
// copy of the package, which is where a trimmed module path is.
func findAPIServerFixtures() error {
	_, file, _, ok := runtime.Caller(0)
	if !ok || filepath.IsAbs(file) {
		return nil // not trimmed: the server finds its testdata itself
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return fmt.Errorf("go env GOMODCACHE, for kube-apiserver's test fixtures: %v", err)
	}
	os.Setenv("TEST_SRCDIR", strings.TrimSpace(string(out)))
	os.Setenv("TEST_WORKSPACE", ".")
	return nil
}
