package knative

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"

	manifest "github.com/cortexfn/cortex/packager/knative"
)

// Triggers are Knative Eventing's: eventing.knative.dev/v1, resource
// triggers. The main module does not import Eventing's Go types (see
// packager/knative.Trigger), so the deployer writes them through the
// dynamic client.
var triggerResource = schema.GroupVersionResource{Group: "eventing.knative.dev", Version: "v1", Resource: "triggers"}

// ErrNoEventing: the API server does not serve eventing.knative.dev/v1,
// which targets.knative.trigger needs.
var ErrNoEventing = errors.New("knative: Knative Eventing is not installed in this cluster (the API server does not serve eventing.knative.dev/v1), and targets.knative.trigger needs it: install Eventing, or remove targets.knative.trigger")

// errNoDynamic: a Client made by NewFromClients cannot write Triggers.
var errNoDynamic = errors.New("knative: this Client writes no Triggers: make it with New")

// TriggerResult is what ApplyTrigger or a deploy did to the function's
// Trigger.
type TriggerResult struct {
	Name string `json:"name"`
	// Action is "created", "updated", "unchanged" or "deleted".
	Action string `json:"action"`
	Broker string `json:"broker,omitempty"`
	// Filter is the exact-match filter on CloudEvent attributes.
	Filter map[string]string `json:"filter,omitempty"`
}

// PreflightTrigger checks, with reads only, that tr can be applied in its
// namespace: Eventing is installed, the user may get, create and update
// Triggers there. A Broker that does not exist yet is a warning: Eventing
// accepts the Trigger and makes it Ready once the Broker is. Deploy
// calls it before it writes anything, so a missing Eventing leaves no
// Service behind.
func (c *Client) PreflightTrigger(ctx context.Context, tr *manifest.Trigger) (warnings []string, err error) {
	if c.dynamic == nil {
		return nil, errNoDynamic
	}
	if _, err := c.kube.Discovery().ServerResourcesForGroupVersion(manifest.TriggerAPIVersion); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, ErrNoEventing
		}
		return nil, fmt.Errorf("asking the API server for %s: %w", manifest.TriggerAPIVersion, err)
	}
	denied := &ForbiddenError{Namespace: tr.Namespace, Resource: "triggers.eventing.knative.dev"}
	for _, verb := range []string{"get", "create", "update"} {
		r, err := c.kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: tr.Namespace, Verb: verb, Group: triggerResource.Group, Resource: triggerResource.Resource,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("cannot ask the API server whether you may %s Triggers in %q: %v", verb, tr.Namespace, err))
			continue
		}
		if !r.Status.Allowed {
			denied.Verbs = append(denied.Verbs, verb)
			if denied.Reason == "" {
				denied.Reason = r.Status.Reason
			}
		}
	}
	if len(denied.Verbs) > 0 {
		return nil, denied
	}
	brokers := schema.GroupVersionResource{Group: triggerResource.Group, Version: "v1", Resource: "brokers"}
	switch _, err := c.dynamic.Resource(brokers).Namespace(tr.Namespace).Get(ctx, tr.Spec.Broker, metav1.GetOptions{}); {
	case apierrors.IsNotFound(err):
		warnings = append(warnings, fmt.Sprintf("there is no Broker %q in namespace %q yet: the Trigger waits for it (create it, or set targets.knative.trigger.broker)", tr.Spec.Broker, tr.Namespace))
	case err != nil && !apierrors.IsForbidden(err):
		warnings = append(warnings, fmt.Sprintf("cannot read Broker %s/%s: %v", tr.Namespace, tr.Spec.Broker, err))
	}
	return warnings, nil
}

// ApplyTrigger creates tr, or updates the Trigger of that name when cortex
// wrote it for the same function (its function label); a Trigger of that
// name that someone else wrote is left alone, and is an error.
func (c *Client) ApplyTrigger(ctx context.Context, tr *manifest.Trigger) (*TriggerResult, error) {
	if c.dynamic == nil {
		return nil, errNoDynamic
	}
	res := &TriggerResult{Name: tr.Name, Broker: tr.Spec.Broker}
	if tr.Spec.Filter != nil {
		res.Filter = tr.Spec.Filter.Attributes
	}
	want, err := toUnstructured(tr)
	if err != nil {
		return nil, err
	}
	triggers := c.dynamic.Resource(triggerResource).Namespace(tr.Namespace)
	id := tr.Namespace + "/" + tr.Name
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		live, err := triggers.Get(ctx, tr.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			c.say("creating Trigger %s (broker %s)", id, tr.Spec.Broker)
			_, err = triggers.Create(ctx, want.DeepCopy(), metav1.CreateOptions{FieldManager: fieldManager})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(triggerResource.GroupResource(), tr.Name, err)
			}
			res.Action = "created"
			return err
		}
		if err != nil {
			return err
		}
		if fn := live.GetLabels()[manifest.FunctionLabel]; fn != tr.Labels[manifest.FunctionLabel] {
			return fmt.Errorf("a Trigger %s exists that cortex did not write for this function (label %s=%q): rename or delete it, or remove targets.knative.trigger", id, manifest.FunctionLabel, fn)
		}
		if reflect.DeepEqual(live.Object["spec"], want.Object["spec"]) && maps.Equal(live.GetLabels(), mergeLabels(live.GetLabels(), tr.Labels)) {
			res.Action = "unchanged"
			return nil
		}
		obj := live.DeepCopy()
		obj.Object["spec"] = want.Object["spec"]
		obj.SetLabels(mergeLabels(live.GetLabels(), tr.Labels))
		c.say("updating Trigger %s (broker %s)", id, tr.Spec.Broker)
		_, err = triggers.Update(ctx, obj, metav1.UpdateOptions{FieldManager: fieldManager})
		res.Action = "updated"
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("applying Trigger %s: %w", id, err)
	}
	return res, nil
}

// DeleteTrigger deletes the Trigger cortex wrote for the function name in
// ns, if there is one: after a deploy whose spec no longer has
// targets.knative.trigger, and with the function. Nothing (nil, nil) when
// there is none, or Eventing is not installed.
func (c *Client) DeleteTrigger(ctx context.Context, ns, name string) (*TriggerResult, error) {
	if c.dynamic == nil {
		return nil, nil
	}
	triggers := c.dynamic.Resource(triggerResource).Namespace(ns)
	live, err := triggers.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		// No such Trigger, or no Eventing at all.
		return nil, nil
	case apierrors.IsForbidden(err):
		// A user who may not read Triggers deploys functions without
		// one; a Trigger cortex wrote for someone else stays theirs.
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading Trigger %s/%s: %w", ns, name, err)
	}
	if live.GetLabels()[manifest.FunctionLabel] != name {
		return nil, nil // not cortex's for this function
	}
	uid := live.GetUID()
	err = triggers.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("deleting Trigger %s/%s: %w", ns, name, err)
	}
	c.say("deleted Trigger %s/%s", ns, name)
	return &TriggerResult{Name: name, Action: "deleted"}, nil
}

func mergeLabels(have, want map[string]string) map[string]string {
	out := maps.Clone(have)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, want)
	return out
}

func toUnstructured(v any) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	return u, nil
}
