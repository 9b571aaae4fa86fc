package knative

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"sigs.k8s.io/yaml"

	"github.com/cortexfn/cortex/packager/spec"
)

// Trigger is a Knative Eventing Trigger (eventing.knative.dev/v1), the
// fields cortex writes, spelled as Eventing's own type
// (knative.dev/eventing/pkg/apis/eventing/v1.Trigger) spells them. The
// main module does not import Eventing: its Trigger validation pulls in
// the CloudEvents SQL parser and its ANTLR runtime for a filter dialect
// cortex does not write. The e2e module checks that this type decodes
// strictly into Eventing's and passes Eventing's Validate.
type Trigger struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              TriggerSpec `json:"spec"`
}

// TriggerSpec is a Trigger's spec.
type TriggerSpec struct {
	// Broker names the Broker in the Trigger's namespace.
	Broker string `json:"broker"`
	// Filter keeps the events whose attributes equal these values.
	Filter *TriggerFilter `json:"filter,omitempty"`
	// Subscriber is the function's Knative Service.
	Subscriber duckv1.Destination `json:"subscriber"`
}

// TriggerFilter is an exact match on CloudEvent attributes.
type TriggerFilter struct {
	Attributes map[string]string `json:"attributes,omitempty"`
}

// The Trigger's API group and version.
const (
	TriggerAPIVersion = "eventing.knative.dev/v1"
	TriggerKind       = "Trigger"
)

// TriggerFor returns the Trigger targets.knative.trigger describes, which
// sends the Broker's events to the Service svc (in its namespace, under
// its name), or nil when the spec has none. The Service's answer to an
// event is a CloudEvent that Eventing sends back to the Broker (the
// reply).
func TriggerFor(s *spec.Spec, svc metav1.Object) (*Trigger, error) {
	t := s.Targets.Knative.Trigger
	if t == nil {
		return nil, nil
	}
	if svc.GetName() == "" {
		return nil, errors.New("knative: a Trigger needs the Service's name")
	}
	tr := &Trigger{
		TypeMeta: metav1.TypeMeta{APIVersion: TriggerAPIVersion, Kind: TriggerKind},
		ObjectMeta: metav1.ObjectMeta{
			Name:      svc.GetName(),
			Namespace: svc.GetNamespace(),
			Labels:    map[string]string{FunctionLabel: s.Name},
		},
		Spec: TriggerSpec{
			Broker: cmp.Or(t.Broker, spec.DefaultTriggerBroker),
			Subscriber: duckv1.Destination{Ref: &duckv1.KReference{
				APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: svc.GetName(), Namespace: svc.GetNamespace(),
			}},
		},
	}
	if len(t.Filter) > 0 {
		tr.Spec.Filter = &TriggerFilter{Attributes: maps.Clone(t.Filter)}
	}
	return tr, nil
}

// In returns a copy of t in namespace ns, with its subscriber there too:
// a deploy puts the Service, and so its Trigger, in the namespace it
// chooses.
func (t *Trigger) In(ns string) *Trigger {
	c := *t
	c.ObjectMeta = *t.ObjectMeta.DeepCopy()
	c.Namespace = ns
	c.Spec.Subscriber = *t.Spec.Subscriber.DeepCopy()
	if c.Spec.Subscriber.Ref != nil {
		c.Spec.Subscriber.Ref.Namespace = ns
	}
	return &c
}

// TriggerYAML renders t as a manifest for kubectl apply, as YAML renders
// a Service.
func TriggerYAML(t *Trigger) ([]byte, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("knative: writing the Trigger: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	prune(m)
	return yaml.Marshal(m)
}
