package host_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/runtime/host"
)

// load is n clients that each send requests one after another until
// stopped, keeping their answers in order.
type load struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	total   atomic.Int64
	answers [][]answer
}

// startLoad starts n clients on the function at prefix (such as "/echo").
// Every third request sleeps 30ms in the function, so that some are in
// flight whenever something happens to the processes.
func startLoad(t *testing.T, e *env, prefix string, n int) *load {
	l := &load{stop: make(chan struct{}), answers: make([][]answer, n)}
	for c := range n {
		l.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				path := prefix + "/predict"
				if i%3 == 0 {
					path += "?sleep=30ms"
				}
				a := e.post(t, path, fmt.Sprintf("client-%d-%d", c, i))
				a.header, a.body = nil, nil
				l.answers[c] = append(l.answers[c], a)
				l.total.Add(1)
			}
		})
	}
	return l
}

// waitMore waits until the clients have had n more answers.
func (l *load) waitMore(t *testing.T, n int64) {
	t.Helper()
	want := l.total.Load() + n
	eventually(t, time.Minute, fmt.Sprintf("the clients did not get %d more answers", n), func() bool {
		return l.total.Load() >= want
	})
}

func (l *load) finish() [][]answer {
	close(l.stop)
	l.wg.Wait()
	return l.answers
}

// checkSwitch checks every answer of every client: 200, its own echo, a
// version from versions, and never an older version after a newer one.
// It returns how many answers each version gave.
func checkSwitch(t *testing.T, clients [][]answer, versions ...string) map[string]int {
	t.Helper()
	order := map[string]int{}
	for i, v := range versions {
		order[v] = i
	}
	seen := map[string]int{}
	failed := 0
	for c, answers := range clients {
		newest := 0
		for i, a := range answers {
			want := fmt.Sprintf("client-%d-%d", c, i)
			rank, known := order[a.version]
			if a.status != http.StatusOK || a.echo != want || !known {
				if failed++; failed <= 5 {
					t.Errorf("client %d request %d: %d %q version %q (%s), want 200 echoing %q from one of versions %q",
						c, i, a.status, a.echo, a.version, a.err, want, versions)
				}
				continue
			}
			if rank < newest {
				t.Errorf("client %d request %d: answered by version %s after version %s had answered it", c, i, a.version, versions[newest])
			}
			newest = max(newest, rank)
			seen[a.version]++
		}
	}
	if failed > 0 {
		t.Errorf("%d failed requests, want 0", failed)
	}
	return seen
}

func TestReplaceUnderLoadFailsNoRequest(t *testing.T) {
	// A target of 8 puts the 20 clients on several processes, so the swap
	// retires several, and the new revision must scale up after it.
	scale := host.Autoscaling{TargetConcurrency: 8}
	e := start(t, []host.Function{function("echo", scale, "FN_VERSION=1")})
	if a := e.post(t, "/echo/", "warm"); a.status != http.StatusOK || a.version != "1" {
		t.Fatalf("warm-up: %d %s", a.status, a.body)
	}

	const clients = 20
	l := startLoad(t, e, "/echo", clients)
	l.waitMore(t, 100)
	// The new build loads its model slowly: the old processes serve
	// meanwhile.
	if err := e.h.Replace(function("echo", scale, "FN_VERSION=2", "FN_INIT_DELAY=300ms")); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	eventually(t, time.Minute, "the new revision never answered", func() bool {
		return e.post(t, "/echo/", "probe").version == "2"
	})
	l.waitMore(t, 200)
	answers := l.finish()
	seen := checkSwitch(t, answers, "1", "2")
	if seen["1"] == 0 || seen["2"] == 0 {
		t.Errorf("answers by version: %v, want both", seen)
	}
	old := map[int]bool{}
	for _, client := range answers {
		for _, a := range client {
			if a.version == "1" {
				old[a.pid] = true
			}
		}
	}
	for pid := range old {
		assertExited(t, pid)
	}

	s := e.status(t, "echo")
	if s.Revision != 2 || s.State != host.StateReady || s.BuildError != "" {
		t.Errorf("status after the swap: revision %d, state %q, build error %q; want 2, ready, none", s.Revision, s.State, s.BuildError)
	}
	eventually(t, time.Minute, "processes of revision 1 are still running", func() bool {
		for _, p := range e.status(t, "echo").Processes {
			if p.Revision != 2 {
				return false
			}
		}
		return true
	})
	if got := e.rec.count(host.EventCrash); got != 0 {
		t.Errorf("crashes: %d, want 0 (the old processes were drained)", got)
	}
	if got := e.rec.count(host.EventExit); got < 1 {
		t.Errorf("clean exits: %d, want the old processes'", got)
	}
}

