package supervisor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config says what to run. Only Command is required.
type Config struct {
	// Name names the process in errors; default: the command's base name.
	Name string
	// Command is the function binary (already built) and its arguments.
	Command []string
	// Dir is the working directory; empty means the caller's.
	Dir string
	// Env is added to the caller's environment (to the part of it that
	// Inherit keeps). PORT and CORTEX_HOST are set after it, so it cannot
	// override them.
	Env []string
	// Inherit, when not nil, says which variables of the caller's
	// environment, by name, the process gets; nil passes them all.
	Inherit func(name string) bool
	// Host is the address the function listens on ($CORTEX_HOST); empty
	// means 127.0.0.1.
	Host string
	// Port is the port it listens on ($PORT); 0 picks a free one on Host.
	Port int
	// Output receives the process's stdout and stderr, one line at a time,
	// each with Prefix in front; nil discards them (StderrTail still
	// keeps the last lines of stderr).
	Output *Output
	Prefix string
	// Watch, when set, is called with each line of the process's stderr
	// (without its newline), after Output has it, from the goroutine that
	// copies the output: it must return quickly and must not keep line.
	// The host reads the runtime's cold-start log lines this way.
	Watch func(line []byte)
	// Client sends WaitReady's and Probe's requests; nil means a client of
	// this package that never goes through a proxy. A caller with its own
	// connection pool to the process (the host's) passes its client, so
	// probes share that pool's dialer.
	Client *http.Client
	// ExtraFiles are open files the process inherits as descriptors 3,
	// 4, ... (os/exec's ExtraFiles): the host passes a function's shared
	// listening socket and its control channel this way. The caller keeps
	// its own copies and closes them when it wants.
	ExtraFiles []*os.File
}

// ExitReplace is the exit status of a function process that ended itself
// to be replaced: a prediction ran on past its deadline, which Go cannot
// stop, so only a new process gets back the core and the slot it holds.
// It equals runtime.ExitReplace (EX_TEMPFAIL); this package does not
// import the runtime.
const ExitReplace = 75

// ErrExited is WaitReady's error for a process that exited before it was
// ready.
var ErrExited = errors.New("supervisor: process exited")

// NotReadyError is WaitReady's error for a process that did not answer
// 200 on /readyz within the timeout. The process is still running: the
// caller decides whether to stop it.
type NotReadyError struct {
	Timeout time.Duration
	URL     string // the readiness URL it polled
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("not ready within %s (GET %s)", e.Timeout, e.URL)
}

// defaultClient probes processes for callers with no client of their own.
// No proxy: a function process is on this machine.
var defaultClient = &http.Client{Transport: &http.Transport{
	Proxy:               nil,
	MaxIdleConnsPerHost: 2,
	IdleConnTimeout:     30 * time.Second,
	DisableCompression:  true,
}}

// Process is one running function process. Its methods are safe for
// concurrent use.
type Process struct {
	name    string
	cmd     *exec.Cmd
	pid     int
	addr    string // host:port to reach it at
	started time.Time
	client  *http.Client
	stdout  *prefixWriter
	stderr  *prefixWriter

	done    chan struct{} // closed once reaped, output flushed, group killed
	waitErr error         // Wait's result, readable once done is closed
	reaped  atomic.Bool   // never signal its group again: the PID may be reused

	mu         sync.Mutex
	killReason string // why Kill was called, if it was with a reason
}

