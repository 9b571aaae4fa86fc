package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cortexfn/cortex/runtime/activation"
	"github.com/cortexfn/cortex/runtime/host"
	"github.com/cortexfn/cortex/runtime/host/supervisor"
)

// directFunction is function with a socket of its own on a free loopback
// port; it returns the socket's base URL.
func directFunction(t *testing.T, name string, scale host.Autoscaling, environ ...string) (host.Function, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fn := function(name, scale, environ...)
	fn.Listener = ln
	return fn, "http://" + ln.Addr().String()
}

// fresh is a client that opens a connection per request, so each request
// is accepted anew: by the host while no process is ready, by a process
// once one is.
func fresh() *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// fastReports makes processes report their load every 10ms, so tests wait
// less for the autoscaler to see it.
var fastReports = host.WithReportInterval(10 * time.Millisecond)

// TestDirectSocketServesWithoutTheProxy: the first request on a
// function's own socket starts a process through the host; once it is
// ready, requests on new connections are answered by the process itself
// (the host counts them only from its reports), with the function's own
// paths; the front's route serves it too.
func TestDirectSocketServesWithoutTheProxy(t *testing.T) {
	fn, base := directFunction(t, "echo", host.Autoscaling{})
	e := start(t, []host.Function{fn}, fastReports)
	e.c = fresh()
	first := e.do(t, base+"/predict", "", "cold")
	if first.status != http.StatusOK || first.echo != "cold" {
		t.Fatalf("first request on the socket: %d %s, want 200 echoing cold", first.status, first.body)
	}
	const n = 20
	for i := range n {
		a := e.do(t, base+"/predict", "", fmt.Sprint(i))
		if a.status != http.StatusOK || a.echo != fmt.Sprint(i) || a.pid != first.pid {
			t.Errorf("warm request %d: %d %s from pid %d, want 200 echoing %d from pid %d", i, a.status, a.body, a.pid, i, first.pid)
		}
	}
	eventually(t, 5*time.Second, "the process did not report its direct requests", func() bool {
		return e.status(t, "echo").DirectRequests == n
	})
	s := e.status(t, "echo")
	if s.Listen != strings.TrimPrefix(base, "http://") || s.ColdStarts != 1 {
		t.Errorf("status: listen %q, %d cold starts; want %s and 1", s.Listen, s.ColdStarts, base)
	}
	if a := e.post(t, "/echo/predict", "front"); a.status != http.StatusOK || a.echo != "front" {
		t.Errorf("through the front: %d %s", a.status, a.body)
	}
	if got := e.status(t, "echo").DirectRequests; got != n {
		t.Errorf("direct requests after one through the front: %d, want %d", got, n)
	}
}

// TestDirectSocketColdStartBurst: 50 first requests on the socket at once
// are all answered, correctly, by one process started for them.
func TestDirectSocketColdStartBurst(t *testing.T) {
	fn, base := directFunction(t, "echo", host.Autoscaling{}, "FN_INIT_DELAY=300ms")
	e := start(t, []host.Function{fn}, fastReports)
	e.c = fresh()
	const n = 50
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			answers[i] = e.do(t, fmt.Sprintf("%s/predict?i=%d", base, i), "", fmt.Sprintf("request-%d", i))
		})
	}
	wg.Wait()
	for i, a := range answers {
		if a.status != http.StatusOK || a.echo != fmt.Sprintf("request-%d", i) {
			t.Errorf("request %d: %d %s, want 200 echoing request-%d", i, a.status, a.body, i)
		}
	}
	if got := e.rec.count(host.EventStart); got != 1 {
		t.Errorf("processes started: %d, want 1", got)
	}
}

// TestDirectSocketScalesToZeroAndBack: a process that serves on the socket
// is idle by its reports, drained, and the next request on the socket
// starts a new one.
func TestDirectSocketScalesToZeroAndBack(t *testing.T) {
	// A delay of a second, three times the host tests' usual: the process's
	// reports are what keeps it up here, and a machine loaded by a whole
	// test run can hold a report back for a few hundred milliseconds.
	fn, base := directFunction(t, "echo", host.Autoscaling{ScaleDownDelay: time.Second, StableWindow: time.Second})
	e := start(t, []host.Function{fn}, fastReports)
	e.c = fresh()
	first := e.do(t, base+"/predict", "", "one")
	// Keep it busy on the socket past the delay: it must not scale down
	// while it serves there, though the host forwards it nothing.
	busyUntil := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(busyUntil) {
		if a := e.do(t, base+"/predict?sleep=50ms", "", "busy"); a.status != http.StatusOK || a.pid != first.pid {
			t.Fatalf("busy request: %d %s from pid %d, want 200 from %d", a.status, a.body, a.pid, first.pid)
		}
	}
	if got := e.rec.count(host.EventDrain); got != 0 {
		t.Fatalf("a process busy on the socket was drained (%d drains)", got)
	}
	eventually(t, 15*time.Second, "the function did not scale to zero", func() bool {
		return len(e.status(t, "echo").Processes) == 0
	})
	if got := e.rec.count(host.EventCrash); got != 0 {
		t.Errorf("crashes: %d, want 0", got)
	}
	second := e.do(t, base+"/predict", "", "two")
	if second.status != http.StatusOK || second.echo != "two" || second.pid == first.pid {
		t.Errorf("after scale to zero: %d %s from pid %d, want 200 from a new process (first %d)", second.status, second.body, second.pid, first.pid)
	}
}

