package knative

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/serving/pkg/apis/config"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// Where Knative Serving keeps its feature flags.
const (
	ServingNamespace  = "knative-serving"
	FeaturesConfigMap = config.FeaturesConfigName
)

// Errors Preflight returns (wrapped, or as the types below).
var (
	// ErrNoKnative: the API server does not serve serving.knative.dev/v1.
	ErrNoKnative = errors.New("knative: Knative Serving is not installed in this cluster (the API server does not serve serving.knative.dev/v1)")
	// ErrNoNamespace: the target namespace does not exist.
	ErrNoNamespace = errors.New("knative: namespace does not exist")
)

// Feature is a config-features flag a Service needs.
type Feature struct {
	// Flag is the key in knative-serving/config-features, for example
	// "kubernetes.podspec-nodeselector".
	Flag string `json:"flag"`
	// Field is the Service field that needs it.
	Field string `json:"field"`
	// Value is the flag's value in the cluster ("disabled" when unset).
	Value string `json:"value"`
}

// podFeatures are the pod spec fields a function may need that Knative
// keeps behind a flag, with the flag's accessor.
var podFeatures = []struct {
	flag, field string
	set         func(*servingv1.Service) bool
	value       func(*config.Features) config.Flag
}{
	{"kubernetes.podspec-nodeselector", "spec.template.spec.nodeSelector",
		func(s *servingv1.Service) bool { return len(s.Spec.Template.Spec.NodeSelector) > 0 },
		func(f *config.Features) config.Flag { return f.PodSpecNodeSelector }},
	{"kubernetes.podspec-tolerations", "spec.template.spec.tolerations",
		func(s *servingv1.Service) bool { return len(s.Spec.Template.Spec.Tolerations) > 0 },
		func(f *config.Features) config.Flag { return f.PodSpecTolerations }},
	{"kubernetes.podspec-affinity", "spec.template.spec.affinity",
		func(s *servingv1.Service) bool { return s.Spec.Template.Spec.Affinity != nil },
		func(f *config.Features) config.Flag { return f.PodSpecAffinity }},
	{"kubernetes.podspec-runtimeclassname", "spec.template.spec.runtimeClassName",
		func(s *servingv1.Service) bool {
			r := s.Spec.Template.Spec.RuntimeClassName
			return r != nil && *r != ""
		},
		func(f *config.Features) config.Flag { return f.PodSpecRuntimeClassName }},
	// On by default: a function with models by reference keeps its
	// model cache on an emptyDir volume, which a cluster may turn off.
	{"kubernetes.podspec-volumes-emptydir", "spec.template.spec.volumes[].emptyDir (the model cache of models fetched by reference)",
		func(s *servingv1.Service) bool {
			return slices.ContainsFunc(s.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.EmptyDir != nil })
		},
		func(f *config.Features) config.Flag { return f.PodSpecVolumesEmptyDir }},
}

// Needed returns the config-features flags svc needs (their Value empty).
func Needed(svc *servingv1.Service) []Feature {
	var out []Feature
	for _, pf := range podFeatures {
		if pf.set(svc) {
			out = append(out, Feature{Flag: pf.flag, Field: pf.field})
		}
	}
	return out
}

// FeatureError says which config-features flags are off for a Service
// that needs them, and how to turn them on.
type FeatureError struct {
	Service  string
	Disabled []Feature
}

func (e *FeatureError) Error() string {
	var fields, flags []string
	patch := map[string]string{}
	for _, f := range e.Disabled {
		fields = append(fields, f.Field)
		flags = append(flags, fmt.Sprintf("%s is %q", f.Flag, f.Value))
		patch[f.Flag] = "enabled"
	}
	p, _ := json.Marshal(map[string]any{"data": patch})
	return fmt.Sprintf("Knative in this cluster would reject %s: it sets %s, which needs feature flags that are off in ConfigMap %s/%s (%s). "+
		"A cluster admin turns them on with:\n  kubectl patch configmap/%s -n %s --type merge -p '%s'",
		e.Service, strings.Join(fields, " and "), ServingNamespace, FeaturesConfigMap, strings.Join(flags, ", "),
		FeaturesConfigMap, ServingNamespace, p)
}

