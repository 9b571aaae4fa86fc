package host_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/runtime/host"
)

// TestExitReplaceIsNotACrash checks a process that exits with status 75
// (runtime.ExitReplace: it ended itself to be replaced) twice in a row,
// soon after it was ready: neither is a crash, neither puts the function
// in backoff (a minute here, so a backoff would show as a 503), and the
// next request each time gets a new process.
func TestExitReplaceIsNotACrash(t *testing.T) {
	e := start(t, []host.Function{function("echo", host.Autoscaling{})}, host.WithRestartBackoff(time.Minute, time.Minute))
	seen := map[int]bool{}
	for i := range 2 {
		a := e.post(t, "/echo/predict?replace=1", "last")
		if a.status != http.StatusOK || seen[a.pid] {
			t.Fatalf("round %d: %d from pid %d, want 200 from a new process (%s)", i, a.status, a.pid, a.body)
		}
		seen[a.pid] = true
		eventually(t, 10*time.Second, "the process did not exit", func() bool {
			return len(e.status(t, "echo").Processes) == 0
		})
		if s := e.status(t, "echo"); s.State != host.StateIdle || s.Error != "" || s.LastError != "" {
			t.Errorf("round %d: after the exit: state %s, error %q %q; want idle with no error", i, s.State, s.Error, s.LastError)
		}
	}
	a := e.post(t, "/echo/predict", "next")
	if a.status != http.StatusOK || seen[a.pid] {
		t.Errorf("request after two replacements: %d from pid %d, want 200 from a new process (%s)", a.status, a.pid, a.body)
	}
	s := e.status(t, "echo")
	if s.Crashes != 0 || s.Replaced != 2 || s.ColdStarts != 3 {
		t.Errorf("crashes %d, replaced %d, cold starts %d; want 0, 2 and 3", s.Crashes, s.Replaced, s.ColdStarts)
	}
	if got, want := e.rec.count(host.EventReplace), 2; got != want {
		t.Errorf("replace events: %d, want %d", got, want)
	}
	if got := e.rec.count(host.EventCrash); got != 0 {
		t.Errorf("crash events: %d, want 0", got)
	}
	m := e.scrape(t)
	if got := m[`cortex_host_crashes_total{function="echo"}`]; got != "0" {
		t.Errorf("cortex_host_crashes_total: %q, want 0", got)
	}
	if got := m[`cortex_host_replaced_total{function="echo"}`]; got != "2" {
		t.Errorf("cortex_host_replaced_total: %q, want 2", got)
	}
}

// TestUnhealthyProcessIsRetired: after a runaway prediction the runtime
// answers /healthz with 503 and drains its other requests before exiting to
// be replaced (runtime.TestOverrunReplacesProcess shows that side). The host
// retires such a process at once: no new request reaches it, the requests
// it has finish (missed probes would have killed it, and them, as a hang),
// the next request starts a new process, and its exit is a replacement, not
// a crash. The process here is the test function's runtime-less mode, so the
// test needs no timing between a deadline and a probe.
func TestUnhealthyProcessIsRetired(t *testing.T) {
	e := start(t, []host.Function{function("sick", host.Autoscaling{}, "FN_SICKENS=1")},
		host.WithProbeInterval(100*time.Millisecond), host.WithRestartBackoff(time.Minute, time.Minute))
	first := e.post(t, "/sick/predict", "warm")
	if first.status != http.StatusOK {
		t.Fatalf("first request: %d %s", first.status, first.body)
	}
	slow := make(chan answer, 1)
	go func() { slow <- e.post(t, "/sick/predict?sleep=2s", "slow") }()
	eventually(t, 10*time.Second, "the slow request did not reach the process", func() bool {
		return strings.Contains(e.logs.String(), "sleeping 2s")
	})
	if a := e.post(t, "/sick/predict?sick=1", ""); a.status != http.StatusOK || a.pid != first.pid {
		t.Fatalf("the request that sickens it: %d from %d: %s", a.status, a.pid, a.body)
	}
	eventually(t, 10*time.Second, "the unhealthy process was not retired", func() bool {
		ps := e.status(t, "sick").Processes
		return len(ps) > 0 && ps[0].PID == first.pid && ps[0].State == "draining"
	})
	if a := e.post(t, "/sick/predict", "after"); a.status != http.StatusOK || a.pid == first.pid {
		t.Fatalf("the request after: %d from pid %d (the unhealthy one is %d): %s", a.status, a.pid, first.pid, a.body)
	}
	if a := <-slow; a.status != http.StatusOK || a.pid != first.pid {
		t.Errorf("the slow request on the retired process: %d from pid %d, want 200 from %d: %s", a.status, a.pid, first.pid, a.body)
	}
	eventually(t, 30*time.Second, "the retired process did not exit", func() bool {
		for _, p := range e.status(t, "sick").Processes {
			if p.PID == first.pid {
				return false
			}
		}
		return true
	})
	if s := e.status(t, "sick"); s.Crashes != 0 || s.Replaced != 1 {
		t.Errorf("crashes %d, replaced %d; want 0 and 1", s.Crashes, s.Replaced)
	}
}