// TestDirectSocketScalesUpOnReportedLoad: requests the processes accept
// themselves drive scale-up as forwarded ones do.
func TestDirectSocketScalesUpOnReportedLoad(t *testing.T) {
	fn, base := directFunction(t, "echo", host.Autoscaling{TargetConcurrency: 1, MaxScale: 3})
	e := start(t, []host.Function{fn}, fastReports)
	e.c = fresh()
	if a := e.do(t, base+"/predict", "", "warm"); a.status != http.StatusOK {
		t.Fatalf("first request: %d %s", a.status, a.body)
	}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			if a := e.do(t, base+"/predict?sleep=1s", "", fmt.Sprint(i)); a.status != http.StatusOK || a.echo != fmt.Sprint(i) {
				t.Errorf("request %d: %d %s", i, a.status, a.body)
			}
		})
	}
	wg.Wait()
	if got := e.rec.count(host.EventStart); got < 2 || got > 3 {
		t.Errorf("processes started: %d, want 2 or 3 (max_scale 3) for 6 concurrent requests at target 1", got)
	}
}

// TestDirectSocketCrash: a process that dies under requests it accepted
// itself fails them at once (their connections close: there is no proxy
// to answer 502), and the next request on the socket is served.
func TestDirectSocketCrash(t *testing.T) {
	fn, base := directFunction(t, "echo", host.Autoscaling{})
	e := start(t, []host.Function{fn}, fastReports)
	e.c = fresh()
	if a := e.do(t, base+"/predict", "", "warm"); a.status != http.StatusOK {
		t.Fatalf("first request: %d %s", a.status, a.body)
	}
	slow := make(chan error, 1)
	began := time.Now()
	go func() {
		resp, err := fresh().Post(base+"/predict?sleep=20s", "text/plain", strings.NewReader("slow"))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				err = fmt.Errorf("answered %d", resp.StatusCode)
			}
		}
		slow <- err
	}()
	time.Sleep(200 * time.Millisecond) // the slow request is in
	if _, err := fresh().Post(base+"/predict?crash=1", "text/plain", strings.NewReader("x")); err == nil {
		t.Error("the crashing request got an answer")
	}
	if err := <-slow; err == nil || strings.Contains(err.Error(), "answered") {
		t.Errorf("in-flight request on the crashed process: %v, want a closed connection", err)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("the in-flight request failed after %s: want at once", took)
	}
	if a := e.do(t, base+"/predict", "", "after"); a.status != http.StatusOK || a.echo != "after" {
		t.Errorf("request after the crash: %d %s", a.status, a.body)
	}
	eventually(t, 5*time.Second, "no crash recorded", func() bool { return e.rec.count(host.EventCrash) == 1 })
}

// TestDirectSocketDrainLosesNothing: at shutdown, requests the process
// accepted itself finish with their answers.
func TestDirectSocketDrainLosesNothing(t *testing.T) {
	fn, base := directFunction(t, "echo", host.Autoscaling{})
	e := start(t, []host.Function{fn}, fastReports)
	e.c = fresh()
	if a := e.do(t, base+"/predict", "", "warm"); a.status != http.StatusOK {
		t.Fatalf("first request: %d %s", a.status, a.body)
	}
	const n = 8
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = e.do(t, base+"/predict?sleep=500ms", "", fmt.Sprint(i)) })
	}
	eventually(t, 5*time.Second, "the requests did not reach the process", func() bool {
		s := e.status(t, "echo")
		return len(s.Processes) == 1 && s.Processes[0].InFlight == n
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()
	for i, a := range answers {
		if a.status != http.StatusOK || a.echo != fmt.Sprint(i) {
			t.Errorf("request %d in flight at shutdown: %d %s, want 200", i, a.status, a.body)
		}
	}
}

// TestDirectSocketChecksHost: the socket answers only to the names the
// front does, whether the host or a process accepted the connection.
func TestDirectSocketChecksHost(t *testing.T) {
	fn, base := directFunction(t, "echo", host.Autoscaling{})
	allowed, err := host.ParseAllowedHosts("ml.example.com")
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, []host.Function{fn}, fastReports, host.WithAllowedHosts(allowed))
	e.c = fresh()
	check := func(when string) {
		if a := e.do(t, base+"/predict", "attacker.example", "x"); a.status != http.StatusMisdirectedRequest {
			t.Errorf("%s, Host attacker.example: %d %s, want 421", when, a.status, a.body)
		}
		if a := e.do(t, base+"/predict", "ml.example.com", "x"); a.status != http.StatusOK {
			t.Errorf("%s, Host ml.example.com: %d %s, want 200", when, a.status, a.body)
		}
	}
	check("while no process is ready")
	check("once a process accepts")
	if got := e.status(t, "echo").ColdStarts; got != 1 {
		t.Errorf("cold starts: %d, want 1", got)
	}
}

