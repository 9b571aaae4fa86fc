package knative

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"knative.dev/pkg/apis"
	"knative.dev/serving/pkg/apis/serving"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/cortexfn/cortex/packager/deploy"
	manifest "github.com/cortexfn/cortex/packager/knative"
)

// TrafficAnnotation, on a Service, records the spec.traffic cortex last
// wrote (JSON), so a later deploy can tell cortex's canary or rollback from
// traffic someone else set.
const TrafficAnnotation = "cortex.dev/traffic"

// DefaultTag tags the new revision of a canary deploy.
const DefaultTag = deploy.DefaultTag

// DeployOptions says how Deploy applies a Service. The zero value creates
// or updates it, sends all traffic to the new revision unless someone else
// pinned traffic, and waits up to the Service's progress deadline plus a
// minute.
type DeployOptions struct {
	// Traffic is the percentage of traffic the new revision gets. 0: all
	// of it, unless traffic was set by someone other than cortex (then it
	// is kept). 1 to 99: a canary, tagged Tag, beside the revision serving
	// now. 100: all of it, whoever set traffic before.
	Traffic int
	// Tag names the canary's traffic target (its own URL). Default
	// DefaultTag.
	Tag string
	// DryRun runs the preflight and the merge and sends the write as a
	// server dry run (kubectl's --dry-run=server), so the cluster's
	// admission (Knative's webhook: its defaults, its refusals) runs and
	// nothing is stored; it returns the object the API server would store.
	DryRun bool
	// Timeout bounds the wait for the new revision. Default: the
	// template's serving.knative.dev/progress-deadline (else Knative's
	// 10m) plus a minute.
	Timeout time.Duration
}

// Traffic is one traffic target as Knative reports it.
type Traffic struct {
	Revision string `json:"revision"`
	Percent  int64  `json:"percent"`
	Tag      string `json:"tag,omitempty"`
	Latest   bool   `json:"latest,omitempty"`
	URL      string `json:"url,omitempty"`
}

// Result is what Deploy or Rollback did. It marshals to what `--output
// json` prints.
type Result struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// DryRun: nothing was written; Object is what would be.
	DryRun bool `json:"dry_run,omitempty"`
	// Action is "created", "updated", "unchanged" or, for a dry run,
	// "create" or "update".
	Action string `json:"action"`
	// URL is the Service's URL.
	URL string `json:"url,omitempty"`
	// Revision is the revision the deploy made (Ready), or the one a
	// rollback sent all traffic to.
	Revision string    `json:"revision,omitempty"`
	Traffic  []Traffic `json:"traffic,omitempty"`
	// Visibility is who can reach the Service: "public" (through the
	// cluster's ingress, from outside it) or "cluster-local".
	Visibility string `json:"visibility,omitempty"`
	// Features are the config-features flags the Service needs.
	Features []Feature `json:"features,omitempty"`
	// Trigger is what the deploy did to the function's Eventing Trigger
	// (targets.knative.trigger), if anything.
	Trigger  *TriggerResult `json:"trigger,omitempty"`
	Warnings []string       `json:"warnings,omitempty"`
	// Object is what was (or, for a dry run, would be) written.
	Object *servingv1.Service `json:"object,omitempty"`
}

// RevisionError reports a Service whose new revision did not become Ready.
type RevisionError struct {
	Service  string
	Revision string
	// Condition is the condition that failed (Ready unless a more
	// specific one said more), with Knative's reason and message.
	Condition apis.ConditionType
	Reason    string
	Message   string
	// TimedOut: cortex stopped waiting; the condition is the last seen.
	TimedOut bool
}

