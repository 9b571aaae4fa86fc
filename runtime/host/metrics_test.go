package host_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/runtime/host"
)

// scrape returns the host's /metrics as series -> value, the series
// written as in the exposition format: name{label="value",...}.
func (e *env) scrape(t *testing.T) map[string]string {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			series[line[:i]] = line[i+1:]
		}
	}
	return series
}

// TestMetricsSurviveScaleToZero checks that the host's per-function series
// (requests by status code, cold starts, requests in flight) are the
// host's own: they stay, with their counts, when the function's processes
// (and their own /metrics) are gone.
func TestMetricsSurviveScaleToZero(t *testing.T) {
	scale := host.Autoscaling{ScaleDownDelay: 200 * time.Millisecond, StableWindow: 200 * time.Millisecond}
	e := start(t, []host.Function{function("echo", scale)})
	for range 3 {
		if a := e.post(t, "/echo/predict", "ok"); a.status != http.StatusOK {
			t.Fatalf("request: %d %s", a.status, a.body)
		}
	}
	for range 2 {
		if a := e.post(t, "/echo/predict?sleep=never", "bad"); a.status != http.StatusBadRequest {
			t.Fatalf("bad request: %d %s, want 400", a.status, a.body)
		}
	}
	eventually(t, 15*time.Second, "the function did not scale to zero", func() bool {
		return len(e.status(t, "echo").Processes) == 0
	})

	check := func(when string, want map[string]string) {
		t.Helper()
		got := e.scrape(t)
		for series, v := range want {
			if got[series] != v {
				t.Errorf("%s: %s is %q, want %s", when, series, got[series], v)
			}
		}
	}
	check("scaled to zero", map[string]string{
		`cortex_host_requests_total{code="200",function="echo"}`: "3",
		`cortex_host_requests_total{code="400",function="echo"}`: "2",
		`cortex_host_cold_starts_total{function="echo"}`:         "1",
		`cortex_host_requests_in_flight{function="echo"}`:        "0",
		`cortex_host_processes{function="echo",state="ready"}`:   "0",
	})

	if a := e.post(t, "/echo/predict", "again"); a.status != http.StatusOK {
		t.Fatalf("request after scale to zero: %d %s", a.status, a.body)
	}
	check("after the next cold start", map[string]string{
		`cortex_host_requests_total{code="200",function="echo"}`: "4",
		`cortex_host_requests_total{code="400",function="echo"}`: "2",
		`cortex_host_cold_starts_total{function="echo"}`:         "2",
		`cortex_host_requests_in_flight{function="echo"}`:        "0",
	})
}