// TestDirectSocketProcessLeavesWithTheHost: a process whose control
// channel closes (cortex serve was killed) drains and exits instead of
// serving on unsupervised; until then it accepts on the shared socket.
func TestDirectSocketProcessLeavesWithTheHost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	addr := ln.Addr().String()
	ln.Close()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	hostEnd, childEnd := os.NewFile(uintptr(fds[0]), "host"), os.NewFile(uintptr(fds[1]), "child")
	defer hostEnd.Close()
	p, err := supervisor.Start(supervisor.Config{
		Command:    []string{fnBin},
		Env:        []string{"CORTEX_LOG_LEVEL=warn", activation.EnvListenFD + "=3", activation.EnvControlFD + "=4"},
		ExtraFiles: []*os.File{lf, childEnd},
	})
	childEnd.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill("")
	if _, err := p.WaitReady(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	c := fresh()
	c.Timeout = 10 * time.Second
	resp, err := c.Post("http://"+addr+"/predict", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatalf("on the shared socket: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("on the shared socket: %d, want 200", resp.StatusCode)
	}
	hostEnd.Close()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the process still runs 10s after its control channel closed")
	}
	if err := p.Err(); err != nil {
		t.Errorf("exit: %v, want a clean drain", err)
	}
}

// TestDirectSocketHandoverAnswersEveryRequest: requests on new
// connections that arrive while the host hands the socket over to a
// process that just became ready are all answered, by one side or the
// other: none sees its connection closed without an answer. (The host
// stopped its server there with http.Server.Shutdown, on a socket that
// passing it to a process had put in blocking mode: the stopped server
// took one more connection from the backlog and closed it unanswered.
// About one request in 150 right after a cold start failed so, and a
// browser's page whose CSS and JS came on new connections.) Each round
// scales to zero, then keeps several callers opening new connections
// through the cold start and past the handover.
func TestDirectSocketHandoverAnswersEveryRequest(t *testing.T) {
	scale := host.Autoscaling{ScaleDownDelay: 150 * time.Millisecond, StableWindow: 150 * time.Millisecond}
	fn, base := directFunction(t, "echo", scale)
	e := start(t, []host.Function{fn}, fastReports)
	const (
		rounds  = 20
		callers = 8
		after   = 150 * time.Millisecond // how long the callers go on after the first answer
	)
	var answered, unanswered int
	for round := range rounds {
		eventually(t, 10*time.Second, "the function did not scale to zero", func() bool {
			return len(e.status(t, "echo").Processes) == 0
		})
		var (
			mu        sync.Mutex
			firstDone = make(chan struct{})
			once      sync.Once
			stop      = make(chan struct{})
			wg        sync.WaitGroup
		)
		for c := range callers {
			wg.Go(func() {
				client := fresh()
				client.Timeout = 20 * time.Second
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					body := fmt.Sprintf("round %d caller %d request %d", round, c, i)
					status, echo, err := postEcho(client, base+"/predict", body)
					mu.Lock()
					switch {
					case err != nil:
						unanswered++
						t.Errorf("%s: no answer: %v", body, err)
					case status != http.StatusOK || echo != body:
						t.Errorf("%s: %d echoing %q, want 200 echoing the body", body, status, echo)
					default:
						answered++
						once.Do(func() { close(firstDone) })
					}
					mu.Unlock()
				}
			})
		}
		select {
		case <-firstDone:
			time.Sleep(after)
		case <-time.After(20 * time.Second):
			t.Error("no request was answered within 20s of a cold start")
		}
		close(stop)
		wg.Wait()
		if t.Failed() {
			break
		}
	}
	t.Logf("%d requests answered, %d closed without an answer", answered, unanswered)
	if got := e.rec.count(host.EventStart); !t.Failed() && got < rounds {
		t.Errorf("processes started: %d, want one a round at least (%d): the rounds did not all cold-start", got, rounds)
	}
}

// postEcho POSTs body to url and returns the status and what the echo
// function echoed; err is a request that got no answer.
func postEcho(c *http.Client, url, body string) (status int, echo string, err error) {
	resp, err := c.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", fmt.Errorf("reading the answer: %w", err)
	}
	var v struct {
		Body string `json:"body"`
	}
	_ = json.Unmarshal(b, &v)
	return resp.StatusCode, v.Body, nil
}