// ForbiddenError says what the user may not do with Services in a
// namespace, as the API server's authorizer answered.
type ForbiddenError struct {
	Namespace string
	// Resource is what the user may not write; empty means
	// services.serving.knative.dev.
	Resource string
	// Verbs the user is denied: get, create, update.
	Verbs []string
	// Reason is the authorizer's reason, when it gave one.
	Reason string
}

func (e *ForbiddenError) Error() string {
	res := cmp.Or(e.Resource, "services.serving.knative.dev")
	msg := fmt.Sprintf("you may not %s %s in namespace %q", strings.Join(e.Verbs, ", "), res, e.Namespace)
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	return msg + ": ask a cluster admin for a Role granting them (kubectl auth can-i create " + res + " -n " + e.Namespace + ")"
}

// PreflightResult is what Preflight found that is not an error.
type PreflightResult struct {
	// Features are the flags the Service needs, with their values.
	Features []Feature `json:"features,omitempty"`
	// Warnings are checks that could not be made.
	Warnings []string `json:"warnings,omitempty"`
}

// Preflight checks, with reads only, that svc can be applied: Knative is
// installed, svc's namespace exists, the user may get, create and update
// Services there, and config-features enables every flag svc needs. A
// check the user's own permissions prevent (reading namespaces, or the
// ConfigMap in knative-serving) becomes a warning, not an error.
func (c *Client) Preflight(ctx context.Context, svc *servingv1.Service) (*PreflightResult, error) {
	res := &PreflightResult{}
	warn := func(format string, args ...any) { res.Warnings = append(res.Warnings, fmt.Sprintf(format, args...)) }
	ns := svc.Namespace

	if _, err := c.kube.Discovery().ServerResourcesForGroupVersion(servingv1.SchemeGroupVersion.String()); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, ErrNoKnative
		}
		return nil, fmt.Errorf("asking the API server for serving.knative.dev/v1: %w", err)
	}

	switch _, err := c.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("%w: %q: create it (kubectl create namespace %s) or deploy to another with --namespace", ErrNoNamespace, ns, ns)
	case apierrors.IsForbidden(err):
		// Namespace-scoped users often may not read namespaces; a missing
		// one is still reported when the Service is written.
	case err != nil:
		return nil, fmt.Errorf("reading namespace %q: %w", ns, err)
	}

	denied := &ForbiddenError{Namespace: ns}
	for _, verb := range []string{"get", "create", "update"} {
		r, err := c.kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: verb, Group: servingv1.SchemeGroupVersion.Group, Resource: "services",
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			warn("cannot ask the API server whether you may %s Services in %q: %v", verb, ns, err)
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

	needed := Needed(svc)
	if len(needed) == 0 {
		return res, nil
	}
	cm, err := c.kube.CoreV1().ConfigMaps(ServingNamespace).Get(ctx, FeaturesConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsForbidden(err):
		res.Features = needed
		warn("cannot read %s/%s to check the feature flags %s needs (%s): if the webhook rejects it, ask a cluster admin to enable them",
			ServingNamespace, FeaturesConfigMap, svc.Name, flagNames(needed))
		return res, nil
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("%w (no ConfigMap %s/%s)", ErrNoKnative, ServingNamespace, FeaturesConfigMap)
	case err != nil:
		return nil, fmt.Errorf("reading %s/%s: %w", ServingNamespace, FeaturesConfigMap, err)
	}
	features, err := config.NewFeaturesConfigFromConfigMap(cm)
	if err != nil {
		return nil, fmt.Errorf("reading %s/%s: %w", ServingNamespace, FeaturesConfigMap, err)
	}
	fe := &FeatureError{Service: svc.Namespace + "/" + svc.Name}
	for _, pf := range podFeatures {
		if !pf.set(svc) {
			continue
		}
		v := pf.value(features)
		f := Feature{Flag: pf.flag, Field: pf.field, Value: strings.ToLower(string(v))}
		res.Features = append(res.Features, f)
		if v == config.Disabled {
			fe.Disabled = append(fe.Disabled, f)
		}
	}
	if len(fe.Disabled) > 0 {
		return nil, fe
	}
	return res, nil
}

func flagNames(fs []Feature) string {
	var names []string
	for _, f := range fs {
		names = append(names, f.Flag)
	}
	return strings.Join(names, ", ")
}