func (e *RevisionError) Error() string {
	rev := e.Revision
	if rev == "" {
		rev = "the new revision"
	}
	if e.TimedOut {
		return fmt.Sprintf("timed out waiting for %s of %s to become Ready; last %s: %s: %s", rev, e.Service, e.Condition, orNone(e.Reason), orNone(e.Message))
	}
	return fmt.Sprintf("%s of %s is not Ready: %s %s: %s", rev, e.Service, e.Condition, e.Reason, e.Message)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Deploy creates svc, or updates the live Service of that name, and waits
// for its new revision to be Ready. See the package documentation for
// what an update keeps. On failure after the write, the Result still says
// what was written.
func (c *Client) Deploy(ctx context.Context, svc *servingv1.Service, o DeployOptions) (*Result, error) {
	if o.Traffic < 0 || o.Traffic > 100 {
		return nil, fmt.Errorf("traffic %d%%: give 1 to 99 for a canary, or 100", o.Traffic)
	}
	if o.Tag == "" {
		o.Tag = DefaultTag
	}
	if svc.Namespace == "" {
		return nil, errors.New("knative: the Service has no namespace")
	}
	id := svc.Namespace + "/" + svc.Name
	c.say("checking %s: Knative, namespace, permissions, feature flags", id)
	pre, err := c.Preflight(ctx, svc)
	if err != nil {
		return nil, err
	}
	res := &Result{Name: svc.Name, Namespace: svc.Namespace, Features: pre.Features, Warnings: pre.Warnings, DryRun: o.DryRun}
	for _, w := range pre.Warnings {
		c.say("warning: %s", w)
	}

	services := c.serving.ServingV1().Services(svc.Namespace)
	var written *servingv1.Service
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		live, err := services.Get(ctx, svc.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if o.Traffic > 0 && o.Traffic < 100 {
				return fmt.Errorf("--traffic %d: %s does not exist yet, so there is no revision to share traffic with; deploy it once without --traffic", o.Traffic, id)
			}
			obj := svc.DeepCopy()
			obj.ResourceVersion = ""
			res.Object = obj
			if o.DryRun {
				res.Action = "create"
				dry, err := services.Create(ctx, obj, metav1.CreateOptions{FieldManager: fieldManager, DryRun: []string{metav1.DryRunAll}})
				if err == nil {
					res.Object = dry
				}
				return err
			}
			c.say("creating Service %s", id)
			written, err = services.Create(ctx, obj, metav1.CreateOptions{FieldManager: fieldManager})
			if apierrors.IsAlreadyExists(err) {
				// Someone created it between the read and the write:
				// start over as an update.
				return apierrors.NewConflict(servingv1.Resource("services"), svc.Name, err)
			}
			res.Action = "created"
			return err
		}
		if err != nil {
			return err
		}
		obj, err := merge(live, svc, o)
		if err != nil {
			return err
		}
		res.Object = obj
		if o.DryRun {
			res.Action = "update"
			dry, err := services.Update(ctx, obj, metav1.UpdateOptions{FieldManager: fieldManager, DryRun: []string{metav1.DryRunAll}})
			if err == nil {
				res.Object = dry
			}
			return err
		}
		c.say("updating Service %s (resource version %s)", id, live.ResourceVersion)
		written, err = services.Update(ctx, obj, metav1.UpdateOptions{FieldManager: fieldManager})
		if err == nil {
			res.Action = "updated"
			if written.Generation == live.Generation {
				res.Action = "unchanged"
			}
		} else if apierrors.IsConflict(err) {
			c.say("%s changed since it was read: reading it again", id)
		}
		return err
	})
	if err != nil {
		if apierrors.IsNotFound(err) {
			// The namespace vanished, or the preflight could not see it.
			return nil, fmt.Errorf("%w: %q (%v)", ErrNoNamespace, svc.Namespace, err)
		}
		return nil, fmt.Errorf("applying %s: %w", id, err)
	}
	if o.DryRun {
		res.Object = forPrinting(res.Object)
		return res, nil
	}
	res.Object = written

	timeout := o.Timeout
	if timeout <= 0 {
		timeout = waitBudget(written)
	}
	gen := written.Generation
	final, err := c.wait(ctx, written, timeout, func(s *servingv1.Service) (bool, error) {
		if s.Status.ObservedGeneration < gen {
			return false, nil
		}
		ready := s.Status.GetCondition(apis.ConditionReady)
		switch {
		case ready == nil:
			return false, nil
		case ready.IsTrue():
			return s.Status.LatestReadyRevisionName != "" && s.Status.LatestReadyRevisionName == s.Status.LatestCreatedRevisionName, nil
		case ready.IsFalse():
			// Knative's Ready is False too while the route still has no
			// ready revision to send traffic to (after a failed deploy)
			// and the new one is on its way; only a failed configuration,
			// the new revision failing, ends the wait early. A route that
			// stays failed is reported at the timeout.
			if cr := s.Status.GetCondition(servingv1.ServiceConditionConfigurationsReady); cr != nil && cr.IsFalse() {
				return false, failure(s)
			}
		}
		return false, nil
	})
	if final != nil {
		res.Object = final
		res.URL = urlOf(final)
		res.Revision = final.Status.LatestReadyRevisionName
		res.Traffic = trafficOf(final)
	}
	if err != nil {
		return res, err
	}
	if o.Traffic == 0 && !routesLatest(final) {
		w := fmt.Sprintf("traffic on %s was set by someone else and sends nothing to %s: deploy with --traffic 100 to send it all there", id, res.Revision)
		res.Warnings = append(res.Warnings, w)
		c.say("warning: %s", w)
	}
	return res, nil
}

