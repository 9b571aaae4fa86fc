// Command overload checks the iris function under sustained overload: it
// builds the function's binary the way cortex does, with small limits
// (max_concurrency 8, max_queue 8 by default), runs it as a child process
// on loopback, and drives twice its capacity, 2 x (max_concurrency +
// max_queue) concurrent clients, for the duration. Meanwhile it polls
// /healthz every 100ms and samples the child's RSS every 250ms.
//
// It asserts that every accepted request (200) is correct (label 0 for the
// setosa flower), that every refused request is a 503 with Retry-After (any
// other status or transport error is a failure), that /healthz answered 200
// every time, that memory stays bounded (no climb between the first and the
// last 10 seconds), and that the child stops cleanly on SIGTERM. It exits
// non-zero when any assertion fails. Linux only for the RSS (/proc).
//
//	go run ./internal/bench/overload [-d 30s]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cortexfn/cortex/internal/bench/load"
	"github.com/cortexfn/cortex/packager/build"
	"github.com/cortexfn/cortex/packager/spec"
)

// setosaBody is an OIP request of rows copies of a setosa flower.
func setosaBody(rows int) string {
	data := strings.TrimSuffix(strings.Repeat("5.1,3.5,1.4,0.2,", rows), ",")
	return fmt.Sprintf(`{"inputs":[{"name":"input","shape":[%d,4],"datatype":"FP32","data":[%s]}]}`, rows, data)
}

// maxDuration bounds -d: the bench task must stay bounded in time.
const maxDuration = 5 * time.Minute

func main() {
	dur := flag.Duration("d", 30*time.Second, "duration of the sustained load (at most 5m)")
	conc := flag.Int("max-concurrency", 8, "the function's limits.max_concurrency")
	queue := flag.Int("max-queue", 8, "the function's limits.max_queue")
	dir := flag.String("dir", "samples/iris", "function directory")
	rows := flag.Int("rows", 1, "setosa rows per request (more makes each prediction longer)")
	growthLimit := flag.Int64("max-growth-mib", 16, "largest allowed RSS growth, mean of the last window over the first, in MiB")
	flag.Parse()
	if *dur <= 0 || *dur > maxDuration {
		log.Fatalf("-d must be in (0, %s]", maxDuration)
	}
	if *rows < 1 {
		log.Fatal("-rows must be at least 1")
	}
	if *conc < 1 || *queue < 0 {
		log.Fatal("-max-concurrency must be at least 1 and -max-queue at least 0")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, *dur, *conc, *queue, *rows, *growthLimit<<20); err != nil {
		fmt.Fprintln(os.Stderr, "overload:", err)
		os.Exit(1)
	}
}

// child is the function's process.
type child struct {
	cmd    *exec.Cmd
	url    string // http://127.0.0.1:port
	logs   string // file holding its stdout and stderr
	exited chan struct{}
	err    error // Wait's result, once exited is closed
}

func run(ctx context.Context, dir string, dur time.Duration, conc, queue, rows int, growthLimit int64) error {
	tmp, err := os.MkdirTemp("", "cortex-overload-")
	if err != nil {
		return err
	}
	keepLogs := false
	defer func() {
		if !keepLogs {
			_ = os.RemoveAll(tmp)
		}
	}()

	c, err := start(ctx, dir, tmp, conc, queue)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = c.stop()
		}
	}()
	if err := c.waitReady(ctx, 2*time.Minute); err != nil {
		keepLogs = true
		return fmt.Errorf("%w (child's logs: %s)", err, c.logs)
	}

	clients := 2 * (conc + queue)
	pid := c.cmd.Process.Pid
	sampler := sampleRSS(pid, 250*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // an idle sample or two first
	health := pollHealth(c.url+"/healthz", 100*time.Millisecond)
	ld := drive(ctx, c.url+"/predict", setosaBody(rows), rows, clients, dur)
	h := health.stop()
	rss := sampler.stop()

	stopped = true
	stopErr := c.stop()

	r := report{
		conc: conc, queue: queue, clients: clients, rows: rows, dur: dur,
		load: ld, health: h, rss: rss, stopErr: stopErr, growthLimit: growthLimit,
	}
	failed := r.print(os.Stdout)
	if failed > 0 {
		keepLogs = true
		return fmt.Errorf("%d assertion(s) failed (child's logs: %s)", failed, c.logs)
	}
	return nil
}

