package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"github.com/cortexfn/cortex/runtime/activation"
	"github.com/cortexfn/cortex/runtime/host/supervisor"
	"github.com/cortexfn/cortex/runtime/modelfetch"
)

// process is one running copy of a function: a supervisor.Process (spawn,
// output, probes, signals, exit) and the host's bookkeeping around it.
// state, inflight, idle, readyAt and idleSince are guarded by f.mu; the
// rest is set before the process is shared.
type process struct {
	*supervisor.Process
	f    *function
	spec *Function // the revision it runs
	rev  int

	exited chan struct{} // closed once the process is out of the routing table

	state     procState
	inflight  int
	readyAt   time.Time
	idleSince time.Time
	// idle, when not nil, is closed once inflight reaches 0: a process
	// retired by a replacement waits for it before it is told to stop.
	idle chan struct{}

	// With the function's own socket: ctl is the host's end of the
	// control channel (set before the process is shared), rep the latest
	// load it reported, quiesced whether it was told to stop accepting.
	ctl      net.Conn
	rep      activation.Report
	quiesced bool

	// cold is its cold start phase by phase, from its log (coldstart.go).
	cold *phaseRecord
}

// quiesceGrace is how long a process that accepts on its function's
// socket has, between the quiesce and SIGTERM, for requests already read
// from its connections.
const quiesceGrace = 100 * time.Millisecond

// spawn starts a process of revision rev (spec) of f on a free loopback
// port, in its own process group, with its output prefixed by "[name] ".
func spawn(f *function, spec *Function, rev int) (*process, error) {
	env := spec.Env
	var (
		files []*os.File
		ctl   net.Conn
	)
	if f.direct != nil {
		var (
			extra      []string
			closeChild func()
			err        error
		)
		files, extra, ctl, closeChild, err = f.direct.spawnConfig(f.h.opts.reportInterval)
		if err != nil {
			return nil, err
		}
		// The child's end is the child's alone once it runs (or failed to).
		defer closeChild()
		env = append(slices.Clone(env), extra...)
	}
	if os.Getenv("CORTEX_MODEL_CACHE") == "" {
		// One model cache for every function process: a model named by
		// reference is fetched once for all of them (docs/models.md).
		// First, so that a function's own environment still wins (the
		// last of a name is what the process gets).
		if d, err := modelfetch.DefaultDir(); err == nil {
			env = append([]string{"CORTEX_MODEL_CACHE=" + d}, env...)
		}
	}
	cold := &phaseRecord{}
	sp, err := supervisor.Start(supervisor.Config{
		Name:       f.name,
		Command:    spec.Command,
		Dir:        spec.Dir,
		Env:        env,
		ExtraFiles: files,
		Inherit:    inherited,
		Output:     f.h.out,
		Prefix:     "[" + f.name + "] ",
		Watch:      cold.watch,
		// Probes share the proxy's dialer and keep-alive connections.
		Client: f.h.probe,
	})
	if err != nil {
		if ctl != nil {
			_ = ctl.Close()
		}
		return nil, err
	}
	return &process{
		Process: sp,
		f:       f,
		spec:    spec,
		rev:     rev,
		exited:  make(chan struct{}),
		state:   stateStarting,
		ctl:     ctl,
		cold:    cold,
	}, nil
}

// supervise follows p from spawn to exit: readiness, liveness, and what
// its exit means for the function.
func (f *function) supervise(p *process) {
	h := f.h
	h.emit(Event{Function: f.name, Type: EventStart, PID: p.PID()})
	if p.ctl != nil {
		go f.readReports(p)
	}
	took, err := p.WaitReady(context.Background(), p.spec.StartTimeout)
	var notReady *supervisor.NotReadyError
	switch {
	case err == nil:
		if f.onReady(p, took) {
			h.emit(Event{Function: f.name, Type: EventReady, PID: p.PID(), Duration: took})
			p.watchLiveness(h.opts.probeInterval)
		}
	case errors.As(err, &notReady):
		p.Kill(fmt.Sprintf("not ready within %s (start timeout)", notReady.Timeout))
	}
	// Reaped, with its last output written and its group killed.
	<-p.Done()
	if p.ctl != nil {
		_ = p.ctl.Close()
	}
	ev := f.onExit(p)
	close(p.exited)
	h.emit(ev)
}

// watchLiveness checks /healthz every interval until the process exits,
// and kills it when it misses probeFailures checks in a row: its requests
// then fail with 502 instead of hanging. A process that answers with
// another status is alive but says it cannot serve (the runtime does so
// when a prediction overran its deadline for good, and then drains and
// exits with ExitReplace): it is retired at once, as Replace retires an
// old revision, so it takes no new request and finishes the ones it has,
// and the next request starts a new process.
func (p *process) watchLiveness(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	timeout := max(interval, time.Second)
	misses := 0
	for {
		select {
		case <-p.Done():
			return
		case <-t.C:
		}
		p.f.mu.Lock()
		draining := p.state == stateDraining
		p.f.mu.Unlock()
		if draining {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		answered, ok := p.Probe(ctx, "/healthz")
		cancel()
		if ok {
			misses = 0
			continue
		}
		if answered {
			p.f.mu.Lock()
			if p.state != stateDraining {
				p.f.h.opts.logger.Warn("process reports itself unhealthy: replacing it", "function", p.f.name, "pid", p.PID())
				p.f.retireLocked(p)
				p.f.gaugesLocked()
			}
			p.f.mu.Unlock()
			continue
		}
		if misses++; misses == probeFailures {
			p.Kill(fmt.Sprintf("stopped answering health checks (%d missed)", probeFailures))
		}
	}
}

// drain stops a process that takes no more requests: SIGTERM, so it
// finishes what it has and exits, then SIGKILL after timeout.
func (p *process) drain(timeout time.Duration) {
	p.f.h.closeIdle()
	_ = p.Stop(timeout) // supervise reports how it ended
}

// startFailure describes a start that ended before ready, and returns the
// last lines the process wrote to stderr apart: they go to the log, never
// to a caller or /-/status (a model's path, a stack trace or a key the
// function printed is nobody else's business).
func (p *process) startFailure() (reason, stderr string) {
	return fmt.Sprintf("process %d %s before it was ready", p.PID(), p.ExitReason()), p.StderrTail()
}
