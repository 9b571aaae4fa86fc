package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"sigs.k8s.io/yaml"

	"github.com/cortexfn/cortex/packager/knative"
	"github.com/cortexfn/cortex/packager/spec"
)

// TestTriggerIsEventings: the Trigger cortex writes (packager/knative,
// which does not import Eventing) decodes strictly into Knative
// Eventing's own Trigger type, with nothing left over or misspelled, and
// passes Eventing's defaulting and validation, what its webhook runs.
func TestTriggerIsEventings(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("..", "packager", "knative", "testdata", "trigger.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	manifests := map[string][]byte{"golden trigger.yaml": golden}
	s, err := spec.Parse([]byte("name: iris\npredictor: {type: go, path: ./p}\ntargets: {knative: {trigger: {}}}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	s.SetDefaults()
	tr, err := knative.TriggerFor(s, &metav1.ObjectMeta{Name: "iris", Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if manifests["no filter"], err = knative.TriggerYAML(tr); err != nil {
		t.Fatal(err)
	}
	for name, b := range manifests {
		t.Run(name, func(t *testing.T) {
			var et eventingv1.Trigger
			if err := yaml.UnmarshalStrict(b, &et); err != nil {
				t.Fatalf("not an Eventing Trigger: %v\n%s", err, b)
			}
			ctx := context.Background()
			et.SetDefaults(ctx)
			if fe := et.Validate(ctx); fe != nil {
				t.Errorf("Eventing's validation: %v\n%s", fe, b)
			}
			if et.Spec.Subscriber.Ref == nil || et.Spec.Subscriber.Ref.Kind != "Service" || et.Spec.Broker == "" {
				t.Errorf("trigger %+v: want a broker and the Service as subscriber", et.Spec)
			}
		})
	}
	// The check can fail: Eventing refuses a filter attribute cortex's
	// spec refuses too.
	var bad eventingv1.Trigger
	if err := yaml.UnmarshalStrict(golden, &bad); err != nil {
		t.Fatal(err)
	}
	bad.Spec.Filter.Attributes["Type"] = "x"
	if fe := bad.Validate(context.Background()); fe == nil {
		t.Error("Eventing's validation took the filter attribute Type")
	}
}
