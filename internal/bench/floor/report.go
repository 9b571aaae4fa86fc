//go:build unix

package main

import (
	"fmt"
	"io"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/cortexfn/cortex/internal/bench/load"
)

// report is what a run prints: as a table, or as JSON with -json.
type report struct {
	Command    string   `json:"command"`
	Cortex     string   `json:"cortex"`
	Clients    int      `json:"clients"`
	Client     string   `json:"client"`
	Duration   string   `json:"duration_per_round"`
	Rounds     int      `json:"rounds"`
	N          int      `json:"cold_samples"`
	GOMAXPROCS int      `json:"gomaxprocs"`
	LoadStart  string   `json:"loadavg_start"`
	LoadEnd    string   `json:"loadavg_end"`
	MeanBatch  float64  `json:"mean_batch_size"` // batching on, from its /metrics
	Rows       []row    `json:"rows"`
	Failures   []string `json:"failures,omitempty"`
}

// row is one line of the table. A throughput row has req/s and
// percentiles, a cold row a median with its min and max (milliseconds);
// Ratio is to the floor's figure of the same kind.
type row struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Unit  string   `json:"unit,omitempty"` // req/s, ms, or "" for a ratio row
	Value *float64 `json:"value,omitempty"`
	P50   float64  `json:"p50_ms,omitempty"`
	P99   float64  `json:"p99_ms,omitempty"`
	Min   float64  `json:"min_ms,omitempty"`
	Max   float64  `json:"max_ms,omitempty"`
	Ratio *float64 `json:"ratio,omitempty"`
	// The lowest and highest ratio of one round (throughput rows).
	RoundsMin float64 `json:"rounds_ratio_min,omitempty"`
	RoundsMax float64 `json:"rounds_ratio_max,omitempty"`
	// The server's CPU time per request, all rounds (throughput rows of
	// one process: not cortex serve's), in microseconds.
	CPU    float64 `json:"cpu_us_per_request,omitempty"`
	Target string  `json:"target,omitempty"`
	Met    *bool   `json:"met,omitempty"`
	Note   string  `json:"note,omitempty"`
	Errors int     `json:"errors,omitempty"`
	Wrong  int     `json:"wrong_answers,omitempty"`
}

const noPorts = "n/a (this cortex has no --ports)"

// rows fills the table from the merged measurements.
func (rep *report) rows(set rowSet, t map[string]*throughput, ports bool, coldFloor, coldFn, zeroFront, zeroDirect []time.Duration) {
	merged := map[string]load.Result{}
	for name, tp := range t {
		m := load.Merge(tp.res)
		merged[name] = m
		if m.Errors+m.Wrong > 0 {
			rep.Failures = append(rep.Failures, fmt.Sprintf("%s: %d failed requests, %d wrong answers; the first: %v", name, m.Errors, m.Wrong, m.Err))
		}
	}
	floor := merged["floor"].RPS()
	tput := func(id, name, key, target string, least float64) row {
		if key == "direct" && !ports {
			return row{ID: id, Name: name, Target: target, Note: noPorts}
		}
		m := merged[key]
		r := row{ID: id, Name: name, Unit: "req/s", Value: ptr(m.RPS()), P50: msf(m.Pct(50)), P99: msf(m.Pct(99)),
			Ratio: ptr(m.RPS() / floor), Target: target, Errors: m.Errors, Wrong: m.Wrong, CPU: cpuPerRequest(t[key])}
		// The spread of the rounds' own ratios says how far to trust
		// the merged one on a shared machine.
		for i, res := range t[key].res {
			q := res.RPS() / t["floor"].res[i].RPS()
			if i == 0 {
				r.RoundsMin, r.RoundsMax = q, q
			}
			r.RoundsMin, r.RoundsMax = min(r.RoundsMin, q), max(r.RoundsMax, q)
		}
		if key != "floor" {
			r.Note = fmt.Sprintf("rounds %.2f-%.2f", r.RoundsMin, r.RoundsMax)
		}
		if least > 0 {
			r.Met = ptr(*r.Ratio >= least)
		}
		return r
	}
	floorMedian := median(coldFloor)
	coldRow := func(id, name string, ds []time.Duration, target bool) row {
		if len(ds) == 0 {
			return row{ID: id, Name: name, Target: fmt.Sprintf("<= %.2f", keepFactor), Note: noPorts}
		}
		m := median(ds)
		r := row{ID: id, Name: name, Unit: "ms", Value: ptr(msf(m)), Min: msf(slices.Min(ds)), Max: msf(slices.Max(ds)),
			Ratio: ptr(float64(m) / float64(floorMedian))}
		if target {
			r.Target = fmt.Sprintf("<= %.2f", keepFactor)
			r.Met = ptr(*r.Ratio <= keepFactor)
		}
		return r
	}
	all := []struct {
		n int // the row, 0 for the floor
		r func() row
	}{
		{0, func() row { return tput("floor", "floor: bare Go server + ONNX Runtime", "floor", "", 0) }},
		{1, func() row {
			return tput("packaged", "1. packaged function binary, direct", "packaged", ">= 0.92", 0.92)
		}},
		{2, func() row { return tput("serve_front", "2. cortex serve warm, shared front", "front", "", 0) }},
		{2, func() row { return tput("serve_port", "2. cortex serve warm, own port", "direct", ">= 0.85", 0.85) }},
		{3, func() row { return coldRow("cold_floor", "3. cold start, floor: exec to first 200", coldFloor, false) }},
		{3, func() row { return coldRow("cold_packaged", "3. cold start, packaged binary", coldFn, true) }},
		{4, func() row { return coldRow("from_zero_front", "4. from zero, cortex serve front", zeroFront, true) }},
		{4, func() row { return coldRow("from_zero_port", "4. from zero, cortex serve own port", zeroDirect, true) }},
		{5, func() row { return tput("batching_off", "5. batching off (row 1)", "packaged", "", 0) }},
		{5, func() row {
			return tput("batching_on", fmt.Sprintf("5. batching on (%d, %s)", maxBatch, batchInterval), "on", "", 0)
		}},
		{5, func() row { return tput("zero_work", "5. zero-work HTTP server", "zero", "", 0) }},
		{5, func() row { return batchingShare(merged, t) }},
	}
	rep.Rows = nil
	for _, x := range all {
		if x.n == 0 || set[x.n] {
			rep.Rows = append(rep.Rows, x.r())
		}
	}
}

