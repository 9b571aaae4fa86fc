package knative

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// wait watches the Service from s's resource version until done reports
// true or an error, timeout passes, or ctx ends. It prints each change of
// the Ready condition. On a timeout the error is a *RevisionError with the
// last condition seen; the last Service seen is returned with any error.
func (c *Client) wait(ctx context.Context, s *servingv1.Service, timeout time.Duration, done func(*servingv1.Service) (bool, error)) (*servingv1.Service, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	services := c.serving.ServingV1().Services(s.Namespace)
	id := s.Namespace + "/" + s.Name
	last := ""
	report := func(s *servingv1.Service) {
		cond := s.Status.GetCondition(apis.ConditionReady)
		line := "waiting for Knative to report on " + id
		if cond != nil && s.Status.ObservedGeneration >= s.Generation {
			line = fmt.Sprintf("%s: Ready=%s", id, cond.Status)
			if cond.Reason != "" {
				line += " " + cond.Reason
			}
			if cond.Message != "" {
				line += ": " + cond.Message
			}
			if r := s.Status.LatestCreatedRevisionName; r != "" {
				line += " (revision " + r + ")"
			}
		}
		if line != last {
			c.say("%s", line)
			last = line
		}
	}
	check := func(s *servingv1.Service) (bool, error) {
		report(s)
		return done(s)
	}

	cur := s
	if ok, err := check(cur); ok || err != nil {
		return cur, err
	}
	for {
		w, err := services.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", s.Name).String(),
			ResourceVersion: cur.ResourceVersion,
		})
		if err != nil && ctx.Err() == nil {
			return cur, fmt.Errorf("watching %s: %w", id, err)
		}
		if err == nil {
			for ev := range w.ResultChan() {
				switch ev.Type {
				case watch.Added, watch.Modified:
					if got, ok := ev.Object.(*servingv1.Service); ok {
						cur = got
						if ok, err := check(cur); ok || err != nil {
							w.Stop()
							return cur, err
						}
					}
				case watch.Deleted:
					w.Stop()
					return cur, fmt.Errorf("%s was deleted while cortex waited for it", id)
				case watch.Error:
					// Expired resource version or similar: read again below.
				}
			}
			w.Stop()
		}
		if ctx.Err() != nil {
			break
		}
		// The watch ended (server timeout, expired version): read the
		// current state and watch again from it.
		got, err := services.Get(ctx, s.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return cur, fmt.Errorf("%s was deleted while cortex waited for it", id)
		case err != nil && ctx.Err() == nil:
			return cur, fmt.Errorf("reading %s: %w", id, err)
		case err == nil:
			cur = got
			if ok, err := check(cur); ok || err != nil {
				return cur, err
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		e := &RevisionError{Service: id, Revision: cur.Status.LatestCreatedRevisionName, Condition: apis.ConditionReady, TimedOut: true}
		if cond := cur.Status.GetCondition(apis.ConditionReady); cond != nil && cur.Status.ObservedGeneration >= cur.Generation {
			e.Reason, e.Message = cond.Reason, cond.Message
		}
		return cur, e
	}
	return cur, ctx.Err()
}
