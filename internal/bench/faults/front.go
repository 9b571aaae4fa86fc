package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cortexfn/cortex/internal/bench/load"
	"github.com/cortexfn/cortex/runtime/host"
)

// frontHeaderTimeout is the front server's ReadHeaderTimeout, the one
// cmd/cortex's serve sets: what cuts off a client that trickles its
// headers.
const frontHeaderTimeout = 10 * time.Second

// frontConfig is what the front child needs, passed as JSON in -front.
type frontConfig struct {
	Bin      string `json:"bin"`
	Config   string `json:"config"`
	Dir      string `json:"dir"`
	MaxScale int    `json:"max_scale"`
	Target   int    `json:"target"`
	MaxQueue int    `json:"max_queue"`
}

// frontLine is one line of the front child's stdout: its address first,
// then the host's process events.
type frontLine struct {
	Addr  string    `json:"addr,omitempty"`
	Time  time.Time `json:"time,omitzero"`
	Type  string    `json:"type,omitempty"`
	PID   int       `json:"pid,omitempty"`
	Error string    `json:"error,omitempty"`
}

// serveFront is the front child: the host with the one function, behind
// an http.Server, with the options cmd/cortex's serve gives them (and
// WithEvents, to report what happens to the processes). It serves until
// SIGTERM, then drains as serve does.
func serveFront(arg string) error {
	var c frontConfig
	if err := json.Unmarshal([]byte(arg), &c); err != nil {
		return err
	}
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	emit := func(l frontLine) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(l)
	}
	h, err := host.New([]host.Function{{
		Name:     fnName,
		Command:  []string{c.Bin},
		Env:      []string{"CORTEX_CONFIG=" + c.Config, "CORTEX_HOST=127.0.0.1"},
		Dir:      c.Dir,
		Scale:    host.Autoscaling{MaxScale: c.MaxScale, TargetConcurrency: c.Target},
		MaxQueue: c.MaxQueue,
	}},
		host.WithLogWriter(os.Stderr),
		host.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		host.WithEvents(func(ev host.Event) {
			l := frontLine{Time: ev.Time, Type: string(ev.Type), PID: ev.PID}
			if ev.Err != nil {
				l.Error = ev.Err.Error()
			}
			emit(l)
		}))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = h.Shutdown(context.Background())
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: frontHeaderTimeout}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	emit(frontLine{Addr: ln.Addr().String()})
	select {
	case err := <-serveErr:
		_ = h.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	dctx, cancel := context.WithTimeout(context.Background(), host.DefaultDrainTimeout+5*time.Second)
	defer cancel()
	err = errors.Join(srv.Shutdown(dctx), h.Shutdown(dctx))
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// front is the front child, seen from the bench.
type front struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:port
	events *eventLog
	exited chan struct{}
	err    error // Wait's result, once exited is closed
}

// startFront runs this program again with -front, its stderr (the host's
// log and the processes' output) to logs, and waits for its address.
func startFront(c frontConfig, logs string) (*front, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	arg, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	lf, err := os.Create(logs)
	if err != nil {
		return nil, err
	}
	defer lf.Close() // the child holds its own descriptor
	cmd := exec.Command(self, "-front", string(arg))
	cmd.Stderr = lf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	load.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	f := &front{cmd: cmd, events: &eventLog{done: make(chan struct{})}, exited: make(chan struct{})}
	addr := make(chan string, 1)
	go f.events.read(out, addr)
	go func() { f.err = cmd.Wait(); close(f.exited) }()
	select {
	case a := <-addr:
		f.base = "http://" + a
		return f, nil
	case <-f.exited:
		return nil, fmt.Errorf("the front exited before it listened: %v", f.err)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-f.exited
		return nil, errors.New("the front did not listen within 30s")
	}
}

// stop sends SIGTERM and waits for the front to drain and exit, killing
// it past its drain bound. A clean exit is nil.
func (f *front) stop() error {
	select {
	case <-f.exited:
		return fmt.Errorf("the front had already exited: %v", f.err)
	default:
	}
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.exited:
		<-f.events.done
		return f.err
	case <-time.After(host.DefaultDrainTimeout + 15*time.Second):
		_ = f.cmd.Process.Kill()
		<-f.exited
		return errors.New("the front did not exit in time after SIGTERM; killed")
	}
}

// eventLog collects the host's process events from the front's stdout.
type eventLog struct {
	mu      sync.Mutex
	lines   []frontLine
	started func(pid int)
	ended   func(pid int)
	done    chan struct{}
}

// watch calls started for every process spawned from now on and ended
// for every one that exits, and returns those running now.
func (e *eventLog) watch(started, ended func(pid int)) []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.started, e.ended = started, ended
	var live []int
	gone := e.goneLocked()
	for _, l := range e.lines {
		if host.EventType(l.Type) == host.EventStart && !gone[l.PID] {
			live = append(live, l.PID)
		}
	}
	return live
}

// read takes the front's stdout line by line until it closes; the first
// line, the address, goes to addr.
func (e *eventLog) read(r io.Reader, addr chan<- string) {
	defer close(e.done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var l frontLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			continue
		}
		if l.Addr != "" {
			addr <- l.Addr
			continue
		}
		e.mu.Lock()
		e.lines = append(e.lines, l)
		var fn func(int)
		switch host.EventType(l.Type) {
		case host.EventStart:
			fn = e.started
		case host.EventStartFailed, host.EventCrash, host.EventReplace, host.EventExit:
			fn = e.ended
		}
		e.mu.Unlock()
		if fn != nil && l.PID > 0 {
			fn(l.PID)
		}
	}
}

func (e *eventLog) all() []frontLine {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]frontLine(nil), e.lines...)
}

// gone is the set of processes that have exited.
func (e *eventLog) gone() map[int]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.goneLocked()
}

func (e *eventLog) goneLocked() map[int]bool {
	out := map[int]bool{}
	for _, l := range e.lines {
		switch host.EventType(l.Type) {
		case host.EventStartFailed, host.EventCrash, host.EventReplace, host.EventExit:
			out[l.PID] = true
		}
	}
	return out
}

var runawayRE = regexp.MustCompile(`running away \(pid (\d+)\)`)

// runawayPIDs reads, from the front's log, the processes whose predictor
// ran away (fn logs it as it starts to loop): the runaway episodes.
func runawayPIDs(logs string) map[int]bool {
	out := map[int]bool{}
	b, err := os.ReadFile(logs)
	if err != nil {
		return out
	}
	for _, m := range runawayRE.FindAllSubmatch(b, -1) {
		if pid, err := strconv.Atoi(string(m[1])); err == nil {
			out[pid] = true
		}
	}
	return out
}
