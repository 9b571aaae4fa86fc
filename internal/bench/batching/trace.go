package main

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/internal/bench/load"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/onnx"
)

// tracer timestamps each request of a traced server: where the HTTP
// handler starts and ends, and the batch it ran in. The handler gives every
// request its sequence number as its request id (X-Request-Id), so the
// predictor knows which record a request of a batch is.
type tracer struct {
	base time.Time
	next atomic.Int64
	recs []record // indexed by sequence number; written once per phase
}

// record is one request; times are from tracer.base.
type record struct {
	in, out    time.Duration // the runtime's HTTP handler
	start, end time.Duration // the PredictBatch call the request was in
	size       int           // members of that batch; 0: not batched
}

func newTracer(n int) *tracer { return &tracer{base: time.Now(), recs: make([]record, n)} }

// wrap is the handler that timestamps the runtime's.
func (t *tracer) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := t.next.Add(1) - 1
		if i >= int64(len(t.recs)) {
			h.ServeHTTP(w, r)
			return
		}
		rec := &t.recs[i]
		rec.in = time.Since(t.base)
		r.Header["X-Request-Id"] = []string{strconv.FormatInt(i, 10)}
		h.ServeHTTP(w, r)
		rec.out = time.Since(t.base)
	})
}

// tracedPredictor is the built-in ONNX predictor with its PredictBatch
// calls timed.
type tracedPredictor struct {
	*onnx.Predictor
	t *tracer
}

func (p tracedPredictor) PredictBatch(ctx context.Context, reqs []*functions.Request) ([]*functions.Response, error) {
	start := time.Since(p.t.base)
	resps, err := p.Predictor.PredictBatch(ctx, reqs)
	end := time.Since(p.t.base)
	for _, r := range reqs {
		if i, err := strconv.Atoi(r.ID); err == nil && i < len(p.t.recs) {
			p.t.recs[i].start, p.t.recs[i].end, p.t.recs[i].size = start, end, len(reqs)
		}
	}
	return resps, err
}

// traceBatching serves iris with batching on, instrumented, loads it as
// the measured rounds do, and prints where a batched request's time goes.
func traceBatching(model string, b runtime.Batching, conns int, d time.Duration, runLoad func(string, time.Duration) load.Result) {
	t := newTracer(4 << 20)
	cfg := runtime.Config{Name: "iris", Predictor: runtime.PredictorConfig{Type: "onnx", Model: model},
		Limits: runtime.Limits{MaxConcurrency: conns, MaxQueue: 1024}, Batching: b}
	base, _, stop := serve(tracedPredictor{onnx.New(), t}, cfg, t.wrap)
	defer stop()
	runLoad(base+"/predict", time.Second) // warm up
	first := t.next.Load()
	sum0, n0 := scrape(base, "cortex_batch_wait_seconds")
	res := load.Merge([]load.Result{runLoad(base+"/predict", d)})
	last := min(t.next.Load(), int64(len(t.recs)))
	sum1, n1 := scrape(base, "cortex_batch_wait_seconds")
	waitSum, waitN := sum1-sum0, max(n1-n0, 1)

	var gather, run, answer, handler []time.Duration
	var sizes []int
	for _, r := range t.recs[first:last] {
		if r.size == 0 || r.out == 0 {
			continue
		}
		handler = append(handler, r.out-r.in)
		gather = append(gather, r.start-r.in)
		run = append(run, r.end-r.start)
		answer = append(answer, r.out-r.end)
		sizes = append(sizes, r.size)
	}
	if len(handler) == 0 {
		log.Print("trace: no batched request recorded")
		return
	}
	meanSize := 0.0
	for _, s := range sizes {
		meanSize += float64(s)
	}
	meanSize /= float64(len(sizes))
	wait := time.Duration(waitSum / waitN * float64(time.Second))
	fmt.Printf("\nwhere a batched request's time goes (-trace: batching on, %d requests, mean batch %.1f; %.0f rows/s, client p50 %s)\n",
		len(handler), meanSize, res.RPS(), res.Pct(50))
	fmt.Printf("%-72s %10s %10s\n", "phase", "mean", "p50")
	row := func(name string, ds []time.Duration) {
		fmt.Printf("%-72s %10s %10s\n", name, mean(ds), pct(ds, 50))
	}
	row("in the runtime's handler, in all", handler)
	row("  gather: carrier, admission, handoff to a worker, join, batch closes", gather)
	fmt.Printf("%-72s %10s\n", "    of which waiting in the open batch (cortex_batch_wait_seconds)", wait.Round(time.Microsecond))
	row("  the batch's PredictBatch: decode, concatenate, run, split, encode", run)
	row("  answer: members woken, post stage, caller woken, response written", answer)
	fmt.Printf("%-72s %10s %10s\n", "the client's round trip (adds reading, writing, waiting for a core)", mean(res.Lat), res.Pct(50))
}

// scrape reads a histogram's sum and count from the function's /metrics.
func scrape(base, name string) (sum, count float64) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		switch {
		case strings.HasPrefix(line, name+"_sum"):
			sum = v
		case strings.HasPrefix(line, name+"_count"):
			count = v
		}
	}
	return sum, count
}

func mean(ds []time.Duration) time.Duration {
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return (s / time.Duration(max(len(ds), 1))).Round(time.Microsecond)
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)*p/100, len(s)-1)].Round(time.Microsecond)
}
