package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/runtime/host"
)

// fnBin is the test function (testdata/fn), built once by TestMain.
var fnBin string

func TestMain(m *testing.M) {
	testutil.MainWithBuild(m, &fnBin, "./testdata/fn")
}

// recorder keeps every event the host reports.
type recorder struct {
	mu     sync.Mutex
	events []host.Event
}

// add records ev; with $HOST_TEST_DEBUG set it also prints it.
func (r *recorder) add(ev host.Event) {
	if os.Getenv("HOST_TEST_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "%s %s %s pid=%d %s %v\n", ev.Time.Format("15:04:05.000"), ev.Function, ev.Type, ev.PID, ev.Duration, ev.Err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) count(typ host.EventType) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// pids returns every process the host spawned.
func (r *recorder) pids() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var pids []int
	for _, ev := range r.events {
		if ev.Type == host.EventStart {
			pids = append(pids, ev.PID)
		}
	}
	return pids
}

type env struct {
	h    *host.Host
	srv  *httptest.Server
	rec  *recorder
	logs *testutil.SyncBuffer
	c    *http.Client
}

func function(name string, scale host.Autoscaling, environ ...string) host.Function {
	return host.Function{
		Name:         name,
		Command:      []string{fnBin},
		Env:          append([]string{"CORTEX_LOG_LEVEL=warn"}, environ...),
		Scale:        scale,
		StartTimeout: 30 * time.Second,
	}
}

// start serves fns through a real front server. Cleanup shuts the host
// down and checks that every process it spawned is gone.
func start(t *testing.T, fns []host.Function, opts ...host.Option) *env {
	t.Helper()
	return startFront(t, fns, nil, opts...)
}

// startFront is start with front, when not nil, setting up the front
// server (its timeouts, a handler around the host's) before it starts.
func startFront(t *testing.T, fns []host.Function, front func(*http.Server), opts ...host.Option) *env {
	t.Helper()
	e := &env{rec: &recorder{}, logs: &testutil.SyncBuffer{}, c: &http.Client{Timeout: 60 * time.Second}}
	opts = append([]host.Option{
		host.WithEvents(e.rec.add),
		host.WithLogWriter(e.logs),
		host.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}, opts...)
	h, err := host.New(fns, opts...)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	e.srv = httptest.NewUnstartedServer(h)
	if front != nil {
		front(e.srv.Config)
	}
	e.srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		e.srv.Close()
		assertGone(t, e.rec.pids())
		if t.Failed() {
			t.Logf("process logs:\n%s", e.logs.String())
		}
	})
	return e
}

// assertGone checks that no process with these PIDs exists any more.
func assertGone(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after shutdown (kill 0: %v)", pid, err)
		}
	}
}

type answer struct {
	status  int
	header  http.Header
	body    []byte
	pid     int
	echo    string
	version string // $FN_VERSION of the process that answered
	err     string
}

func (e *env) post(t *testing.T, path, body string) answer {
	t.Helper()
	return e.do(t, e.srv.URL+path, "", body)
}

