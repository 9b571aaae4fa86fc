package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// process is one running copy of a function. state, inflight, idle and
// idleSince are guarded by f.mu; the rest is set before the process is
// shared, or guarded as noted.
type process struct {
	f       *function
	spec    *Function // the revision it runs
	rev     int
	cmd     *exec.Cmd
	pid     int
	addr    string // 127.0.0.1:port
	started time.Time
	stdout  *prefixWriter
	stderr  *prefixWriter

	waited  chan struct{} // closed when the process has been reaped
	waitErr error         // Wait's result, readable once waited is closed
	exited  chan struct{} // closed once the process is out of the routing table
	reaped  atomic.Bool   // its group has been cleaned up: never signal it again

	mu         sync.Mutex
	killReason string // why the host killed it, if it did

	state     procState
	inflight  int
	readyAt   time.Time
	idleSince time.Time
	// idle, when not nil, is closed once inflight reaches 0: a process
	// retired by a replacement waits for it before it is told to stop.
	idle chan struct{}
}

// spawn starts a process of revision rev (spec) of f on a free loopback
// port, in its own process group, with its output prefixed by the
// function's name.
func spawn(f *function, spec *Function, rev int) (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(spec.Command[0], spec.Command[1:]...)
	cmd.Dir = spec.Dir
	cmd.Env = append(os.Environ(), spec.Env...)
	// Last wins: the port the host picked, on loopback only.
	cmd.Env = append(cmd.Env, "PORT="+strconv.Itoa(port), "CORTEX_HOST=127.0.0.1")
	cmd.SysProcAttr = sysProcAttr()
	// A grandchild that keeps the output pipes open must not keep Wait
	// (and so the host's bookkeeping) waiting.
	cmd.WaitDelay = time.Second
	p := &process{
		f:      f,
		spec:   spec,
		rev:    rev,
		cmd:    cmd,
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		stdout: newPrefixWriter(f.h.out, f.name, 0),
		stderr: newPrefixWriter(f.h.out, f.name, stderrTailLines),
		waited: make(chan struct{}),
		exited: make(chan struct{}),
		state:  stateStarting,
	}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.pid = cmd.Process.Pid
	p.started = time.Now()
	return p, nil
}

func freePort() (int, error) {
	// The port is free now; another program could take it before the
	// function listens, in which case the function exits and the start
	// counts as failed, like any other.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

var errExited = errors.New("process exited")

// supervise follows p from spawn to exit: readiness, liveness, reaping,
// and the cleanup of its process group.
func (f *function) supervise(p *process) {
	h := f.h
	h.emit(Event{Function: f.name, Type: EventStart, PID: p.pid})
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.waited)
	}()
	took, err := p.awaitReady(p.spec.StartTimeout)
	switch {
	case err == nil:
		if f.onReady(p, took) {
			h.emit(Event{Function: f.name, Type: EventReady, PID: p.pid, Duration: took})
			p.watchLiveness(h.opts.probeInterval)
		}
	case !errors.Is(err, errExited):
		p.kill(err.Error())
	}
	<-p.waited
	p.stdout.flush()
	p.stderr.flush()
	// Whatever the process left in its group goes with it.
	p.signal(sigKill)
	p.reaped.Store(true)
	ev := f.onExit(p)
	close(p.exited)
	h.emit(ev)
}

// awaitReady polls /readyz with a short backoff until it answers 200, the
// process exits, or timeout passes. It returns the time since spawn.
func (p *process) awaitReady(timeout time.Duration) (time.Duration, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	delay := 2 * time.Millisecond
	for {
		if p.get("/readyz", time.Second) {
			return time.Since(p.started), nil
		}
		select {
		case <-p.waited:
			return 0, errExited
		case <-deadline.C:
			return 0, fmt.Errorf("not ready within %s (start timeout)", timeout)
		case <-time.After(delay):
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
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
		case <-p.waited:
			return
		case <-t.C:
		}
		p.f.mu.Lock()
		draining := p.state == stateDraining
		p.f.mu.Unlock()
		if draining {
			continue
		}
		answered, ok := p.probe("/healthz", timeout)
		if ok {
			misses = 0
			continue
		}
		if answered {
			p.f.mu.Lock()
			if p.state != stateDraining {
				p.f.h.opts.logger.Warn("process reports itself unhealthy: replacing it", "function", p.f.name, "pid", p.pid)
				p.f.retireLocked(p)
				p.f.gaugesLocked()
			}
			p.f.mu.Unlock()
			continue
		}
		if misses++; misses == probeFailures {
			p.kill(fmt.Sprintf("stopped answering health checks (%d missed)", probeFailures))
		}
	}
}

// get reports whether GET path answers 200 within timeout.
func (p *process) get(path string, timeout time.Duration) bool {
	_, ok := p.probe(path, timeout)
	return ok
}

