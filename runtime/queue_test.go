package runtime_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
)

// TestQueuedRequestsAreRefusedNotTimedOut: a request that never got a
// prediction slot never ran, so the function being at capacity is a 503 with
// Retry-After, never the 504 of a slow prediction. While predictions past
// their deadline hold every slot (as a runaway holds its own until the
// process is replaced), a new request is refused at once rather than queued
// behind them; one that waited its whole deadline in the queue is refused
// too. The faults bench found innocent requests answered 504 this way.
func TestQueuedRequestsAreRefusedNotTimedOut(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	p := functions.PredictorFunc(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
		if string(req.Body) == "stuck" {
			<-release // deaf to ctx, like a runaway
		}
		return functions.Bytes(http.StatusOK, "text/plain", req.Body), nil
	})

	t.Run("queued behind a busy slot", func(t *testing.T) {
		hold := make(chan struct{})
		busy := functions.PredictorFunc(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
			if string(req.Body) == "busy" {
				select {
				case <-hold:
				case <-ctx.Done():
				}
			}
			return functions.Bytes(http.StatusOK, "text/plain", req.Body), nil
		})
		rt := newRuntime(t, busy, runtime.Limits{MaxConcurrency: 1, MaxQueue: 4, Timeout: runtime.Duration(time.Minute)})
		go rt.Invoke(context.Background(), &functions.Request{Body: []byte("busy")})
		waitFor(t, func() bool { return gaugeValue(t, rt, "cortex_requests_in_flight") == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := rt.Invoke(ctx, &functions.Request{Body: []byte("queued")})
		var fe *functions.Error
		if got := functions.StatusOf(err); got != http.StatusServiceUnavailable || !errorAs(err, &fe) || fe.RetryAfter == 0 {
			t.Errorf("a request that waited its deadline in the queue: %d (%v), want 503 with Retry-After", got, err)
		}
		close(hold)
	})

	t.Run("every slot held past its deadline", func(t *testing.T) {
		rt := newRuntime(t, p, runtime.Limits{MaxConcurrency: 2, MaxQueue: 8, Timeout: runtime.Duration(50 * time.Millisecond),
			OverrunGrace: runtime.Duration(time.Hour)})
		for range 2 {
			if _, err := rt.Invoke(context.Background(), &functions.Request{Body: []byte("stuck")}); functions.StatusOf(err) != http.StatusGatewayTimeout {
				t.Fatalf("the stuck prediction: %v, want 504 at its deadline", err)
			}
		}
		waitFor(t, func() bool { return rt.Overrunning() == 2 })
		_, err := rt.Invoke(context.Background(), &functions.Request{Body: []byte("innocent")})
		var fe *functions.Error
		if got := functions.StatusOf(err); got != http.StatusServiceUnavailable || !errorAs(err, &fe) || fe.RetryAfter == 0 {
			t.Errorf("a request while every slot is held by an overrunning prediction: %d (%v), want 503 with Retry-After", got, err)
		}
		if got := rejected(t, rt, "overrun"); got != 1 {
			t.Errorf("cortex_requests_rejected_total{reason=\"overrun\"} = %v, want 1", got)
		}
	})
}

func errorAs(err error, target **functions.Error) bool { return errors.As(err, target) }

// rejected reads cortex_requests_rejected_total for one reason.
func rejected(t *testing.T, rt *runtime.Runtime, reason string) float64 {
	f, ok := scrape(t, rt)["cortex_requests_rejected_total"]
	if !ok {
		return 0
	}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "reason" && l.GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