// forPrinting is s as a manifest shows it: with its kind, without the
// server's bookkeeping (a server dry run of an update answers with the
// live Service's status, which is not what would be written).
func forPrinting(s *servingv1.Service) *servingv1.Service {
	s = s.DeepCopy()
	s.TypeMeta = metav1.TypeMeta{APIVersion: servingv1.SchemeGroupVersion.String(), Kind: "Service"}
	s.ManagedFields = nil
	s.Status = servingv1.ServiceStatus{}
	return s
}

// fieldManager names cortex in managedFields.
const fieldManager = "cortex"

// waitBudget is the progress deadline of svc's template plus a minute.
func waitBudget(svc *servingv1.Service) time.Duration {
	if v, ok := svc.Spec.Template.Annotations[serving.ProgressDeadlineAnnotationKey]; ok {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return d + time.Minute
		}
	}
	return DefaultTimeout
}

// failure turns a Service whose Ready condition is False into a
// *RevisionError, preferring the more specific ConfigurationsReady
// condition, which carries the revision's own reason.
func failure(s *servingv1.Service) error {
	cond := s.Status.GetCondition(apis.ConditionReady)
	if cr := s.Status.GetCondition(servingv1.ServiceConditionConfigurationsReady); cr != nil && cr.IsFalse() {
		cond = cr
	}
	return &RevisionError{
		Service:   s.Namespace + "/" + s.Name,
		Revision:  s.Status.LatestCreatedRevisionName,
		Condition: cond.Type,
		Reason:    cond.Reason,
		Message:   cond.Message,
	}
}

// merge applies the desired Service to a copy of the live one, keeping
// what the spec does not own (see the package documentation).
func merge(live, desired *servingv1.Service, o DeployOptions) (*servingv1.Service, error) {
	out := live.DeepCopy()

	out.Labels = mergeOwned(live.Labels, desired.Labels, func(k string) bool {
		return k == manifest.FunctionLabel || k == manifest.VisibilityLabel
	})
	out.Annotations = mergeOwned(live.Annotations, desired.Annotations, func(string) bool { return false })

	t, dt := &out.Spec.Template, &desired.Spec.Template
	// A revision name the live template carries would have to change with
	// every spec change; let Knative name revisions.
	t.Name = ""
	t.Labels = mergeOwned(live.Spec.Template.Labels, dt.Labels, func(k string) bool { return k == manifest.FunctionLabel })
	t.Annotations = mergeOwned(live.Spec.Template.Annotations, dt.Annotations, func(k string) bool {
		return strings.HasPrefix(k, "autoscaling.knative.dev/") || k == serving.ProgressDeadlineAnnotationKey
	})
	keep := live.Spec.Template.Spec
	t.Spec = *dt.Spec.DeepCopy()
	if t.Spec.ServiceAccountName == "" {
		t.Spec.ServiceAccountName = keep.ServiceAccountName
	}
	if len(t.Spec.ImagePullSecrets) == 0 {
		t.Spec.ImagePullSecrets = keep.ImagePullSecrets
	}
	if t.Spec.AutomountServiceAccountToken == nil {
		t.Spec.AutomountServiceAccountToken = keep.AutomountServiceAccountToken
	}

	// Traffic.
	ours := cortexOwnsTraffic(live)
	var traffic []servingv1.TrafficTarget
	switch {
	case o.Traffic > 0 && o.Traffic < 100:
		stable := servingRevision(live)
		if stable == "" {
			return nil, fmt.Errorf("--traffic %d: no revision of %s/%s serves traffic yet, so there is none to share with; deploy once without --traffic", o.Traffic, live.Namespace, live.Name)
		}
		traffic = []servingv1.TrafficTarget{
			{RevisionName: stable, Percent: ptr(int64(100 - o.Traffic)), LatestRevision: ptr(false)},
			{Tag: o.Tag, LatestRevision: ptr(true), Percent: ptr(int64(o.Traffic))},
		}
		traffic = append(traffic, othersTags(live.Spec.Traffic, o.Tag)...)
	case o.Traffic == 100 || ours:
		traffic = allToLatest(live.Spec.Traffic)
	default:
		traffic = live.Spec.Traffic
	}
	out.Spec.Traffic = traffic
	if o.Traffic > 0 || ours {
		setTrafficAnnotation(out)
	} else {
		// Someone else set traffic since cortex did: the record is stale.
		delete(out.Annotations, TrafficAnnotation)
	}
	return out, nil
}