// probe GETs path: answered reports that the process answered within
// timeout, ok that it answered 200.
func (p *process) probe(path string, timeout time.Duration) (answered, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+path, nil)
	if err != nil {
		return false, false
	}
	resp, err := p.f.h.probe.Do(req)
	if err != nil {
		return false, false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return true, resp.StatusCode == http.StatusOK
}

// drain stops a process that takes no more requests: SIGTERM, so it
// finishes what it has and exits, then SIGKILL after timeout.
func (p *process) drain(timeout time.Duration) {
	p.f.h.closeIdle()
	p.signal(sigTerm)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.waited:
	case <-t.C:
		p.kill(fmt.Sprintf("did not exit within %s of SIGTERM", timeout))
	}
}

// kill kills p's process group and records why.
func (p *process) kill(reason string) {
	p.mu.Lock()
	if p.killReason == "" {
		p.killReason = reason
	}
	p.mu.Unlock()
	p.signal(sigKill)
}

// signal sends sig to p's whole process group, unless p is gone.
func (p *process) signal(sig signal) {
	if p.pid <= 0 || p.reaped.Load() {
		return
	}
	_ = signalGroup(p.pid, sig)
}

// exitReason says how p ended, with the last lines of its stderr for a
// start that failed; "" while it runs.
func (p *process) exitReason() string {
	select {
	case <-p.waited:
	default:
		return ""
	}
	var b strings.Builder
	p.mu.Lock()
	killed := p.killReason
	p.mu.Unlock()
	if killed != "" {
		fmt.Fprintf(&b, "was killed: %s", killed)
	} else if ps := p.cmd.ProcessState; ps != nil {
		fmt.Fprintf(&b, "exited (%s)", ps)
	} else {
		fmt.Fprintf(&b, "exited (%v)", p.waitErr)
	}
	return b.String()
}

// exitReplace is the exit status of a function process that ended itself
// to be replaced: a prediction ran on past its deadline, which Go cannot
// stop, so only a new process gets back the core and the slot it holds.
// It must equal runtime.ExitReplace (EX_TEMPFAIL); the host does not
// import the runtime.
const exitReplace = 75

// exitedToBeReplaced reports whether p exited, of itself, with
// exitReplace.
func (p *process) exitedToBeReplaced() bool {
	select {
	case <-p.waited:
	default:
		return false
	}
	p.mu.Lock()
	killed := p.killReason != ""
	p.mu.Unlock()
	return !killed && p.cmd.ProcessState != nil && p.cmd.ProcessState.ExitCode() == exitReplace
}

func (p *process) exitErr() error {
	select {
	case <-p.waited:
		if p.waitErr != nil {
			return p.waitErr
		}
		if r := p.exitReason(); strings.HasPrefix(r, "was killed") {
			return errors.New(r)
		}
		return nil
	default:
		return nil
	}
}

// startFailure describes a start that ended before ready: how, and the
// process's last words.
func (p *process) startFailure() string {
	msg := fmt.Sprintf("process %d %s before it was ready", p.pid, p.exitReason())
	if tail := p.stderr.tailText(); tail != "" {
		msg += "; last lines of its stderr:\n" + tail
	}
	return msg
}

const (
	stderrTailLines = 10
	maxLine         = 64 << 10 // a longer line is written in pieces
	maxTailLine     = 512
)

// lineSink serialises whole lines from every process onto one writer.
type lineSink struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *lineSink) writeLine(prefix, line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf := make([]byte, 0, len(prefix)+len(line)+1)
	buf = append(append(append(buf, prefix...), line...), '\n')
	_, _ = s.w.Write(buf)
}

// prefixWriter writes a process's output line by line with "[name] " in
// front, keeping the last few lines when asked (for stderr).
type prefixWriter struct {
	sink   *lineSink
	prefix []byte

	mu   sync.Mutex
	buf  []byte
	tail []string
	keep int
}

func newPrefixWriter(sink *lineSink, name string, keep int) *prefixWriter {
	return &prefixWriter{sink: sink, prefix: []byte("[" + name + "] "), keep: keep}
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) >= maxLine {
				w.lineLocked(w.buf)
				w.buf = w.buf[:0]
			}
			break
		}
		w.lineLocked(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) == 0 {
		w.buf = nil // let a large buffer go
	}
	return len(b), nil
}

func (w *prefixWriter) lineLocked(line []byte) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	w.sink.writeLine(w.prefix, line)
	if w.keep > 0 {
		s := string(line)
		if len(s) > maxTailLine {
			s = s[:maxTailLine] + "..."
		}
		if len(w.tail) == w.keep {
			w.tail = append(w.tail[:0], w.tail[1:]...)
		}
		w.tail = append(w.tail, s)
	}
}

// flush writes a last line that had no newline.
func (w *prefixWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.lineLocked(w.buf)
		w.buf = nil
	}
}

func (w *prefixWriter) tailText() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.tail, "\n")
}
