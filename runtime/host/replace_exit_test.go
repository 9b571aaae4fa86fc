package host_test

import (
	"net/http"
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
