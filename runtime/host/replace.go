package host

import (
	"errors"
	"fmt"
	"time"
)

// ErrUnknownFunction is returned (wrapped) by Replace and BuildFailed for a
// name that New was not given: the host's routes are fixed at New.
var ErrUnknownFunction = errors.New("host: no such function")

// Replace puts fn, a new build of the function named fn.Name (a new
// command, environment, directory or scaling), in place of the one that
// serves, without failing a request: it is how `cortex serve --watch`
// deploys a rebuilt function.
//
// When the function has a ready process, fn's first process starts beside
// the old ones, which keep taking requests meanwhile, so callers neither
// wait for the new cold start nor lose the function if fn cannot start: a
// replacement whose start fails is abandoned and the old revision serves
// on, with the reason in FunctionStatus.BuildError. Once fn's process is
// ready every new request goes to fn's processes; each old process takes no
// more and is told to stop (SIGTERM, then SIGKILL after the drain timeout)
// only when the requests the host gave it are done. Waiting for the host's
// own count rather than sending SIGTERM at once matters: a request the host
// has handed a process but not yet written to it would otherwise meet a
// closed listener and fail with 502. A request that outlives the drain
// timeout is cut off, as at Shutdown.
//
// When the function has no ready process (it is scaled to zero, still
// starting, or failed), there is nothing to keep serving: fn takes effect
// at once, the processes still starting are stopped, and held requests go
// to fn's processes. A function that had failed becomes servable again.
//
// A later Replace supersedes one still starting. fn.Err must be nil: a
// build that failed is reported with BuildFailed, which keeps the old
// revision. Replace returns an error for an unknown name, an invalid fn,
// or after Shutdown.
func (h *Host) Replace(fn Function) error {
	f := h.fns[fn.Name]
	if f == nil {
		return fmt.Errorf("%w: %q (functions: %s)", ErrUnknownFunction, fn.Name, h.names())
	}
	if fn.Err != nil {
		return fmt.Errorf("host: Replace(%s): Err is set (%v); report a failed build with BuildFailed", fn.Name, fn.Err)
	}
	fn = withDefaults(fn)
	if err := errors.Join(validate("Replace", fn)...); err != nil {
		return err
	}
	return f.replace(&fn)
}

// BuildFailed records that the latest build of the function named name
// failed with err. A function that has a build keeps serving it, and its
// FunctionStatus.BuildError shows err until a Replace; one that never had
// a build (Function.Err) answers with err from now on.
func (h *Host) BuildFailed(name string, err error) error {
	f := h.fns[name]
	if f == nil {
		return fmt.Errorf("%w: %q (functions: %s)", ErrUnknownFunction, name, h.names())
	}
	if err == nil {
		return fmt.Errorf("host: BuildFailed(%s): nil error", name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	defer h.changes.notify()
	if f.spec.Err != nil {
		spec := *f.spec
		spec.Err = err
		f.spec = &spec
		return nil
	}
	f.buildErr = err.Error()
	return nil
}

func (f *function) replace(spec *Function) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return shuttingDown()
	}
	f.revs++
	f.buildErr = ""
	if f.next != nil { // superseded before it was ready
		f.retireRevLocked(f.nextRev)
		f.next = nil
	}
	if f.spec.Err == nil && f.readyLocked() > 0 {
		f.next, f.nextRev = spec, f.revs
		f.startLocked()
		f.gaugesLocked()
		return nil
	}
	old := f.rev
	f.spec, f.rev, f.tick = spec, f.revs, tickFor(spec.Scale)
	f.retireRevLocked(old)
	// A new build deserves a first attempt now, whatever the old one's
	// failures were.
	f.failures, f.crashes, f.retryAt, f.lastErr = 0, 0, time.Time{}, ""
	f.scaleUpLocked()
	f.gaugesLocked()
	return nil
}

// promoteLocked makes the replacement, now that one of its processes is
// ready, the revision that serves, and retires every older process.
func (f *function) promoteLocked() {
	old := f.rev
	f.spec, f.rev, f.next = f.next, f.nextRev, nil
	f.tick = tickFor(f.spec.Scale)
	f.crashes = 0
	f.retireRevLocked(old)
	f.scaleUpLocked() // the old processes' share of the demand moves here
	f.h.opts.logger.Info("function replaced", "function", f.name, "revision", f.rev)
}

// abandonLocked gives up the replacement that failed to start: its other
// processes stop, and the revision that serves goes on. stderr goes to the
// log only, as for any failed start.
func (f *function) abandonLocked(reason, stderr string) {
	rev := f.nextRev
	f.next = nil
	f.retireRevLocked(rev)
	f.buildErr = fmt.Sprintf("revision %d did not start, so revision %d serves on: %s (its output is in the log)", rev, f.rev, reason)
	f.h.opts.logger.Error("replacement failed to start", withStderr(stderr, "function", f.name, "revision", rev, "reason", reason)...)
}

// retireRevLocked retires every process of revision rev that is not yet
// draining.
func (f *function) retireRevLocked(rev int) {
	for _, p := range f.procs {
		if p.rev == rev && p.state != stateDraining {
			f.retireLocked(p)
		}
	}
}

// retireLocked takes p out of the routing table and has it stopped once
// the requests the host gave it are done (see Replace for why), or after
// the drain timeout at the latest.
func (f *function) retireLocked(p *process) {
	p.state = stateDraining
	idle := make(chan struct{})
	if p.inflight == 0 && p.rep.InFlight == 0 {
		close(idle)
	} else {
		p.idle = idle // release closes it
	}
	go f.retire(p, idle)
}

func (f *function) retire(p *process, idle <-chan struct{}) {
	t := time.NewTimer(f.h.opts.drainTimeout)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	case <-p.Done():
		return // it died meanwhile; supervise reports it
	}
	f.h.emit(Event{Function: f.name, Type: EventDrain, PID: p.PID()})
	p.drain(f.h.opts.drainTimeout)
}

// readyLocked counts the ready processes.
func (f *function) readyLocked() int {
	n := 0
	for _, p := range f.procs {
		if p.state == stateReady {
			n++
		}
	}
	return n
}
