package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cortexfn/cortex/runtime/activation"
)

// direct is a function's own socket (Function.Listener): the warm path
// with no proxy hop. Its processes accept on it themselves once ready
// (see package activation); while the function has no ready process the
// host accepts on it and serves what arrives as it serves the front's
// /{function}/ route, which starts a process and holds the requests.
//
// Why not the front's proxy for everything: on the project's 2-core
// machine a warm request through the proxy crosses net/http twice more
// than one that goes straight to the process, and the host kept a third
// of the throughput a process alone has (BENCHMARKS.md, issue 17). Why
// the host accepts at zero rather than only watch the socket: a cold
// start then keeps every behaviour of the front's route (held requests
// bounded by MaxQueue and StartTimeout, 503 with the reason in backoff,
// a build error's 503) without a second implementation of them.
type direct struct {
	f       *function
	file    *os.File // the socket, passed to every process; closed at close
	addr    net.Addr // what it listens on
	allowed *AllowedHosts
	// srv is the host's server on the socket while no process of the
	// function is ready (nil while they accept). It runs on its own
	// duplicate of the descriptor, so stopping it leaves the socket open.
	srv    *http.Server
	served uint64 // requests the processes reported answered, over the function's life
	closed bool
}

// newDirect takes over ln, which must be a TCP or Unix listener.
func newDirect(f *function, ln net.Listener, allowed *AllowedHosts) (*direct, error) {
	fl, ok := ln.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("host: function %q: its listener (%T) has no descriptor to pass to its processes", f.name, ln)
	}
	file, err := fl.File()
	if err != nil {
		return nil, fmt.Errorf("host: function %q: %w", f.name, err)
	}
	addr := ln.Addr()
	_ = ln.Close() // the duplicate keeps the socket
	return &direct{f: f, file: file, addr: addr, allowed: allowed}, nil
}

// syncLocked makes the host accept on the socket exactly while no process
// of the function is ready to, and quiesces every process that accepts
// but is draining. The function calls it at every change of its
// processes' states (see gaugesLocked).
func (d *direct) syncLocked() {
	f := d.f
	for _, p := range f.procs {
		if p.ctl != nil && p.state == stateDraining && !p.quiesced {
			p.quiesced = true
			go p.quiesce()
		}
	}
	if f.readyLocked() > 0 || d.closed {
		d.pauseLocked()
	} else {
		d.resumeLocked()
	}
}

// resumeLocked starts the host's server on the socket.
func (d *direct) resumeLocked() {
	if d.srv != nil {
		return
	}
	ln, err := net.FileListener(d.file)
	if err != nil {
		// Only a descriptor table that is full gets here; the processes
		// still accept once one is ready, and the next change retries.
		d.f.h.opts.logger.Error("cannot accept on the function's socket", "function", d.f.name, "err", err)
		return
	}
	h := d.f.h
	d.srv = &http.Server{
		Handler: d.allowed.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.serveFunction(w, r, d.f, r.URL.Path, r.URL.RawPath)
		})),
		// The front's bound on headers; a request's own time is bounded by
		// serveFunction, as on the front.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 16,
		ErrorLog:          h.proxy.ErrorLog,
	}
	go func(srv *http.Server) { _ = srv.Serve(ln) }(d.srv)
}

// pauseLocked stops the host's server accepting: it finishes the requests
// it has, answering them with Connection: close, and closes its idle
// connections, so that their callers reconnect and reach a process.
func (d *direct) pauseLocked() {
	if d.srv == nil {
		return
	}
	srv := d.srv
	d.srv = nil
	go func() { _ = srv.Shutdown(context.Background()) }()
}

// closeLocked stops accepting for good; the socket closes with the last
// process that holds it.
func (d *direct) closeLocked() {
	d.closed = true
	d.pauseLocked()
	_ = d.file.Close()
}

// spawnConfig is what a process of the function needs to accept on the
// socket: the descriptors it inherits, its variables, and the host's end
// of its control channel.
func (d *direct) spawnConfig(reportInterval time.Duration) (files []*os.File, env []string, ctl net.Conn, closeChild func(), err error) {
	hostEnd, childEnd, err := controlPair()
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("control channel: %w", err)
	}
	env = []string{
		activation.EnvListenFD + "=3",
		activation.EnvControlFD + "=4",
		activation.EnvAllowedHosts + "=" + strings.Join(d.allowed.Patterns(), ","),
	}
	if reportInterval > 0 {
		env = append(env, activation.EnvReportInterval+"="+reportInterval.String())
	}
	return []*os.File{d.file, childEnd}, env, hostEnd, func() { _ = childEnd.Close() }, nil
}

// controlPair is a connected pair of Unix stream sockets, both
// close-on-exec (os/exec clears the flag on the descriptors it passes).
func controlPair() (net.Conn, *os.File, error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	hf := os.NewFile(uintptr(fds[0]), "control")
	defer hf.Close()
	c, err := net.FileConn(hf)
	if err != nil {
		_ = syscall.Close(fds[1])
		return nil, nil, err
	}
	return c, os.NewFile(uintptr(fds[1]), "control"), nil
}

// readReports follows p's reports until its control channel closes (it
// exited).
func (f *function) readReports(p *process) {
	lines := activation.Lines(p.ctl)
	for lines.Scan() {
		rep, err := activation.ParseReport(lines.Text())
		if err != nil {
			f.h.opts.logger.Warn("ignoring a line on a process's control channel", "function", f.name, "pid", p.PID(), "err", err)
			continue
		}
		f.onReport(p, rep)
	}
	if err := lines.Err(); err != nil && !errors.Is(err, net.ErrClosed) {
		f.h.opts.logger.Warn("control channel", "function", f.name, "pid", p.PID(), "err", err)
	}
}

// onReport records p's load: it counts in the function's demand like the
// requests the host forwards (so it scales up, and keeps the process from
// scaling down while it serves), and a retired process that has nothing
// left in flight may stop.
func (f *function) onReport(p *process, rep activation.Report) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rep.Served > p.rep.Served {
		f.direct.served += rep.Served - p.rep.Served
		f.m.direct.Add(float64(rep.Served - p.rep.Served))
	}
	if rep.InFlight > 0 || rep.Served != p.rep.Served {
		p.idleSince = time.Now()
	}
	before := max(p.inflight, p.rep.InFlight)
	p.rep = rep
	// A burst between two reports still counts, as for the front's
	// requests between two ticks.
	f.peak = max(f.peak, f.demandLocked()-max(p.inflight, rep.InFlight)+max(p.inflight, rep.Peak))
	if p.idle != nil && p.inflight == 0 && rep.InFlight == 0 {
		close(p.idle) // a retired process's last request is done: see retireLocked
		p.idle = nil
	}
	if max(p.inflight, rep.InFlight) > before {
		f.scaleUpLocked()
	}
	f.gaugesLocked()
}

// quiesce tells p to stop accepting on the socket. A process that does
// not read its control channel is drained all the same: the write is
// bounded.
func (p *process) quiesce() {
	_ = p.ctl.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = p.ctl.Write([]byte(activation.Quiesce + "\n"))
}

// listenAddr is the address of f's socket, for the status.
func (d *direct) listenAddr() string {
	if d == nil {
		return ""
	}
	if tcp, ok := d.addr.(*net.TCPAddr); ok {
		return net.JoinHostPort(tcp.IP.String(), strconv.Itoa(tcp.Port))
	}
	return d.addr.String()
}
