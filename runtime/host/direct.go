package host

import (
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
	// function is ready (nil while they accept), ln its listener: its own
	// duplicate of the descriptor, so closing it leaves the socket open.
	srv    *http.Server
	ln     net.Listener
	served uint64 // requests the processes reported answered, over the function's life
	closed bool
}

// newDirect takes over ln, which must be a TCP or Unix listener.
func newDirect(f *function, ln net.Listener, allowed *AllowedHosts) (*direct, error) {
	file, err := socketFile(ln)
	if err != nil {
		return nil, fmt.Errorf("host: function %q: %w", f.name, err)
	}
	addr := ln.Addr()
	_ = ln.Close() // the duplicate keeps the socket
	return &direct{f: f, file: file, addr: addr, allowed: allowed}, nil
}

// socketFile is a duplicate of ln's descriptor (close-on-exec), to pass to
// the processes and to accept on while none is ready, that stays
// non-blocking when it is passed.
//
// Not ln.File(): os/exec takes each file's Fd(), and the Fd of a file
// from net's File() puts the descriptor into blocking mode, which the
// socket's every duplicate shares (a flag of the open file, not of the
// descriptor). A host or process already waiting to accept would then
// sit in accept(2) until the next connection, which no Close interrupts:
// the host stopped accepting only by taking one more connection from the
// backlog after a process was ready, and a quiesced process likewise. A
// file from os.NewFile keeps the mode it was given.
func socketFile(ln net.Listener) (*os.File, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("its listener (%T) has no descriptor to pass to its processes: give it a TCP or Unix listener", ln)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd int
	var dupErr error
	if err := raw.Control(func(s uintptr) {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		if fd, dupErr = syscall.Dup(int(s)); dupErr == nil {
			syscall.CloseOnExec(fd)
		}
	}); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, os.NewSyscallError("dup", dupErr)
	}
	return os.NewFile(uintptr(fd), "socket "+ln.Addr().String()), nil
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
	d.ln = ln
	// Serve returns when pauseLocked closes ln; the connections it
	// accepted go on without it.
	go func(srv *http.Server) { _ = srv.Serve(ln) }(d.srv)
}

// pauseLocked stops the host's server accepting: new connections wait in
// the backlog for a process. Every connection the host already accepted
// gets an answer to each request it brings, with Connection: close, and
// its idle connections close, so that their callers reconnect and reach a
// process. The server needs no stopping of its own: it has no listener
// left, and its last connection ends with the request it carries (or its
// header timeout).
//
// Not http.Server.Shutdown: net/http closes, without an answer, a
// connection whose request it reads after Shutdown began (conn.serve
// checks shuttingDown right after readRequest). With the socket in
// blocking mode (see socketFile) that lost about one request in 150 right
// after a cold start, and one page in four whose CSS and JS came on new
// connections then: Shutdown's Close of the listener did not interrupt
// the accept(2) its server sat in, so the stopped server took the next
// connection from the backlog and closed it unanswered. A connection
// accepted a moment before a process became ready, its request still on
// its way, would lose it the same way.
func (d *direct) pauseLocked() {
	if d.srv == nil {
		return
	}
	// Closing the listener interrupts its Accept (the descriptor is
	// non-blocking: see socketFile); off the function's lock all the same,
	// since a connection it accepts meanwhile is served like the others.
	go d.ln.Close()
	d.srv.SetKeepAlivesEnabled(false)
	d.srv, d.ln = nil, nil
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
