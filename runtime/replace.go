package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cortexfn/cortex/functions"
)

// ExitReplace is the exit status of a function process that ended itself
// to be replaced: a prediction ran on past its deadline by
// limits.overrun_grace. Go cannot stop a goroutine, so only a new process
// gets back the core and the concurrency slot a runaway predictor holds.
// The process first reports itself unhealthy (/healthz and /readyz answer
// 503), refuses new requests (503 with Retry-After) and lets the other
// in-flight predictions finish within limits.shutdown_timeout.
//
// 75 is EX_TEMPFAIL from sysexits.h: the failure is temporary and the
// process should simply be started again. Its supervisor does: cortex
// serve's host starts another process, Knative restarts the container (its
// liveness probe on /healthz fails too, should the process not exit),
// Lambda starts a new execution environment for the next invocation. Cog
// and Cortex gave the same guarantee by killing their worker process.
const ExitReplace = 75

// ErrReplace is wrapped by the error Serve and Run return, and Live
// reports, once the process must be replaced; Main then exits with
// ExitReplace.
var ErrReplace = errors.New("runtime: the process must be replaced")

// lambdaPostGrace is how long a Lambda function process that must be
// replaced waits, after its last invocation returned, before it exits:
// the runtime loop still has to post that invocation's answer.
const lambdaPostGrace = 250 * time.Millisecond

// Live returns nil while the process can go on serving, and otherwise
// why it must be replaced (an error wrapping ErrReplace). The HTTP
// carrier answers /healthz with 503 and this reason.
func (r *Runtime) Live() error {
	if p := r.replaceErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Overrunning returns how many predictions are running past their
// deadline: their callers have had their answer (504, or 499 when they
// went away) but the predictor has not returned. It is also the gauge
// cortex_overrunning_predictions.
func (r *Runtime) Overrunning() int { return int(r.overrunning.Load()) }

// watchOverrun follows a prediction whose caller has had its answer while
// the predictor still runs; done receives the predictor's result when it
// returns. Past the deadline the prediction counts as overrunning; past
// the deadline plus limits.overrun_grace the process must be replaced.
// A goroutine per abandoned prediction is cheap: each still holds a
// concurrency slot, so there are never more than max_concurrency.
func (r *Runtime) watchOverrun(ctx context.Context, req *functions.Request, done <-chan result) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return // invoke always sets one
	}
	go func() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case <-done: // it honoured its context
			return
		case <-t.C:
		}
		select {
		case <-done: // it returned just as the deadline passed
			return
		default:
		}
		r.overrunning.Add(1)
		r.m.overrun.Inc()
		defer func() {
			r.overrunning.Add(-1)
			r.m.overrun.Dec()
		}()
		grace := r.limits.OverrunGrace.D()
		t.Reset(time.Until(deadline.Add(grace)))
		select {
		case <-done:
			r.log.Info("an overrunning prediction finished", "request_id", req.ID, "overran_by", time.Since(deadline).String())
			return
		case <-t.C:
		}
		r.replace(fmt.Errorf("%w: prediction %s overran its deadline by %s (limits.overrun_grace) and is still running: "+
			"the predictor does not return when its context is done, and Go cannot stop it; the process exits with status %d to be replaced",
			ErrReplace, req.ID, grace, ExitReplace))
		<-done // perhaps never: it counts as overrunning while it runs
	}()
}

// replace marks the process for replacement: /healthz and /readyz answer
// 503, new requests are refused with 503 and Retry-After, and the carrier
// (Serve, ServeLambda) drains the other predictions and ends the process.
func (r *Runtime) replace(reason error) {
	r.replaceOnce.Do(func() {
		r.replaceErr.Store(&reason)
		r.log.Error("replacing the process", "err", reason, "overrunning", r.Overrunning(), "exit_code", ExitReplace)
		r.stopAdmitting()
		close(r.replacing)
	})
}

// drainForReplace ends Serve for a process that must be replaced. The
// listener stays open while the admitted predictions finish, so probes
// see the 503s and new callers get 503 with Retry-After rather than a
// refused connection; then the server closes. The predictor is not
// closed: a prediction still runs inside it, and the process is about to
// exit.
func (r *Runtime) drainForReplace(srvs *servers) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.limits.ShutdownTimeout.D())
	defer cancel()
	err := r.awaitIdle(ctx)
	err = errors.Join(r.Live(), err, srvs.shutdown(ctx))
	r.log.Info("stopped to be replaced", "exit_code", ExitReplace)
	return err
}

// exitOnReplace ends a Lambda function process once it must be replaced:
// the runtime loop never returns, so the process exits itself with
// ExitReplace after the invocation in flight, if any, has finished, and
// Lambda starts a new execution environment for the next one.
func (r *Runtime) exitOnReplace() {
	<-r.replacing
	ctx, cancel := context.WithTimeout(context.Background(), r.limits.ShutdownTimeout.D())
	_ = r.awaitIdle(ctx)
	cancel()
	time.Sleep(lambdaPostGrace)
	r.log.Info("stopped to be replaced", "exit_code", ExitReplace)
	os.Exit(ExitReplace)
}