func TestReplaceThatCannotStartKeepsTheOldRevision(t *testing.T) {
	e := start(t, []host.Function{function("echo", host.Autoscaling{}, "FN_VERSION=1")})
	if a := e.post(t, "/echo/", "warm"); a.status != http.StatusOK {
		t.Fatalf("warm-up: %d %s", a.status, a.body)
	}
	l := startLoad(t, e, "/echo", 5)
	if err := e.h.Replace(function("echo", host.Autoscaling{}, "FN_VERSION=2", "FN_FAIL_INIT=model file is corrupt")); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	eventually(t, time.Minute, "the failed start never showed in the status", func() bool {
		return e.status(t, "echo").BuildError != ""
	})
	l.waitMore(t, 50)
	checkSwitch(t, l.finish(), "1")
	s := e.status(t, "echo")
	for _, want := range []string{"revision 2 did not start", "revision 1 serves on", "exit status 1", "its output is in the log"} {
		if !strings.Contains(s.BuildError, want) {
			t.Errorf("build error %q, want it to contain %q", s.BuildError, want)
		}
	}
	if strings.Contains(s.BuildError, "corrupt") {
		t.Errorf("build error %q has the process's stderr, which is for the log alone", s.BuildError)
	}
	if s.Revision != 1 || s.State != host.StateReady || s.Error != "" {
		t.Errorf("status: revision %d, state %q, error %q; want 1, ready, none", s.Revision, s.State, s.Error)
	}

	// The next good build takes over and clears the error.
	if err := e.h.Replace(function("echo", host.Autoscaling{}, "FN_VERSION=3")); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	eventually(t, time.Minute, "revision 3 never answered", func() bool {
		return e.post(t, "/echo/", "probe").version == "3"
	})
	if s := e.status(t, "echo"); s.Revision != 3 || s.BuildError != "" {
		t.Errorf("after a good build: revision %d, build error %q; want 3 and none", s.Revision, s.BuildError)
	}
}

func TestReplaceIdleFunctionTakesEffectAtOnce(t *testing.T) {
	e := start(t, []host.Function{function("echo", host.Autoscaling{}, "FN_VERSION=1")})
	if err := e.h.Replace(function("echo", host.Autoscaling{}, "FN_VERSION=2")); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	if got := len(e.status(t, "echo").Processes); got != 0 {
		t.Errorf("processes after replacing an idle function: %d, want 0 (it stays scaled to zero)", got)
	}
	if a := e.post(t, "/echo/", "x"); a.status != http.StatusOK || a.version != "2" {
		t.Errorf("first request: %d version %q, want 200 from version 2", a.status, a.version)
	}
	if got := e.rec.count(host.EventStart); got != 1 {
		t.Errorf("processes started: %d, want 1", got)
	}
}