// start builds the function as cortex serve does, writes its runtime
// configuration with the given limits, and starts it on a loopback port.
func start(ctx context.Context, dir, tmp string, conc, queue int) (*child, error) {
	s, err := spec.Load(dir)
	if err != nil {
		return nil, err
	}
	bin, err := build.Binary(ctx, build.Options{Dir: dir, Spec: s, Progress: os.Stderr})
	if err != nil {
		return nil, err
	}
	rc, err := build.RuntimeConfig(ctx, s, "", os.Stderr)
	if err != nil {
		return nil, err
	}
	rc.Limits.MaxConcurrency = conc
	rc.Limits.MaxQueue = queue
	if queue == 0 {
		rc.Limits.MaxQueue = -1 // zero would mean the default; negative is none
	}
	cfg := filepath.Join(tmp, s.Name+".json")
	if err := build.WriteConfig(rc, cfg); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logs := filepath.Join(tmp, s.Name+".log")
	lf, err := os.Create(logs)
	if err != nil {
		return nil, err
	}
	defer lf.Close() // the child holds its own descriptor
	cmd := exec.Command(bin.Path)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "PORT="+port, "CORTEX_HOST=127.0.0.1", "CORTEX_CONFIG="+cfg)
	cmd.Stdout, cmd.Stderr = lf, lf
	load.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, url: "http://127.0.0.1:" + port, logs: logs, exited: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.exited) }()
	return c, nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

func (c *child) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	cl := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			return fmt.Errorf("the function exited before it was ready: %v", c.err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := cl.Get(c.url + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the function was not ready within %s", limit)
}

// stop sends SIGTERM and waits for the child to exit, killing it if it has
// not within its shutdown timeout plus a margin. A clean exit is nil.
func (c *child) stop() error {
	select {
	case <-c.exited:
		return fmt.Errorf("the function had already exited: %v", c.err)
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return c.err
	case <-time.After(40 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return errors.New("the function did not exit within 40s of SIGTERM; killed")
	}
}

// loadResult is what the clients saw.
type loadResult struct {
	accepted load.Result  // 200s that were correct, with their latencies
	refused  int64        // 503 with Retry-After
	wrong    int64        // 200 with a wrong or unreadable answer
	noRetry  int64        // 503 without Retry-After
	other    int64        // any other status
	failed   int64        // transport errors
	example  atomic.Value // the first failure, as text
}

func (l *loadResult) fail(n *int64, format string, args ...any) {
	atomic.AddInt64(n, 1)
	l.example.CompareAndSwap(nil, fmt.Sprintf(format, args...))
}

// drive has clients concurrent keep-alive clients POST body (rows setosa flowers)
// for d, without backing off: a refused client asks again at once.
func drive(ctx context.Context, url, body string, rows, clients int, d time.Duration) *loadResult {
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients},
	}
	defer client.CloseIdleConnections()
	res := &loadResult{}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		lats   []time.Duration
		cutoff = time.Now().Add(d)
	)
	start := time.Now()
	for range clients {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 8192)
			for time.Now().Before(cutoff) && ctx.Err() == nil {
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					res.fail(&res.failed, "transport error: %v", err)
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				took := time.Since(t0)
				switch {
				case err != nil:
					res.fail(&res.failed, "reading the answer: %v", err)
				case resp.StatusCode == http.StatusOK:
					if err := checkSetosa(b, rows); err != nil {
						res.fail(&res.wrong, "wrong answer: %v: %s", err, b)
						continue
					}
					lat = append(lat, took)
				case resp.StatusCode == http.StatusServiceUnavailable:
					if resp.Header.Get("Retry-After") == "" {
						res.fail(&res.noRetry, "503 without Retry-After: %s", b)
						continue
					}
					atomic.AddInt64(&res.refused, 1)
				default:
					res.fail(&res.other, "status %d: %s", resp.StatusCode, b)
				}
			}
			mu.Lock()
			lats = append(lats, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.accepted = load.Merge([]load.Result{{N: len(lats), Elapsed: time.Since(start), Lat: lats}})
	return res
}