// batchingShare is row 5's figure, (on - off) / (zero - off) in req/s. The
// note has the same share from the servers' CPU time per request, which a
// shared machine disturbs less: at a fixed CPU budget req/s goes as
// 1/CPU per request.
func batchingShare(merged map[string]load.Result, t map[string]*throughput) row {
	off, on, zero := merged["packaged"].RPS(), merged["on"].RPS(), merged["zero"].RPS()
	share := (on - off) / (zero - off)
	r := row{ID: "batching_share", Name: "5. (on - off) / (zero - off)", Ratio: ptr(share), Target: ">= 0.5", Met: ptr(share >= 0.5),
		Note: fmt.Sprintf("on/off %.2f, zero/off %.2f", on/off, zero/off)}
	cOff, cOn, cZero := cpuPerRequest(t["packaged"]), cpuPerRequest(t["on"]), cpuPerRequest(t["zero"])
	if cOff > 0 && cOn > 0 && cZero > 0 {
		r.Note += fmt.Sprintf("; by server CPU per request (off %.1f, on %.1f, zero %.1f µs): %.2f",
			cOff, cOn, cZero, (1/cOn-1/cOff)/(1/cZero-1/cOff))
	}
	return r
}

// cpuPerRequest is t's server CPU time per request over all rounds, in
// microseconds; 0 when it was not measured.
func cpuPerRequest(t *throughput) float64 {
	if t == nil || len(t.cpu) == 0 {
		return 0
	}
	var cpu time.Duration
	n := 0
	for i, c := range t.cpu {
		cpu += c
		n += t.res[i].N
	}
	return perRequest(cpu, n)
}

func (rep *report) writeText(w io.Writer) {
	fmt.Fprintf(w, "\nissue 17: iris, one-row OIP requests to %s from %d keep-alive clients (%s client), %d rounds x %s per throughput row, %d cold samples per row; GOMAXPROCS %d\n",
		inferPath, rep.Clients, rep.Client, rep.Rounds, rep.Duration, rep.N, rep.GOMAXPROCS)
	fmt.Fprintf(w, "%s; %s\n", rep.Command, rep.Cortex)
	fmt.Fprintf(w, "load average at start %s, at end %s\n\n", rep.LoadStart, rep.LoadEnd)
	fmt.Fprintf(w, "%-40s %14s %10s %10s %7s %8s  %s\n", "row", "req/s | median", "p50 | min", "p99 | max", "ratio", "target", "")
	for _, r := range rep.Rows {
		val, a, b := "", "", ""
		switch r.Unit {
		case "req/s":
			val, a, b = fmt.Sprintf("%.0f req/s", *r.Value), fmt.Sprintf("%.2f ms", r.P50), fmt.Sprintf("%.2f ms", r.P99)
		case "ms":
			val, a, b = fmt.Sprintf("%.1f ms", *r.Value), fmt.Sprintf("%.1f ms", r.Min), fmt.Sprintf("%.1f ms", r.Max)
		}
		ratio := ""
		if r.Ratio != nil {
			ratio = fmt.Sprintf("%.3f", *r.Ratio)
		}
		verdict := r.Note
		switch {
		case r.Met == nil:
		case *r.Met:
			verdict = strings.TrimSpace("met  " + r.Note)
		default:
			verdict = strings.TrimSpace("NOT MET  " + r.Note)
		}
		if r.Value == nil && r.Ratio == nil {
			val = "n/a"
		}
		if r.CPU > 0 {
			verdict = strings.TrimSpace(verdict + fmt.Sprintf("  CPU %.1f µs/req", r.CPU))
		}
		fmt.Fprintf(w, "%-40s %14s %10s %10s %7s %8s  %s\n", r.Name, val, a, b, ratio, r.Target, verdict)
	}
	fmt.Fprintln(w, "\nratio: to the floor's req/s (throughput rows), to the floor's cold-start median (cold rows)")
	if rep.MeanBatch > 0 {
		fmt.Fprintf(w, "batching on ran batches of %.1f requests on average (its /metrics)\n", rep.MeanBatch)
	}
	for _, f := range rep.Failures {
		fmt.Fprintln(w, "FAIL", f)
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	n := len(s)
	if n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[n/2]
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ptr[T any](v T) *T { return &v }

func goMaxProcs() int { return goruntime.GOMAXPROCS(0) }