// TestBrokenFunctionAnswersWithItsError serves a function that did not
// build and one that fails at start beside one that works.
func TestBrokenFunctionAnswersWithItsError(t *testing.T) {
	const buildErr = "/fn/iris/cortex.yaml:4: predictor.model: model/iris.onnx does not exist in /fn/iris"
	log := &testutil.SyncBuffer{}
	e := start(t, []host.Function{
		function("echo", host.Autoscaling{}),
		{Name: "iris", Err: errors.New(buildErr)},
		function("crashy", host.Autoscaling{}, "FN_FAIL_INIT=model file is corrupt"),
	}, host.WithRestartBackoff(time.Minute, time.Minute), host.WithLogger(slog.New(slog.NewTextHandler(log, nil))))

	for range 3 {
		a := e.post(t, "/iris/predict", "x")
		if a.status != http.StatusServiceUnavailable || !strings.Contains(a.err, buildErr) || !strings.Contains(a.err, `function "iris" cannot run`) {
			t.Errorf("request to the function that did not build: %d %s, want 503 with its build error", a.status, a.body)
		}
	}
	if a := e.post(t, "/crashy/predict", "x"); a.status != http.StatusServiceUnavailable {
		t.Errorf("request to the function that fails at start: %d %s, want 503 with the reason", a.status, a.body)
	} else {
		checkStartFailure(t, "request to the function that fails at start", a, log)
	}
	if a := e.post(t, "/echo/predict", "x"); a.status != http.StatusOK || a.echo != "x" {
		t.Errorf("request to the function that works: %d %s, want 200", a.status, a.body)
	}

	got := statusJSON(t, e)
	for _, tt := range []struct {
		name, state, err string
	}{
		{"echo", host.StateReady, ""},
		{"iris", host.StateFailed, buildErr},
		{"crashy", host.StateFailed, "exit status 1"},
	} {
		s := got[tt.name]
		if s.State != tt.state || !strings.Contains(s.Error, tt.err) || (tt.err == "") != (s.Error == "") {
			t.Errorf("/-/status of %s: state %q, error %q; want %q with an error containing %q", tt.name, s.State, s.Error, tt.state, tt.err)
		}
	}
	if strings.Contains(got["crashy"].Error, "corrupt") {
		t.Errorf("/-/status of crashy: error %q has the process's stderr, which is for the log alone", got["crashy"].Error)
	}
	if n := len(got["iris"].Processes); n != 0 {
		t.Errorf("processes of the function that did not build: %d, want 0", n)
	}

	// Another failed build: the requests get the newest error.
	if err := e.h.BuildFailed("iris", errors.New("model/iris.onnx is not an ONNX model")); err != nil {
		t.Fatal(err)
	}
	if a := e.post(t, "/iris/predict", "x"); a.status != http.StatusServiceUnavailable || !strings.Contains(a.err, "is not an ONNX model") {
		t.Errorf("after a second failed build: %d %s, want 503 with the new error", a.status, a.body)
	}
	// A build that works makes it healthy.
	if err := e.h.Replace(function("iris", host.Autoscaling{}, "FN_VERSION=2")); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	if a := e.post(t, "/iris/predict", "x"); a.status != http.StatusOK || a.version != "2" {
		t.Errorf("after a good build: %d %s, want 200 from version 2", a.status, a.body)
	}
	if s := statusJSON(t, e)["iris"]; s.State != host.StateReady || s.Error != "" || s.Revision != 2 {
		t.Errorf("/-/status after a good build: %+v, want ready, revision 2, no error", s)
	}
}

// statusJSON reads /-/status as a client does.
func statusJSON(t *testing.T, e *env) map[string]host.FunctionStatus {
	t.Helper()
	m, err := host.FetchStatus(context.Background(), nil, e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReplaceRejects(t *testing.T) {
	e := start(t, []host.Function{function("echo", host.Autoscaling{})})
	tests := []struct {
		name string
		fn   host.Function
		want string
	}{
		{"unknown function", function("nope", host.Autoscaling{}), `no such function: "nope"`},
		{"failed build", host.Function{Name: "echo", Err: errors.New("syntax error")}, "BuildFailed"},
		{"no command", host.Function{Name: "echo"}, "command: empty"},
		{"bad scale", function("echo", host.Autoscaling{MinScale: 3, MaxScale: 2}), "min_scale: 3 is more than max_scale (2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.h.Replace(tt.fn)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Replace: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if err := e.h.Replace(function("nope", host.Autoscaling{})); !errors.Is(err, host.ErrUnknownFunction) {
		t.Errorf("Replace(nope): %v, want ErrUnknownFunction", err)
	}
	if s := e.status(t, "echo"); s.Revision != 1 {
		t.Errorf("revision after rejected replacements: %d, want 1", s.Revision)
	}
}

// assertExited waits for a process that is draining to be gone.
func assertExited(t *testing.T, pid int) {
	t.Helper()
	eventually(t, time.Minute, fmt.Sprintf("process %d still exists", pid), func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	})
}
