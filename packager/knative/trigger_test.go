package knative_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cortexfn/cortex/packager/knative"
	"github.com/cortexfn/cortex/packager/spec"
)

// TestTrigger: targets.knative.trigger becomes a Trigger on the Broker,
// with the filter, whose subscriber is the function's Service; no section,
// no Trigger. e2e's TestTriggerIsEventings checks the golden file against
// Knative Eventing's own types and validation.
func TestTrigger(t *testing.T) {
	s, err := spec.Parse([]byte("name: iris\npredictor: {type: go, path: ./p}\ntargets:\n  knative:\n    namespace: ml\n    trigger:\n      broker: reviews\n      filter: {type: com.example.review, source: /shop}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	s.SetDefaults()
	svc := &metav1.ObjectMeta{Name: "iris", Namespace: "ml"}
	tr, err := knative.TriggerFor(s, svc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := knative.TriggerYAML(tr)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "trigger.yaml", b)
	if tr.Spec.Subscriber.Ref == nil || tr.Spec.Subscriber.Ref.Kind != "Service" || tr.Spec.Subscriber.Ref.Name != "iris" || tr.Namespace != "ml" {
		t.Errorf("trigger %+v: want the Service iris in ml as its subscriber", tr)
	}

	s.Targets.Knative.Trigger = &spec.Trigger{}
	s.SetDefaults()
	if tr, _ = knative.TriggerFor(s, svc); tr.Spec.Broker != "default" || tr.Spec.Filter != nil {
		t.Errorf("an empty section: broker %q, filter %+v; want default and none", tr.Spec.Broker, tr.Spec.Filter)
	}
	s.Targets.Knative.Trigger = nil
	if tr, err = knative.TriggerFor(s, svc); tr != nil || err != nil {
		t.Errorf("without the section: %+v, %v; want none", tr, err)
	}
}