// Start spawns c.Command and returns at once; WaitReady waits for it to
// serve. A process that Start returned is always reaped: Done is closed
// once it has exited, whatever the caller does.
func Start(c Config) (*Process, error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	if len(c.Command) == 0 || c.Command[0] == "" {
		return nil, errors.New("supervisor: empty command")
	}
	host := cmp.Or(c.Host, "127.0.0.1")
	port := c.Port
	if port == 0 {
		var err error
		if port, err = freePort(host); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(c.Command[0], c.Command[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = append(environ(c.Inherit), c.Env...)
	// Last wins: the port and address chosen here.
	cmd.Env = append(cmd.Env, "PORT="+strconv.Itoa(port), "CORTEX_HOST="+host)
	cmd.SysProcAttr = sysProcAttr()
	cmd.ExtraFiles = c.ExtraFiles
	// A grandchild that keeps the output pipes open must not keep Wait
	// (and so the caller's bookkeeping) waiting.
	cmd.WaitDelay = time.Second
	out := c.Output
	if out == nil {
		out = NewOutput(nil)
	}
	p := &Process{
		name:   cmp.Or(c.Name, filepath.Base(c.Command[0])),
		cmd:    cmd,
		addr:   net.JoinHostPort(dialHost(host), strconv.Itoa(port)),
		client: cmp.Or(c.Client, defaultClient),
		stdout: newPrefixWriter(out, c.Prefix, 0),
		stderr: newPrefixWriter(out, c.Prefix, stderrTailLines),
		done:   make(chan struct{}),
	}
	p.stderr.watch = c.Watch
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.pid = cmd.Process.Pid
	p.started = time.Now()
	go p.wait()
	return p, nil
}

// wait reaps the process, then cleans up after it.
func (p *Process) wait() {
	p.waitErr = p.cmd.Wait()
	p.stdout.flush()
	p.stderr.flush()
	// Whatever the process left in its group goes with it. The process is
	// reaped, but its group ID stays reserved while any member lives, so
	// this one signal cannot reach a process that reused the PID.
	p.signal(sigKill)
	p.reaped.Store(true)
	close(p.done)
}

// environ is the caller's environment, the variables keep rejects left
// out.
func environ(keep func(name string) bool) []string {
	all := os.Environ() // a copy: filtered in place
	if keep == nil {
		return all
	}
	out := all[:0]
	for _, kv := range all {
		if name, _, _ := strings.Cut(kv, "="); keep(name) {
			out = append(out, kv)
		}
	}
	return out
}

func freePort(host string) (int, error) {
	// The port is free now; another program could take it before the
	// function listens, in which case the function exits and the start
	// fails, like any other.
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// dialHost is the host to reach a process at that listens on host.
func dialHost(host string) string {
	switch host {
	case "", "0.0.0.0", "::":
		return "localhost"
	}
	return host
}

// PID is the process's ID, which is also its process group's.
func (p *Process) PID() int { return p.pid }

// Addr is the host:port the process is reached at, such as 127.0.0.1:41234.
func (p *Process) Addr() string { return p.addr }

// URL is the process's base URL, such as http://127.0.0.1:41234.
func (p *Process) URL() string { return "http://" + p.addr }

// Started is when the process was spawned.
func (p *Process) Started() time.Time { return p.started }

// Done is closed once the process has exited and been reaped, its last
// output written and its process group killed.
func (p *Process) Done() <-chan struct{} { return p.done }

// exited reports whether Done is closed.
func (p *Process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the process ended: nil while it runs or after exit status 0,
// else Wait's error (an *exec.ExitError for a non-zero status or a
// signal), or, for a process that was killed yet reported no error, why
// it was killed.
func (p *Process) Err() error {
	if !p.exited() {
		return nil
	}
	if p.waitErr != nil {
		return p.waitErr
	}
	if killed := p.killedFor(); killed != "" {
		return errors.New("was killed: " + killed)
	}
	return nil
}

// ExitReason says how the process ended, for a person: "was killed:
// REASON" when Kill gave a reason, else "exited (exit status 3)" or
// "exited (signal: killed)"; "" while it runs.
func (p *Process) ExitReason() string {
	if !p.exited() {
		return ""
	}
	if killed := p.killedFor(); killed != "" {
		return "was killed: " + killed
	}
	if ps := p.cmd.ProcessState; ps != nil {
		return fmt.Sprintf("exited (%s)", ps)
	}
	return fmt.Sprintf("exited (%v)", p.waitErr)
}

// ExitedToBeReplaced reports whether the process exited, of itself, with
// ExitReplace: it asked for a successor and is not at fault.
func (p *Process) ExitedToBeReplaced() bool {
	if !p.exited() || p.killedFor() != "" {
		return false
	}
	ps := p.cmd.ProcessState
	return ps != nil && ps.ExitCode() == ExitReplace
}

// StderrTail is the last lines the process wrote to stderr (at most 10,
// each cut at 512 bytes), for an error message about a start that failed.
func (p *Process) StderrTail() string { return p.stderr.tailText() }

func (p *Process) killedFor() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killReason
}

// WaitReady polls /readyz with a short backoff (2ms doubling to 50ms, each
// probe bounded by a second) until it answers 200, and returns the time
// since the spawn: the cold start. It fails with ErrExited when the
// process exits first, with a *NotReadyError after timeout (0 means no
// bound but ctx), and with ctx's error when ctx ends first (a Ctrl-C). It
// does not stop the process.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	delay := 2 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, ok := p.Probe(pctx, "/readyz")
		cancel()
		if ok {
			return time.Since(p.started), nil
		}
		select {
		case <-p.done:
			return 0, ErrExited
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-deadline:
			return 0, &NotReadyError{Timeout: timeout, URL: p.URL() + "/readyz"}
		case <-time.After(delay):
		}
		// Most functions are ready within their first second (iris in
		// about 40 ms): probing every 2 ms until then keeps a cold start
		// from waiting up to 50 ms more for its next probe (a probe costs
		// the process about 50 us); a slow model is probed less often.
		if time.Since(p.started) > time.Second {
			delay = min(delay*2, 50*time.Millisecond)
		}
	}
}

// Probe GETs path once, bounded by ctx: answered reports that the process
// answered at all, ok that it answered 200. A process that answers with
// another status is alive but says it cannot serve.
func (p *Process) Probe(ctx context.Context, path string) (answered, ok bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+path, nil)
	if err != nil {
		return false, false
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false, false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return true, resp.StatusCode == http.StatusOK
}

// Terminate sends SIGTERM to the process group: the function runtime then
// stops taking requests, finishes the ones it has and exits.
func (p *Process) Terminate() { p.signal(sigTerm) }

// Kill sends SIGKILL to the process group. reason, when not empty, is
// what ExitReason and Err report (the first reason given wins); a process
// that is already reaped keeps the reason it ended for.
func (p *Process) Kill(reason string) {
	if reason != "" && !p.reaped.Load() {
		p.mu.Lock()
		if p.killReason == "" {
			p.killReason = reason
		}
		p.mu.Unlock()
	}
	p.signal(sigKill)
}

// Stop stops the process: SIGTERM to its group, then, when it has not
// exited within grace, SIGKILL. It returns once the process is reaped:
// with Err when it exited of itself (nil for a clean drain), or an error
// saying it had to be killed.
func (p *Process) Stop(grace time.Duration) error {
	if p.exited() {
		return p.Err()
	}
	p.Terminate()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return p.Err()
	case <-t.C:
	}
	p.Kill(fmt.Sprintf("did not exit within %s of SIGTERM", grace))
	<-p.done
	return fmt.Errorf("%s did not exit within %s of SIGTERM; killed it", p.name, grace)
}

// signal sends sig to the whole process group, unless the process has
// been reaped.
func (p *Process) signal(sig signal) {
	if p.pid <= 0 || p.reaped.Load() {
		return
	}
	_ = signalGroup(p.pid, sig)
}
