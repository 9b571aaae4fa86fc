package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	deploy "github.com/cortexfn/cortex/packager/deploy/knative"
	"github.com/cortexfn/cortex/packager/knative"
)

// installEventing installs Knative Eventing's CRDs (from the
// knative.dev/eventing module this module requires). No Eventing
// controller runs: a deploy only writes Triggers, and what Eventing does
// with them is Eventing's.
func installEventing(t *testing.T, c *cluster) {
	t.Helper()
	c.installCRDs(t, filepath.Join(moduleDir(t, "knative.dev/eventing"), "config", "core", "resources", "*.yaml"))
}

// TestDeployTrigger: targets.knative.trigger through `cortex deploy`. A
// cluster without Eventing refuses the deploy before anything is written;
// with Eventing's CRDs the Trigger is created beside the Service, updated
// when the filter changes, left alone when nothing did, deleted when the
// spec drops it and with the function.
func TestDeployTrigger(t *testing.T) {
	c := startCluster(t)
	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	regHost := strings.TrimPrefix(reg.URL, "http://")
	kc := c.kubeconfig(t)
	dir := copyDir(t, filepath.Join(repoRoot, "samples", "echo-go"))
	base, err := os.ReadFile(filepath.Join(dir, "cortex.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	setTrigger := func(yamlText string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "cortex.yaml"), append(append([]byte{}, base...), yamlText...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deployFn := func() run {
		return cortex(t, "", "deploy", dir, "--kubeconfig", kc, "--registry", regHost+"/acme", "--timeout", "60s")
	}
	ctx := context.Background()
	triggers := dynamic.NewForConfigOrDie(c.cfg).Resource(schema.GroupVersionResource{Group: "eventing.knative.dev", Version: "v1", Resource: "triggers"}).Namespace("fn")

	// No Eventing: refused before the Service is written.
	setTrigger("targets: {knative: {trigger: {broker: default, filter: {type: dev.cortex.echo}}}}\n")
	r := deployFn()
	if r.err == nil || !strings.Contains(r.stderr, "Knative Eventing is not installed") || !strings.Contains(r.stderr, "remove targets.knative.trigger") {
		t.Fatalf("deploy without Eventing: %v\n%s", r.err, r.stderr)
	}
	if _, err := c.serving.ServingV1().Services("fn").Get(ctx, "echo-go", metav1.GetOptions{}); err == nil {
		t.Fatal("a refused deploy left a Service behind")
	}

	installEventing(t, c)
	r = deployFn()
	if r.err != nil {
		t.Fatalf("deploy with a Trigger: %v\n%s", r.err, r.stderr)
	}
	for _, want := range []string{
		`there is no Broker "default" in namespace "fn" yet`,
		"trigger echo-go created: events from broker default (where type=dev.cortex.echo) reach it",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("deploy's output lacks %q:\n%s", want, r.stderr)
		}
	}
	tr, err := triggers.Get(ctx, "echo-go", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Trigger was not created: %v", err)
	}
	broker, _, _ := unstructured.NestedString(tr.Object, "spec", "broker")
	typ, _, _ := unstructured.NestedString(tr.Object, "spec", "filter", "attributes", "type")
	sub, _, _ := unstructured.NestedString(tr.Object, "spec", "subscriber", "ref", "name")
	subNS, _, _ := unstructured.NestedString(tr.Object, "spec", "subscriber", "ref", "namespace")
	if broker != "default" || typ != "dev.cortex.echo" || sub != "echo-go" || subNS != "fn" || tr.GetLabels()["cortex.dev/function"] != "echo-go" {
		t.Errorf("Trigger %v", tr.Object)
	}

	// The same spec again: the Trigger is unchanged.
	if r = deployFn(); r.err != nil || !strings.Contains(r.stderr, "trigger echo-go unchanged") {
		t.Errorf("redeploy: %v\n%s", r.err, r.stderr)
	}
	// A new filter and broker: updated in place.
	setTrigger("targets: {knative: {trigger: {broker: events, filter: {type: dev.cortex.other, source: cam}}}}\n")
	if r = deployFn(); r.err != nil || !strings.Contains(r.stderr, "trigger echo-go updated: events from broker events (where source=cam, type=dev.cortex.other)") {
		t.Errorf("deploy with a new filter: %v\n%s", r.err, r.stderr)
	}
	tr, err = triggers.Get(ctx, "echo-go", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _, _ := unstructured.NestedString(tr.Object, "spec", "broker"); b != "events" {
		t.Errorf("updated Trigger's broker %q, want events", b)
	}

	// The spec drops the Trigger: the deploy deletes the one it wrote.
	setTrigger("")
	if r = deployFn(); r.err != nil || !strings.Contains(r.stderr, "trigger echo-go deleted") {
		t.Errorf("deploy without a Trigger: %v\n%s", r.err, r.stderr)
	}
	if _, err := triggers.Get(ctx, "echo-go", metav1.GetOptions{}); err == nil {
		t.Error("the Trigger survived a deploy whose spec has none")
	}

	// A user who may write Services but not Triggers: a deploy with a
	// Trigger is refused before it writes, naming the resource; one
	// without a Trigger is not held up by the Triggers it cannot read.
	c.grant(t, "fn", "carol", "get", "list", "watch", "create", "update")
	var progress bytes.Buffer
	carol, err := deploy.New(c.as("carol"), deploy.WithProgress(&progress))
	if err != nil {
		t.Fatal(err)
	}
	asCarol := &knative.Trigger{ObjectMeta: metav1.ObjectMeta{Name: "echo-go", Namespace: "fn"}, Spec: knative.TriggerSpec{Broker: "default"}}
	var fe *deploy.ForbiddenError
	if _, err := carol.PreflightTrigger(ctx, asCarol); !errors.As(err, &fe) || fe.Resource != "triggers.eventing.knative.dev" ||
		!strings.Contains(err.Error(), "you may not get, create, update triggers.eventing.knative.dev in namespace \"fn\"") {
		t.Errorf("carol's Trigger preflight: %v", err)
	}
	if res, err := carol.DeleteTrigger(ctx, "fn", "echo-go"); res != nil || err != nil {
		t.Errorf("carol's deploy without a Trigger, cleaning up Triggers she cannot read: %+v, %v", res, err)
	}

	// Back again, then the function is deleted: its Trigger goes with it.
	setTrigger("targets: {knative: {trigger: {}}}\n")
	if r = deployFn(); r.err != nil {
		t.Fatalf("deploy: %v\n%s", r.err, r.stderr)
	}
	if r = cortex(t, "y\n", "delete", "echo-go", "--kubeconfig", kc); r.err != nil {
		t.Fatalf("delete: %v\n%s", r.err, r.stderr)
	}
	if _, err := triggers.Get(ctx, "echo-go", metav1.GetOptions{}); err == nil {
		t.Error("the Trigger survived the function's delete")
	}
}
