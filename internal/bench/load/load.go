// Package load is what the bench programs share: a load generator (a fixed
// number of concurrent keep-alive clients POSTing for a fixed time, every
// successful request's latency recorded, every answer's body checked when
// a Check is given) and the iris function served in process.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/onnx"
)

// Result is one load run, or several merged.
type Result struct {
	N, Errors int
	// Wrong counts the 200 answers a Check refused (RunChecked,
	// RunRawChecked); they are counted in neither N nor Errors.
	Wrong   int
	Err     error // the first failure or wrong answer seen, nil if none
	Elapsed time.Duration
	Lat     []time.Duration // sorted by Merge
}

// Check says what is wrong with a 200 answer's body, or nil when it is
// right. A load run calls it from every client at once.
type Check func(body []byte) error

// ErrWrongAnswer marks, in Result.Err, a 200 answer a Check refused.
var ErrWrongAnswer = errors.New("load: wrong answer")

// Run has conns clients POST bodies (round robin, each client starting at
// its own index) to url for d. A request that fails or answers other than
// 200 counts as an error.
func Run(client *http.Client, url string, bodies []string, conns int, d time.Duration) Result {
	return RunChecked(client, url, bodies, conns, d, nil)
}

// RunChecked is Run that also checks the body of every 200 answer with
// check (nil: none is checked).
func RunChecked(client *http.Client, url string, bodies []string, conns int, d time.Duration, check Check) Result {
	return drive(conns, d, func(int) (func(i int) error, func()) {
		ck := checker{check: check}
		var buf bytes.Buffer
		send := func(i int) error {
			resp, err := client.Post(url, "application/json", strings.NewReader(bodies[i%len(bodies)]))
			if err != nil {
				return err
			}
			buf.Reset()
			_, err = buf.ReadFrom(resp.Body)
			resp.Body.Close()
			switch {
			case err != nil:
				return err
			case resp.StatusCode != http.StatusOK:
				return fmt.Errorf("status %d: %.200s", resp.StatusCode, bytes.TrimSpace(buf.Bytes()))
			}
			return ck.ok(buf.Bytes())
		}
		return send, func() {}
	})
}

// checker runs a Check for one client. An answer byte for byte the same
// as the last one that passed is not checked again: a load repeats a few
// requests, and decoding every answer would take CPU from the server
// under test on a small machine, yet every answer is known right.
type checker struct {
	check Check
	good  []byte
}

func (c *checker) ok(body []byte) error {
	if c.check == nil || c.good != nil && bytes.Equal(body, c.good) {
		return nil
	}
	if err := c.check(body); err != nil {
		return fmt.Errorf("%w: %w", ErrWrongAnswer, err)
	}
	c.good = bytes.Clone(body)
	return nil
}

// drive runs conns clients for d. newClient(c) gives client c its send
// function (it sends request number i and returns nil when a right 200
// came back) and what closes the client; every successful request's
// latency is recorded.
func drive(conns int, d time.Duration, newClient func(c int) (send func(i int) error, close func())) Result {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		res      Result
		errs     atomic.Int64
		wrong    atomic.Int64
		firstErr atomic.Pointer[error]
		cutoff   = time.Now().Add(d)
	)
	start := time.Now()
	for c := range conns {
		wg.Go(func() {
			send, closeClient := newClient(c)
			defer closeClient()
			lat := make([]time.Duration, 0, 4096)
			for i := c; time.Now().Before(cutoff); i++ {
				t0 := time.Now()
				if err := send(i); err != nil {
					if errors.Is(err, ErrWrongAnswer) {
						wrong.Add(1)
					} else {
						errs.Add(1)
					}
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.Lat = append(res.Lat, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.N = len(res.Lat)
	res.Errors = int(errs.Load())
	res.Wrong = int(wrong.Load())
	if p := firstErr.Load(); p != nil {
		res.Err = *p
	}
	return res
}

// Merge adds runs together and sorts the latencies.
func Merge(rs []Result) Result {
	var m Result
	for _, r := range rs {
		m.N += r.N
		m.Errors += r.Errors
		m.Wrong += r.Wrong
		if m.Err == nil {
			m.Err = r.Err
		}
		m.Elapsed += r.Elapsed
		m.Lat = append(m.Lat, r.Lat...)
	}
	slices.Sort(m.Lat)
	return m
}

// RPS is the successful requests per second.
func (r Result) RPS() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// Pct is the p-th percentile latency of a merged result.
func (r Result) Pct(p int) time.Duration {
	if len(r.Lat) == 0 {
		return 0
	}
	i := min(len(r.Lat)*p/100, len(r.Lat)-1)
	return r.Lat[i].Round(time.Microsecond)
}

// ServeIris serves the iris model the way a packaged function does (the
// runtime with the built-in ONNX predictor behind the HTTP carrier) on a
// loopback port, waits until it is ready, and returns its /predict URL and
// a function that stops it.
func ServeIris(model string, limits runtime.Limits, batching runtime.Batching) (string, func()) {
	cfg := runtime.Config{
		Name:      "iris",
		Predictor: runtime.PredictorConfig{Type: "onnx", Model: model},
		Limits:    limits,
		Batching:  batching,
	}
	rt, err := runtime.New(onnx.New(), cfg, runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := rt.Serve(ctx, ln); err != nil {
			log.Fatal(err)
		}
	}()
	for !rt.Ready() {
		time.Sleep(10 * time.Millisecond)
	}
	return "http://" + ln.Addr().String() + "/predict", func() { cancel(); <-done }
}

// Checks prints a bench program's assertions, one a line ("ok  " or
// "FAIL" and what was checked), and counts those that failed.
type Checks struct {
	w      io.Writer
	Failed int
}

// NewChecks returns Checks that print to w.
func NewChecks(w io.Writer) *Checks { return &Checks{w: w} }

// Check prints what, marked by ok, and counts it when it failed.
func (c *Checks) Check(ok bool, what string) {
	mark := "ok  "
	if !ok {
		mark = "FAIL"
		c.Failed++
	}
	fmt.Fprintf(c.w, "%s %s\n", mark, what)
}