// checkSetosa checks an OIP answer gives label 0 for each of the rows.
func checkSetosa(b []byte, rows int) error {
	var r struct {
		Outputs []struct {
			Name string            `json:"name"`
			Data []json.RawMessage `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	for _, o := range r.Outputs {
		if o.Name == "label" {
			if len(o.Data) != rows {
				return fmt.Errorf("%d labels, want %d", len(o.Data), rows)
			}
			for _, v := range o.Data {
				if string(v) != "0" {
					return fmt.Errorf("label %s, want 0", v)
				}
			}
			return nil
		}
	}
	return errors.New("no label output")
}

// healthResult is what the /healthz poller saw.
type healthResult struct {
	ok, failed int
	max        time.Duration
	example    string
}

type poller struct {
	done chan struct{}
	res  chan healthResult
}

func (p *poller) stop() healthResult { close(p.done); return <-p.res }

// pollHealth GETs url every interval on its own connection until stopped.
func pollHealth(url string, every time.Duration) *poller {
	p := &poller{done: make(chan struct{}), res: make(chan healthResult, 1)}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1}}
	go func() {
		var h healthResult
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				client.CloseIdleConnections()
				p.res <- h
				return
			case <-t.C:
			}
			t0 := time.Now()
			resp, err := client.Get(url)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			h.max = max(h.max, time.Since(t0))
			if err != nil {
				h.failed++
				if h.example == "" {
					h.example = err.Error()
				}
			} else {
				h.ok++
			}
		}
	}()
	return p
}

// rssSample is the child's resident set at a time.
type rssSample struct {
	at  time.Duration // since sampling began
	rss int64         // bytes
}

type sampler struct {
	done chan struct{}
	res  chan []rssSample
}

func (s *sampler) stop() []rssSample { close(s.done); return <-s.res }

// sampleRSS reads VmRSS from /proc/PID/status every interval until stopped.
func sampleRSS(pid int, every time.Duration) *sampler {
	s := &sampler{done: make(chan struct{}), res: make(chan []rssSample, 1)}
	go func() {
		var out []rssSample
		start := time.Now()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if v, err := load.VMRSS(pid); err == nil {
				out = append(out, rssSample{time.Since(start), v})
			}
			select {
			case <-s.done:
				s.res <- out
				return
			case <-t.C:
			}
		}
	}()
	return s
}

type report struct {
	conc, queue, clients int
	rows                 int
	dur                  time.Duration
	load                 *loadResult
	health               healthResult
	rss                  []rssSample
	stopErr              error
	growthLimit          int64
}

// print writes the table and returns how many assertions failed.
func (r report) print(w io.Writer) int {
	l := r.load
	secs := l.accepted.Elapsed.Seconds()
	fmt.Fprintf(w, "iris under overload: max_concurrency %d, max_queue %d, %d concurrent clients (2x capacity), %d setosa row(s) per request, %s, loopback\n",
		r.conc, r.queue, r.clients, r.rows, l.accepted.Elapsed.Round(10*time.Millisecond))
	fmt.Fprintf(w, "%-34s %14s\n", "measure", "value")
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "%-34s %14s\n", k, fmt.Sprintf(format, args...)) }
	row("accepted (200, label 0)", "%d", l.accepted.N)
	row("accepted req/s", "%.0f", float64(l.accepted.N)/secs)
	row("accepted p50", "%s", l.accepted.Pct(50))
	row("accepted p99", "%s", l.accepted.Pct(99))
	row("refused (503 + Retry-After)", "%d", l.refused)
	row("refused req/s", "%.0f", float64(l.refused)/secs)
	row("refused share", "%.1f%%", 100*float64(l.refused)/float64(max(1, int64(l.accepted.N)+l.refused)))
	row("wrong 200 answers", "%d", l.wrong)
	row("503 without Retry-After", "%d", l.noRetry)
	row("other statuses", "%d", l.other)
	row("transport errors", "%d", l.failed)
	row("/healthz polls (every 100ms)", "%d", r.health.ok+r.health.failed)
	row("/healthz failures", "%d", r.health.failed)
	row("/healthz max latency", "%s", r.health.max.Round(time.Microsecond))

	var start, peak, end, first, last int64
	if n := len(r.rss); n > 0 {
		start, end = r.rss[0].rss, r.rss[n-1].rss
		for _, s := range r.rss {
			peak = max(peak, s.rss)
		}
		// The windows: the first and last 10s of the run (a third of it
		// when shorter than 30s, so they do not overlap).
		win := min(10*time.Second, r.rss[n-1].at/3)
		first = meanRSS(r.rss, 0, win)
		last = meanRSS(r.rss, r.rss[n-1].at-win, r.rss[n-1].at+1)
		row("RSS window", "%s", win.Round(time.Millisecond))
	}
	row("RSS start (idle, ready)", "%s", mib(start))
	row("RSS peak", "%s", mib(peak))
	row("RSS end", "%s", mib(end))
	row("RSS mean, first window", "%s", mib(first))
	row("RSS mean, last window", "%s", mib(last))
	row("RSS growth, last - first", "%s", mib(last-first))
	row("RSS samples (every 250ms)", "%d", len(r.rss))
	stopped := "clean"
	if r.stopErr != nil {
		stopped = r.stopErr.Error()
	}
	row("exit on SIGTERM", "%s", stopped)

	checks := load.NewChecks(w)
	check := checks.Check
	fmt.Fprintln(w)
	check(l.accepted.N > 0, "some requests were accepted")
	check(l.wrong == 0, "every accepted request answered label 0 (setosa)")
	check(l.refused > 0, "the excess was refused (the load did exceed capacity)")
	check(l.noRetry == 0 && l.other == 0 && l.failed == 0, "every refused request was a 503 with Retry-After; no other status, no transport error")
	check(r.health.failed == 0 && r.health.ok > 0, "/healthz answered 200 every time")
	check(len(r.rss) > 0 && last-first <= r.growthLimit,
		fmt.Sprintf("memory bounded: RSS growth between the first and last window <= %s", mib(r.growthLimit)))
	check(r.stopErr == nil, "the function exited cleanly on SIGTERM")
	if v := l.example.Load(); v != nil {
		fmt.Fprintf(w, "first request failure: %s\n", v)
	}
	if r.health.example != "" {
		fmt.Fprintf(w, "first /healthz failure: %s\n", r.health.example)
	}
	return checks.Failed
}

func meanRSS(s []rssSample, from, to time.Duration) int64 {
	var sum, n int64
	for _, x := range s {
		if x.at >= from && x.at < to {
			sum += x.rss
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / n
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