func (e *env) do(t *testing.T, url, hostHeader, body string) answer {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return answer{}
	}
	if hostHeader != "" {
		req.Host = hostHeader
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := e.c.Do(req)
	if err != nil {
		t.Errorf("POST %s: %v", url, err)
		return answer{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: b}
	var v struct {
		PID     int    `json:"pid"`
		Body    string `json:"body"`
		Version string `json:"version"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Errorf("POST %s: %d, body not JSON: %q", url, resp.StatusCode, b)
	}
	a.pid, a.echo, a.version, a.err = v.PID, v.Body, v.Version, v.Error
	return a
}

func (e *env) status(t *testing.T, name string) host.FunctionStatus {
	t.Helper()
	for _, s := range e.h.Status() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for %q", name)
	return host.FunctionStatus{}
}

// eventually polls cond every 20ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestColdStartBurstStartsOneProcess(t *testing.T) {
	// The model takes a while to load, so every request arrives while the
	// first process is starting.
	e := start(t, []host.Function{function("echo", host.Autoscaling{}, "FN_INIT_DELAY=300ms")})
	const n = 50
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = e.post(t, fmt.Sprintf("/echo/predict?i=%d", i), fmt.Sprintf("request-%d", i)) })
	}
	wg.Wait()
	pids := map[int]bool{}
	for i, a := range answers {
		if got, want := a.status, http.StatusOK; got != want {
			t.Errorf("request %d: status %d, want %d (%s)", i, got, want, a.body)
		}
		if got, want := a.echo, fmt.Sprintf("request-%d", i); got != want {
			t.Errorf("request %d: echoed %q, want %q", i, got, want)
		}
		pids[a.pid] = true
	}
	if got, want := e.rec.count(host.EventStart), 1; got != want {
		t.Errorf("processes started: %d, want %d", got, want)
	}
	if got, want := len(pids), 1; got != want {
		t.Errorf("answered by %d processes, want %d", got, want)
	}
	s := e.status(t, "echo")
	if got, want := s.ColdStarts, int64(1); got != want {
		t.Errorf("cold starts: %d, want %d", got, want)
	}
	if s.LastColdStart <= 0 {
		t.Errorf("last cold start: %s, want > 0", s.LastColdStart)
	}
}

func TestScaleUpUnderConcurrencyIsBoundedByMaxScale(t *testing.T) {
	e := start(t, []host.Function{function("echo", host.Autoscaling{TargetConcurrency: 1, MaxScale: 3})})
	const n = 8
	answers := make([]answer, n)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	maxProcs := 0
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			maxProcs = max(maxProcs, len(e.status(t, "echo").Processes))
		}
	})
	for i := range n {
		wg.Go(func() { answers[i] = e.post(t, "/echo/predict?sleep=400ms", fmt.Sprint(i)) })
	}
	wg.Wait()
	close(stop)
	watch.Wait()

	pids := map[int]bool{}
	for i, a := range answers {
		if a.status != http.StatusOK || a.echo != fmt.Sprint(i) {
			t.Errorf("request %d: %d %q, want 200 echoing %q", i, a.status, a.body, fmt.Sprint(i))
		}
		pids[a.pid] = true
	}
	if len(pids) < 2 {
		t.Errorf("%d concurrent slow requests at target 1 were served by %d process, want more", n, len(pids))
	}
	if got := e.rec.count(host.EventStart); got > 3 {
		t.Errorf("processes started: %d, want at most max_scale 3", got)
	}
	if maxProcs > 3 {
		t.Errorf("saw %d processes at once, want at most 3", maxProcs)
	}
}

func TestScaleDownToZeroAfterDelay(t *testing.T) {
	scale := host.Autoscaling{ScaleDownDelay: 300 * time.Millisecond, StableWindow: 300 * time.Millisecond}
	e := start(t, []host.Function{function("echo", scale)})
	first := e.post(t, "/echo/", "one")
	if first.status != http.StatusOK {
		t.Fatalf("first request: %d %s", first.status, first.body)
	}
	eventually(t, 15*time.Second, "the function did not scale to zero", func() bool {
		return len(e.status(t, "echo").Processes) == 0
	})
	if err := syscall.Kill(first.pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after scale-down (kill 0: %v)", first.pid, err)
	}
	if got, want := e.rec.count(host.EventExit), 1; got != want {
		t.Errorf("clean exits: %d, want %d", got, want)
	}
	if got := e.rec.count(host.EventCrash); got != 0 {
		t.Errorf("crashes: %d, want 0 (a drained process is not a crash)", got)
	}
	second := e.post(t, "/echo/", "two")
	if second.status != http.StatusOK || second.pid == first.pid {
		t.Errorf("request after scale to zero: %d from pid %d, want 200 from a new process (first was %d)", second.status, second.pid, first.pid)
	}
	s := e.status(t, "echo")
	if s.ColdStarts != 2 || s.ScaleDowns != 1 {
		t.Errorf("cold starts %d, scale-downs %d; want 2 and 1", s.ColdStarts, s.ScaleDowns)
	}
}

func TestMinScaleKeepsProcesses(t *testing.T) {
	scale := host.Autoscaling{MinScale: 1, ScaleDownDelay: 100 * time.Millisecond, StableWindow: 100 * time.Millisecond}
	e := start(t, []host.Function{function("echo", scale)})
	eventually(t, 15*time.Second, "min_scale 1 did not start a process", func() bool {
		return e.status(t, "echo").Ready == 1
	})
	time.Sleep(500 * time.Millisecond)
	if got := len(e.status(t, "echo").Processes); got != 1 {
		t.Errorf("processes after the scale-down delay: %d, want min_scale 1", got)
	}
}

func TestCrashMidRequest(t *testing.T) {
	e := start(t, []host.Function{function("echo", host.Autoscaling{})})
	warm := e.post(t, "/echo/", "warm")
	if warm.status != http.StatusOK {
		t.Fatalf("warm-up: %d %s", warm.status, warm.body)
	}
	// A slow request in flight on the same process must not hang when the
	// process dies under it.
	slow := make(chan answer, 1)
	go func() { slow <- e.post(t, "/echo/?sleep=20s", "slow") }()
	eventually(t, 10*time.Second, "the slow request never reached the process", func() bool {
		return e.status(t, "echo").InFlight == 1
	})

	crash := e.post(t, "/echo/?crash=1", "boom")
	if got, want := crash.status, http.StatusBadGateway; got != want {
		t.Errorf("crashing request: status %d, want %d (%s)", got, want, crash.body)
	}
	if !strings.Contains(crash.err, "exit status 3") {
		t.Errorf("crashing request: error %q, want the exit status", crash.err)
	}
	if a := <-slow; a.status != http.StatusBadGateway {
		t.Errorf("request in flight on the crashed process: %d, want 502", a.status)
	}
	next := e.post(t, "/echo/", "after")
	if next.status != http.StatusOK || next.echo != "after" {
		t.Errorf("request after the crash: %d %s, want 200", next.status, next.body)
	}
	if next.pid == warm.pid {
		t.Errorf("request after the crash served by the dead process %d", warm.pid)
	}
	if got := e.status(t, "echo").Crashes; got != 1 {
		t.Errorf("crashes: %d, want 1", got)
	}
}

func TestHungProcessIsKilled(t *testing.T) {
	e := start(t, []host.Function{function("echo", host.Autoscaling{})}, host.WithProbeInterval(100*time.Millisecond))
	warm := e.post(t, "/echo/", "warm")
	if warm.status != http.StatusOK {
		t.Fatalf("warm-up: %d %s", warm.status, warm.body)
	}
	slow := make(chan answer, 1)
	go func() { slow <- e.post(t, "/echo/?sleep=30s", "slow") }()
	eventually(t, 10*time.Second, "the slow request never reached the process", func() bool {
		return e.status(t, "echo").InFlight == 1
	})
	if err := syscall.Kill(warm.pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-slow:
		if a.status != http.StatusBadGateway || !strings.Contains(a.err, "health checks") {
			t.Errorf("request on the hung process: %d %s, want 502 naming the health checks", a.status, a.body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("request on a hung process still waiting after 20s")
	}
	next := e.post(t, "/echo/", "after")
	if next.status != http.StatusOK || next.pid == warm.pid {
		t.Errorf("request after the hang: %d from %d, want 200 from a new process", next.status, next.pid)
	}
}

func TestStartFailureBacksOff(t *testing.T) {
	const initial = 300 * time.Millisecond
	log := &testutil.SyncBuffer{}
	e := start(t, []host.Function{function("broken", host.Autoscaling{}, "FN_FAIL_INIT=model file is corrupt")},
		host.WithRestartBackoff(initial, 2*initial), host.WithLogger(slog.New(slog.NewTextHandler(log, nil))))
	began := time.Now()

	// Requests held during the failed start all get the reason and a
	// request id; what the process wrote goes to the log alone.
	const n = 10
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = e.post(t, "/broken/", "x") })
	}
	wg.Wait()
	for i, a := range answers {
		if a.status != http.StatusServiceUnavailable {
			t.Errorf("request %d: %d, want 503", i, a.status)
		}
		checkStartFailure(t, fmt.Sprintf("request %d", i), a, log)
		if a.header.Get("Retry-After") == "" {
			t.Errorf("request %d: no Retry-After", i)
		}
	}
	// Keep asking for a while: attempts stay bounded by the backoff.
	for time.Since(began) < 2*time.Second {
		if a := e.post(t, "/broken/", "x"); a.status != http.StatusServiceUnavailable || a.err == "" {
			t.Fatalf("request to a broken function: %d %s, want 503 with the reason", a.status, a.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(began)
	starts := e.rec.count(host.EventStart)
	if limit := int(elapsed/initial) + 1; starts > limit {
		t.Errorf("%d start attempts in %s with a %s backoff, want at most %d", starts, elapsed.Round(time.Millisecond), initial, limit)
	}
	if starts < 2 {
		t.Errorf("%d start attempts in %s, want the next request to try again after the backoff", starts, elapsed.Round(time.Millisecond))
	}
	if got := e.rec.count(host.EventStartFailed); got != starts {
		t.Errorf("failed starts: %d, want %d (every attempt)", got, starts)
	}
}

// checkStartFailure checks the answer to a request that met a failed
// start: the exit status and a request id, never what the process wrote to
// stderr (a model's path, a stack trace, a secret it printed), which the
// log has under that request id.
func checkStartFailure(t *testing.T, what string, a answer, log *testutil.SyncBuffer) {
	t.Helper()
	id := a.header.Get("X-Request-Id")
	if id == "" {
		t.Errorf("%s: no X-Request-Id", what)
	}
	if want := "request id " + id; !strings.Contains(a.err, "exit status 1") || !strings.Contains(a.err, want) {
		t.Errorf("%s: error %q, want the exit status and %q", what, a.err, want)
	}
	if strings.Contains(a.err, "corrupt") || strings.Contains(a.err, "loading model") {
		t.Errorf("%s: error %q has the process's stderr", what, a.err)
	}
	if l := log.String(); !strings.Contains(l, "request_id="+id) || !strings.Contains(l, "loading model: model file is corrupt") {
		t.Errorf("%s: the log lacks the request id %s or the process's stderr:\n%s", what, id, l)
	}
}

func TestQueueBoundRefusesWithRetryAfter(t *testing.T) {
	fn := function("echo", host.Autoscaling{TargetConcurrency: 1, MaxScale: 1})
	fn.MaxQueue = 2
	e := start(t, []host.Function{fn})
	const n = 6
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = e.post(t, "/echo/?sleep=200ms", "x") })
	}
	wg.Wait()
	ok, refused := 0, 0
	for i, a := range answers {
		switch a.status {
		case http.StatusOK:
			ok++
		case http.StatusServiceUnavailable:
			refused++
			if a.header.Get("Retry-After") == "" || !strings.Contains(a.err, "at capacity") {
				t.Errorf("request %d: refused without Retry-After or reason: %v %s", i, a.header, a.body)
			}
		default:
			t.Errorf("request %d: %d %s, want 200 or 503", i, a.status, a.body)
		}
	}
	// At most one in flight and two queued can be admitted.
	if ok < 1 || ok > 3 || refused < n-3 {
		t.Errorf("%d answered, %d refused; want 1 to 3 answered and the rest refused", ok, refused)
	}
}

func TestRouting(t *testing.T) {
	e := start(t, []host.Function{
		function("echo", host.Autoscaling{}, "CORTEX_LOG_LEVEL=info"),
		function("other", host.Autoscaling{}, "CORTEX_LOG_LEVEL=info"),
	})
	tests := []struct {
		name   string
		url    string
		host   string
		status int
	}{
		{"prefix root", "/echo", "", http.StatusOK},
		{"prefix slash", "/echo/", "", http.StatusOK},
		{"prefix predict", "/echo/predict", "", http.StatusOK},
		{"host header", "/predict", "echo.localhost", http.StatusOK},
		{"host header with port", "/", "other.localhost:8080", http.StatusOK},
		{"unknown function", "/nope/predict", "", http.StatusNotFound},
		{"unknown host", "/predict", "nope.localhost", http.StatusNotFound},
		{"function's own 404", "/echo/no/such/route", "", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.do(t, e.srv.URL+tt.url, tt.host, tt.name)
			if a.status != tt.status {
				t.Errorf("got %d, want %d (%s)", a.status, tt.status, a.body)
			}
			if tt.status == http.StatusOK && a.echo != tt.name {
				t.Errorf("echoed %q, want %q", a.echo, tt.name)
			}
		})
	}
	// Only the functions that were called have processes.
	for _, s := range e.h.Status() {
		if s.ColdStarts != 1 {
			t.Errorf("%s: cold starts %d, want 1", s.Name, s.ColdStarts)
		}
	}

	resp, err := http.Get(e.srv.URL + "/-/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Functions []struct {
			Name       string  `json:"name"`
			Ready      int     `json:"ready"`
			ColdStarts int     `json:"cold_starts"`
			LastCold   float64 `json:"last_cold_start_seconds"`
		} `json:"functions"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || len(st.Functions) != 2 || st.Functions[0].Name != "echo" || st.Functions[0].Ready != 1 || st.Functions[0].LastCold <= 0 {
		t.Errorf("/-/status: %+v (%v)", st, err)
	}

	resp, err = http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`cortex_host_cold_starts_total{function="echo"} 1`,
		`cortex_host_cold_start_duration_seconds_count{function="echo"} 1`,
		`cortex_host_queue_duration_seconds_count{function="echo"}`,
		`cortex_host_processes{function="echo",state="ready"} 1`,
		`cortex_host_scale_events_total{direction="up",function="echo"} 1`,
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if logs := e.logs.String(); !strings.Contains(logs, "[echo] ") || !strings.Contains(logs, "[other] ") {
		t.Errorf("process logs are not prefixed with the function's name:\n%s", logs)
	}
}

func TestShutdownDrainsAndLeavesNoProcess(t *testing.T) {
	e := start(t, []host.Function{function("echo", host.Autoscaling{TargetConcurrency: 1, MaxScale: 3})})
	const n = 3
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = e.post(t, "/echo/?sleep=1s", "x") })
	}
	eventually(t, 20*time.Second, "the functions never started three requests", func() bool {
		return strings.Count(e.logs.String(), "sleeping 1s") == n
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.h.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	assertGone(t, e.rec.pids())
	wg.Wait()
	for i, a := range answers {
		if a.status != http.StatusOK {
			t.Errorf("request %d in flight at shutdown: %d %s, want 200 (drained)", i, a.status, a.body)
		}
	}
	if a := e.post(t, "/echo/", "late"); a.status != http.StatusServiceUnavailable {
		t.Errorf("request after shutdown: %d, want 503", a.status)
	}
	if got := len(e.rec.pids()); got < 2 {
		t.Errorf("only %d processes were started; the test wants several", got)
	}
}

func TestShutdownKillsAtTheBound(t *testing.T) {
	e := start(t, []host.Function{function("echo", host.Autoscaling{})})
	slow := make(chan answer, 1)
	go func() { slow <- e.post(t, "/echo/?sleep=30s", "x") }()
	eventually(t, 20*time.Second, "the function never started the request", func() bool {
		return strings.Contains(e.logs.String(), "[echo] sleeping 30s")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := e.h.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the deadline error", err)
	}
	assertGone(t, e.rec.pids())
	if a := <-slow; a.status != http.StatusBadGateway {
		t.Errorf("request killed at shutdown: %d, want 502", a.status)
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	ok := host.Function{Name: "ok", Command: []string{"fn"}}
	tests := []struct {
		name string
		fns  []host.Function
		want []string
	}{
		{"no functions", nil, []string{"no functions"}},
		{"bad name and no command", []host.Function{{Name: "Bad_Name"}}, []string{`"Bad_Name" is not a DNS label`, "command: empty"}},
		{"dash", []host.Function{{Name: "-", Command: []string{"fn"}}}, []string{"not a DNS label"}},
		{"reserved", []host.Function{{Name: "metrics", Command: []string{"fn"}}}, []string{"reserved"}},
		{"duplicate", []host.Function{ok, ok}, []string{`functions[1].name: "ok" is used twice`}},
		{"min over max", []host.Function{{Name: "a", Command: []string{"fn"}, Scale: host.Autoscaling{MinScale: 3, MaxScale: 2}}}, []string{"min_scale: 3 is more than max_scale (2)"}},
		{"negative", []host.Function{{Name: "a", Command: []string{"fn"}, Scale: host.Autoscaling{MinScale: -1, TargetConcurrency: -2}}}, []string{"min_scale", "target_concurrency"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := host.New(tt.fns)
			if err == nil {
				t.Fatal("New: no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q, want it to contain %q", err, w)
				}
			}
		})
	}
	if _, err := host.New([]host.Function{{Name: "metrics", Command: []string{"fn"}}}); !errors.Is(err, host.ErrReservedName) {
		t.Errorf("New(metrics): %v, want ErrReservedName", err)
	}
}

func TestStartTimeout(t *testing.T) {
	fn := function("slow", host.Autoscaling{}, "FN_INIT_DELAY=30s")
	fn.StartTimeout = 500 * time.Millisecond
	e := start(t, []host.Function{fn}, host.WithRestartBackoff(time.Minute, time.Minute))
	a := e.post(t, "/slow/", "x")
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.err, "not ready within 500ms") {
		t.Errorf("request to a function that never gets ready: %d %s, want 503 naming the start timeout", a.status, a.body)
	}
	if got := a.header.Get("Retry-After"); got == "" || got == "0" {
		t.Errorf("Retry-After: %q, want the backoff", got)
	}
	assertGone(t, e.rec.pids())
}

func TestCrashLoopBacksOff(t *testing.T) {
	const backoff = 500 * time.Millisecond
	e := start(t, []host.Function{function("echo", host.Autoscaling{})}, host.WithRestartBackoff(backoff, backoff))
	for i := range 2 {
		if a := e.post(t, "/echo/", "warm"); a.status != http.StatusOK {
			t.Fatalf("request %d before crash %d: %d %s", i, i, a.status, a.body)
		}
		if a := e.post(t, "/echo/?crash=1", "boom"); a.status != http.StatusBadGateway {
			t.Fatalf("crash %d: %d %s, want 502", i, a.status, a.body)
		}
	}
	// Two processes died soon after ready: the third waits for the backoff.
	a := e.post(t, "/echo/", "x")
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.err, "keeps crashing") || a.header.Get("Retry-After") == "" {
		t.Errorf("request during the crash-loop backoff: %d %v %s, want 503 with Retry-After saying it keeps crashing", a.status, a.header, a.body)
	}
	time.Sleep(backoff + 100*time.Millisecond)
	if a := e.post(t, "/echo/", "later"); a.status != http.StatusOK {
		t.Errorf("request after the backoff: %d %s, want 200", a.status, a.body)
	}
}
