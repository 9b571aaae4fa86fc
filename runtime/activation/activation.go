// Package activation is the contract between `cortex serve` (runtime/host)
// and a function process that accepts its callers' connections itself:
// socket activation, as systemd does it, with a control channel beside it.
//
// The host owns one listening socket per function that has a port of its
// own. It passes the socket to every process it starts as an inherited
// descriptor, named by $CORTEX_LISTEN_FD, and each process accepts on it
// once its predictor is ready: a warm request crosses the network stack
// once, from the caller to the process, with no proxy between them.
// While the function has no ready process the host accepts on the socket
// itself and serves those connections through its front, which starts a
// process and holds the requests meanwhile (a connection that arrives in
// between waits in the kernel's backlog: none is lost).
//
// Beside it the process gets a connected Unix socket, named by
// $CORTEX_CONTROL_FD, over which it reports its load (Report) whenever it
// changes, at most every $CORTEX_REPORT_INTERVAL: the host's autoscaler
// counts those requests as it counts the ones it forwards, for scale-up,
// scale-down to zero and draining. The host sends Quiesce before it
// drains a process that accepts for itself: the process stops accepting
// and closes its idle connections, so callers move to the other
// processes or to the host, then it gets SIGTERM as any process does.
// When the control channel closes (the host is gone) the process drains
// and exits rather than serve on unsupervised.
//
// $CORTEX_ALLOWED_HOSTS (patterns as ParseAllowedHosts takes them, comma
// separated) is the Host check the shared socket applies, the front's own
// (see AllowedHosts), since a caller reaches the process there without
// the front.
//
// The variables are cortex's own rather than systemd's LISTEN_FDS and
// LISTEN_PID: os/exec cannot set LISTEN_PID to the child's PID before the
// child runs, and a process started by systemd should not mistake its
// sockets for these.
//
// This package is standard library only: every function binary links it.
package activation

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// The environment of a process started with a shared socket.
const (
	EnvListenFD       = "CORTEX_LISTEN_FD"
	EnvControlFD      = "CORTEX_CONTROL_FD"
	EnvAllowedHosts   = "CORTEX_ALLOWED_HOSTS"
	EnvReportInterval = "CORTEX_REPORT_INTERVAL"
)

// DefaultReportInterval is how often, at most, a process reports its load.
// The host's autoscaler ticks no faster than every 20 ms; a report every
// 50 ms while the load changes costs a busy process about nothing, and an
// idle one sends none.
const DefaultReportInterval = 50 * time.Millisecond

// Report is a process's load, as it tells the host.
type Report struct {
	// InFlight is the requests the process is serving now, on either of
	// its sockets; probes and metrics scrapes are not counted.
	InFlight int
	// Peak is the most requests in flight at once since the previous
	// report: a burst between two reports still counts.
	Peak int
	// Served is the requests answered on the shared socket since the
	// process started (the host counts the ones it forwards).
	Served uint64
}

// Quiesce is the host's message that a process must stop accepting on
// the shared socket and close its idle connections.
const Quiesce = "quiesce"

// Append appends r's line on the control channel to b.
func (r Report) Append(b []byte) []byte {
	b = append(b, "report "...)
	b = strconv.AppendInt(b, int64(r.InFlight), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(r.Peak), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, r.Served, 10)
	return append(b, '\n')
}

// ParseReport reads a report line (without its newline).
func ParseReport(line string) (Report, error) {
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "report" {
		return Report{}, fmt.Errorf("activation: not a report: %q", line)
	}
	in, err1 := strconv.Atoi(f[1])
	peak, err2 := strconv.Atoi(f[2])
	served, err3 := strconv.ParseUint(f[3], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil || in < 0 || peak < 0 {
		return Report{}, fmt.Errorf("activation: bad report %q", line)
	}
	return Report{InFlight: in, Peak: peak, Served: served}, nil
}

// Lines returns a scanner of the control channel's lines. A line is
// short; one longer than 1 KiB ends the scan with an error.
func Lines(c net.Conn) *bufio.Scanner {
	s := bufio.NewScanner(c)
	s.Buffer(make([]byte, 0, 128), 1024)
	return s
}

// Inherited is what the host passed a process: its shared socket, the
// control channel, the Host check and the report interval.
type Inherited struct {
	Listener       net.Listener
	Control        net.Conn
	AllowedHosts   *AllowedHosts
	ReportInterval time.Duration
}

// Inherit returns what the host passed, or nil when the process was not
// started with a shared socket. It unsets the variables, so that a
// program the function starts does not take the descriptors for its own.
func Inherit() (*Inherited, error) {
	lfd, cfd := os.Getenv(EnvListenFD), os.Getenv(EnvControlFD)
	if lfd == "" && cfd == "" {
		return nil, nil
	}
	for _, name := range []string{EnvListenFD, EnvControlFD, EnvAllowedHosts, EnvReportInterval} {
		defer os.Unsetenv(name)
	}
	if lfd == "" || cfd == "" {
		return nil, fmt.Errorf("activation: $%s and $%s go together; got %q and %q", EnvListenFD, EnvControlFD, lfd, cfd)
	}
	// The variables first: nothing to close when one is wrong.
	var patterns []string
	if v := os.Getenv(EnvAllowedHosts); v != "" {
		patterns = strings.Split(v, ",")
	}
	allowed, err := ParseAllowedHosts(patterns...)
	if err != nil {
		return nil, fmt.Errorf("activation: $%s: %w", EnvAllowedHosts, err)
	}
	interval := DefaultReportInterval
	if v := os.Getenv(EnvReportInterval); v != "" {
		if interval, err = time.ParseDuration(v); err != nil || interval <= 0 {
			return nil, fmt.Errorf("activation: $%s=%q: want a positive duration", EnvReportInterval, v)
		}
	}
	ln, err := fileListener(lfd)
	if err != nil {
		return nil, err
	}
	ctl, err := fileConn(cfd)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Inherited{Listener: ln, Control: ctl, AllowedHosts: allowed, ReportInterval: interval}, nil
}

func inheritedFile(name, v string) (*os.File, error) {
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("activation: $%s=%q: want a descriptor number of 3 or more", name, v)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// fileListener and fileConn take over the inherited descriptor: net's
// FileListener and FileConn duplicate it, so the original is closed.
func fileListener(v string) (net.Listener, error) {
	f, err := inheritedFile(EnvListenFD, v)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("activation: $%s: %w", EnvListenFD, err)
	}
	return ln, nil
}

func fileConn(v string) (net.Conn, error) {
	f, err := inheritedFile(EnvControlFD, v)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("activation: $%s: %w", EnvControlFD, err)
	}
	return c, nil
}