// mergeOwned returns have with every key owned reports removed, then want
// added: the keys someone else set survive, the owned ones follow want.
func mergeOwned(have, want map[string]string, owned func(string) bool) map[string]string {
	out := map[string]string{}
	for k, v := range have {
		if !owned(k) {
			out[k] = v
		}
	}
	maps.Copy(out, want)
	if len(out) == 0 {
		return nil
	}
	return out
}

// servingRevision is the revision that serves the most traffic now: the
// one a canary shares traffic with, and the one a rollback moves away from.
func servingRevision(s *servingv1.Service) string {
	best, bestPct := "", int64(-1)
	for _, t := range s.Status.Traffic {
		if p := pct(t.Percent); t.RevisionName != "" && p > bestPct {
			best, bestPct = t.RevisionName, p
		}
	}
	if best == "" || bestPct == 0 {
		return s.Status.LatestReadyRevisionName
	}
	return best
}

// allToLatest is traffic that sends everything to the latest ready
// revision, keeping the 0% tagged targets others set.
func allToLatest(have []servingv1.TrafficTarget) []servingv1.TrafficTarget {
	out := []servingv1.TrafficTarget{{LatestRevision: ptr(true), Percent: ptr(int64(100))}}
	return append(out, othersTags(have, "")...)
}

// othersTags are the tagged targets in have that carry no traffic (a tag
// gives a revision its own URL), except the one named skip.
func othersTags(have []servingv1.TrafficTarget, skip string) []servingv1.TrafficTarget {
	var out []servingv1.TrafficTarget
	for _, t := range have {
		if t.Tag != "" && t.Tag != skip && pct(t.Percent) == 0 && t.RevisionName != "" {
			t.URL = nil
			out = append(out, t)
		}
	}
	return out
}

// trafficKey is a target reduced to what it means, so traffic the webhook
// defaulted compares equal to what cortex wrote.
type trafficKey struct {
	Tag      string `json:"tag,omitempty"`
	Revision string `json:"revision,omitempty"`
	Latest   bool   `json:"latest,omitempty"`
	Percent  int64  `json:"percent,omitempty"`
}

func trafficKeys(ts []servingv1.TrafficTarget) []trafficKey {
	out := make([]trafficKey, 0, len(ts))
	for _, t := range ts {
		latest := t.RevisionName == ""
		if t.LatestRevision != nil {
			latest = *t.LatestRevision
		}
		out = append(out, trafficKey{Tag: t.Tag, Revision: t.RevisionName, Latest: latest, Percent: pct(t.Percent)})
	}
	return out
}

// cortexOwnsTraffic reports whether live's spec.traffic is what cortex
// last wrote there.
func cortexOwnsTraffic(live *servingv1.Service) bool {
	rec, ok := live.Annotations[TrafficAnnotation]
	if !ok {
		return false
	}
	var want []trafficKey
	if err := json.Unmarshal([]byte(rec), &want); err != nil {
		return false
	}
	have := trafficKeys(live.Spec.Traffic)
	if len(have) != len(want) {
		return false
	}
	for i := range have {
		if have[i] != want[i] {
			return false
		}
	}
	return true
}

// setTrafficAnnotation records s's spec.traffic as cortex's.
func setTrafficAnnotation(s *servingv1.Service) {
	b, _ := json.Marshal(trafficKeys(s.Spec.Traffic))
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[TrafficAnnotation] = string(b)
}

// routesLatest reports whether any traffic reaches the latest ready
// revision.
func routesLatest(s *servingv1.Service) bool {
	if len(s.Status.Traffic) == 0 {
		return true // no route status (yet): nothing to say
	}
	for _, t := range s.Status.Traffic {
		if pct(t.Percent) > 0 && (t.RevisionName == s.Status.LatestReadyRevisionName || (t.LatestRevision != nil && *t.LatestRevision)) {
			return true
		}
	}
	return false
}

func pct(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func ptr[T any](v T) *T { return &v }

func urlOf(s *servingv1.Service) string {
	if s.Status.URL == nil {
		return ""
	}
	return s.Status.URL.String()
}

func trafficOf(s *servingv1.Service) []Traffic {
	var out []Traffic
	for _, t := range s.Status.Traffic {
		tr := Traffic{Revision: t.RevisionName, Percent: pct(t.Percent), Tag: t.Tag, Latest: t.LatestRevision != nil && *t.LatestRevision}
		if t.URL != nil {
			tr.URL = t.URL.String()
		}
		out = append(out, tr)
	}
	return out
}
