package knative

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/retry"
	"knative.dev/pkg/apis"
	"knative.dev/serving/pkg/apis/autoscaling"
	"knative.dev/serving/pkg/apis/serving"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	manifest "github.com/cortexfn/cortex/packager/knative"
)

// ErrNotFound: no such function (Knative Service) in the namespace.
var ErrNotFound = errors.New("knative: function not found")

// Function is what `cortex get` shows about a deployed function.
type Function struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	URL       string `json:"url,omitempty"`
	// Ready is the Ready condition's status: True, False or Unknown.
	Ready   string `json:"ready"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Revision is the latest ready revision; Created the latest created
	// (they differ while a new one starts or after it failed).
	Revision string    `json:"revision,omitempty"`
	Created  string    `json:"latest_created,omitempty"`
	Traffic  []Traffic `json:"traffic,omitempty"`
	MinScale string    `json:"min_scale,omitempty"`
	MaxScale string    `json:"max_scale,omitempty"`
	GPU      int64     `json:"gpu,omitempty"`
	Image    string    `json:"image,omitempty"`
	// ColdStart is the last cold start of the replica that answered
	// `cortex get`'s scrape of its metrics, seconds by phase
	// (runtime.Phases); absent when they could not be read (ColdStart).
	ColdStart map[string]float64 `json:"last_cold_start_phases_seconds,omitempty"`

	tokenEnv string // manifest.TokenEnvAnnotation: the variable of its bearer token
	atZero   bool   // no replica serves its traffic: its metrics were not read
}

func functionOf(s *servingv1.Service) Function {
	f := Function{
		Name: s.Name, Namespace: s.Namespace, URL: urlOf(s), Ready: "Unknown",
		Revision: s.Status.LatestReadyRevisionName, Created: s.Status.LatestCreatedRevisionName,
		Traffic:  trafficOf(s),
		MinScale: s.Spec.Template.Annotations[autoscaling.MinScaleAnnotationKey],
		MaxScale: s.Spec.Template.Annotations[autoscaling.MaxScaleAnnotationKey],
		tokenEnv: s.Annotations[manifest.TokenEnvAnnotation],
	}
	if c := s.Status.GetCondition(apis.ConditionReady); c != nil && s.Status.ObservedGeneration >= s.Generation {
		f.Ready, f.Reason, f.Message = string(c.Status), c.Reason, c.Message
	}
	if cs := s.Spec.Template.Spec.Containers; len(cs) > 0 {
		f.Image = cs[0].Image
		if q, ok := cs[0].Resources.Limits[manifest.GPUResource]; ok {
			f.GPU = q.Value()
		}
	}
	return f
}

func notFound(ns, name string) error {
	return fmt.Errorf("%w: no Knative Service %q in namespace %q", ErrNotFound, name, ns)
}

// Get returns the function name in namespace ns.
func (c *Client) Get(ctx context.Context, ns, name string) (*Function, error) {
	s, err := c.serving.ServingV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, notFound(ns, name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s/%s: %w", ns, name, err)
	}
	f := functionOf(s)
	return &f, nil
}

// List returns the functions cortex deployed in namespace ns (Services
// with the cortex.dev/function label), sorted by name.
func (c *Client) List(ctx context.Context, ns string) ([]Function, error) {
	l, err := c.serving.ServingV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: manifest.FunctionLabel})
	if err != nil {
		return nil, fmt.Errorf("listing Knative Services in %q: %w", ns, err)
	}
	out := make([]Function, 0, len(l.Items))
	for i := range l.Items {
		out = append(out, functionOf(&l.Items[i]))
	}
	slices.SortFunc(out, func(a, b Function) int { return cmpString(a.Name, b.Name) })
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// URL returns the function's URL, or an error saying why it has none.
func (c *Client) URL(ctx context.Context, ns, name string) (string, error) {
	f, err := c.Get(ctx, ns, name)
	if err != nil {
		return "", err
	}
	if f.URL == "" {
		return "", fmt.Errorf("%s/%s has no URL yet (Ready %s %s: %s)", ns, name, f.Ready, f.Reason, f.Message)
	}
	return f.URL, nil
}

// Delete deletes the function's Service; Knative deletes its revisions and
// routes with it.
func (c *Client) Delete(ctx context.Context, ns, name string) error {
	policy := metav1.DeletePropagationBackground
	err := c.serving.ServingV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy})
	if apierrors.IsNotFound(err) {
		return notFound(ns, name)
	}
	if err != nil {
		return fmt.Errorf("deleting %s/%s: %w", ns, name, err)
	}
	c.say("deleted Knative Service %s/%s", ns, name)
	// The Trigger cortex wrote for it (targets.knative.trigger) would
	// deliver to nothing now.
	_, err = c.DeleteTrigger(ctx, ns, name)
	return err
}

// Revision is one revision of a function.
type Revision struct {
	Name       string `json:"name"`
	Generation int64  `json:"generation"`
	Ready      bool   `json:"ready"`
	Image      string `json:"image,omitempty"`
	// Replicas is the revision's ready pods (status.actualReplicas, which
	// Knative's revision reconciler copies from its autoscaler): 0 when it
	// is scaled to zero.
	Replicas int32 `json:"replicas"`
}

// Revisions returns the function's revisions, oldest first.
func (c *Client) Revisions(ctx context.Context, ns, name string) ([]Revision, error) {
	l, err := c.serving.ServingV1().Revisions(ns).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{serving.ServiceLabelKey: name}).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("listing the revisions of %s/%s: %w", ns, name, err)
	}
	out := make([]Revision, 0, len(l.Items))
	for _, r := range l.Items {
		g, _ := strconv.ParseInt(r.Labels[serving.ConfigurationGenerationLabelKey], 10, 64)
		rv := Revision{Name: r.Name, Generation: g, Ready: r.Status.GetCondition(apis.ConditionReady).IsTrue()}
		if len(r.Spec.Containers) > 0 {
			rv.Image = r.Spec.Containers[0].Image
		}
		if n := r.Status.ActualReplicas; n != nil {
			rv.Replicas = *n
		}
		out = append(out, rv)
	}
	slices.SortFunc(out, func(a, b Revision) int {
		if a.Generation != b.Generation {
			return int(a.Generation - b.Generation)
		}
		return cmpString(a.Name, b.Name)
	})
	return out, nil
}

// Running reports whether every revision that takes f's traffic (the
// latest ready one when the traffic names none) has a ready replica.
// Reading anything through the URL of a function at zero replicas starts
// one: a cold start, on a GPU node perhaps, only to read its metrics.
// Any doubt (the revisions cannot be read, a revision is gone) is false.
func (c *Client) Running(ctx context.Context, f *Function) bool {
	revs, err := c.Revisions(ctx, f.Namespace, f.Name)
	if err != nil {
		return false
	}
	replicas := make(map[string]int32, len(revs))
	for _, r := range revs {
		replicas[r.Name] = r.Replicas
	}
	var serving []string
	for _, t := range f.Traffic {
		if t.Percent > 0 {
			serving = append(serving, t.Revision)
		}
	}
	if len(serving) == 0 && f.Revision != "" {
		serving = []string{f.Revision}
	}
	for _, name := range serving {
		if replicas[name] <= 0 {
			return false
		}
	}
	return len(serving) > 0
}

// RollbackOptions says how Rollback works.
type RollbackOptions struct {
	// Revision to send all traffic to. Default: the newest Ready revision
	// older than the one serving the most traffic now.
	Revision string
	// DryRun returns the object that would be written without writing it.
	DryRun bool
	// Timeout bounds the wait for Knative to report the new route Ready.
	// Default one minute.
	Timeout time.Duration
}

// Rollback points 100% of the function's traffic at an earlier Ready
// revision (see RollbackOptions.Revision), keeping 0% tags others set, and
// waits until Knative reports the route Ready. A later plain deploy sends
// traffic to its new revision again (see TrafficAnnotation).
func (c *Client) Rollback(ctx context.Context, ns, name string, o RollbackOptions) (*Result, error) {
	id := ns + "/" + name
	services := c.serving.ServingV1().Services(ns)
	live, err := services.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, notFound(ns, name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", id, err)
	}
	revs, err := c.Revisions(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	target := o.Revision
	if target != "" {
		i := slices.IndexFunc(revs, func(r Revision) bool { return r.Name == target })
		if i < 0 {
			return nil, fmt.Errorf("%s has no revision %q; its revisions: %s", id, target, revisionNames(revs))
		}
		if !revs[i].Ready {
			return nil, fmt.Errorf("revision %s of %s is not Ready: Knative cannot send traffic to it", target, id)
		}
	} else {
		current := servingRevision(live)
		if current == "" {
			return nil, fmt.Errorf("no revision of %s serves traffic: nothing to roll back from", id)
		}
		cur := slices.IndexFunc(revs, func(r Revision) bool { return r.Name == current })
		for i := len(revs) - 1; i >= 0; i-- {
			if revs[i].Ready && revs[i].Name != current && (cur < 0 || revs[i].Generation < revs[cur].Generation) {
				target = revs[i].Name
				break
			}
		}
		if target == "" {
			return nil, fmt.Errorf("%s has no Ready revision older than %s to roll back to; its revisions: %s", id, current, revisionNames(revs))
		}
	}
	c.say("sending all traffic of %s to %s", id, target)

	res := &Result{Name: name, Namespace: ns, Revision: target, DryRun: o.DryRun}
	var written *servingv1.Service
	attempt := 0
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if attempt++; attempt > 1 {
			if live, err = services.Get(ctx, name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		obj := live.DeepCopy()
		obj.Spec.Traffic = append([]servingv1.TrafficTarget{{RevisionName: target, Percent: ptr(int64(100)), LatestRevision: ptr(false)}},
			othersTags(live.Spec.Traffic, "")...)
		setTrafficAnnotation(obj)
		res.Object = obj
		if o.DryRun {
			res.Action = "update"
			return nil
		}
		written, err = services.Update(ctx, obj, metav1.UpdateOptions{FieldManager: fieldManager})
		if apierrors.IsConflict(err) {
			c.say("%s changed since it was read: reading it again", id)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("updating the traffic of %s: %w", id, err)
	}
	if o.DryRun {
		res.Object = forPrinting(res.Object)
		return res, nil
	}
	res.Action = "updated"
	res.Object = written
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	gen := written.Generation
	final, err := c.wait(ctx, written, timeout, func(s *servingv1.Service) (bool, error) {
		if s.Status.ObservedGeneration < gen {
			return false, nil
		}
		ready := s.Status.GetCondition(apis.ConditionReady)
		if ready.IsFalse() {
			return false, failure(s)
		}
		return ready.IsTrue(), nil
	})
	if final != nil {
		res.Object = final
		res.URL = urlOf(final)
		res.Traffic = trafficOf(final)
	}
	return res, err
}

func revisionNames(revs []Revision) string {
	if len(revs) == 0 {
		return "none"
	}
	var s string
	for i, r := range revs {
		if i > 0 {
			s += ", "
		}
		s += r.Name
		if !r.Ready {
			s += " (not ready)"
		}
	}
	return s
}
