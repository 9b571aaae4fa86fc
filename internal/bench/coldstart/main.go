//go:build unix

// Command coldstart measures, side by side in one run, what the iris sample
// costs through cortex serve's host (runtime/host) and what a Python server
// costs for the same first request:
//
//   - cortex cold start: the first request to an idle iris function. The
//     binary is built once (packager/build, as cortex serve does); then each
//     round makes a fresh host.New with min_scale 0 and times one
//     POST /iris/predict from send to full response: spawn, /readyz,
//     proxying and the prediction. The host is shut down after each round.
//   - Python cold start: internal/bench/coldstart/server.py (FastAPI +
//     uvicorn + scikit-learn, loading the same iris.onnx weights into a
//     LogisticRegression), timed from process start to its first 200 answer
//     to the same request, polled by POSTing until it answers.
//   - warm latency: the same request, sequentially, to a warm process
//     through the host and straight to the process (its address from
//     host.Status); the p50 difference is what the proxy adds.
//   - throughput ceiling: the same request from many concurrent clients,
//     through the host and straight to the process.
//
// The rounds alternate between the two sides so drift on the machine hits
// both. One unmeasured round of each side comes first, so both start from
// a warm page cache (the cortex binary is cached, Python's imports are on
// disk). Everything is on loopback and bounded in time; every process
// started is stopped, and checked gone by PID, before the program exits.
//
//	go run ./internal/bench/coldstart [-rounds 7] [-n 2000] [-c 32] [-d 3s]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cortexfn/cortex/packager/build"
	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime/host"
)

// body is the setosa example (samples/iris/examples/setosa.json).
const body = `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`

type config struct {
	dir     string
	python  string
	server  string
	rounds  int
	n       int
	conns   int
	dur     time.Duration
	timeout time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.dir, "dir", "samples/iris", "the iris function directory")
	flag.StringVar(&c.python, "python", "/usr/bin/python3", "Python with fastapi, uvicorn, scikit-learn and onnx")
	flag.StringVar(&c.server, "server", "internal/bench/coldstart/server.py", "the Python baseline server")
	flag.IntVar(&c.rounds, "rounds", 7, "cold-start rounds per side")
	flag.IntVar(&c.n, "n", 2000, "sequential warm requests per path")
	flag.IntVar(&c.conns, "c", 32, "concurrent clients for the throughput ceiling")
	flag.DurationVar(&c.dur, "d", 3*time.Second, "measured duration of each throughput run")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("coldstart: ")

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancelTimeout := context.WithTimeout(ctx, c.timeout)
	b := &bench{config: c}
	err := b.run(ctx)
	cancelTimeout()
	cancel()
	if leftErr := b.checkNoneLeft(); leftErr != nil {
		err = errors.Join(err, leftErr)
	}
	if err != nil {
		log.Fatal(err)
	}
}

type bench struct {
	config
	fn    host.Function
	model string

	mu   sync.Mutex
	pids map[int]bool // every process started, to check none is left
}

func (b *bench) run(ctx context.Context) error {
	configDir, err := os.MkdirTemp("", "cortex-coldstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(configDir)
	if err := b.setup(ctx, configDir); err != nil {
		return err
	}

	// Cold starts, alternating, after one unmeasured round each.
	var cortexCold, hostReady, pyCold []time.Duration
	var pyAnswer []byte
	fmt.Fprintf(os.Stderr, "cold starts: 1 warm-up + %d rounds per side\n", b.rounds)
	for i := -1; i < b.rounds; i++ {
		d, ready, err := b.cortexCold(ctx)
		if err != nil {
			return fmt.Errorf("cortex cold start: %w", err)
		}
		pd, answer, err := b.pythonCold(ctx)
		if err != nil {
			return fmt.Errorf("python cold start: %w", err)
		}
		fmt.Fprintf(os.Stderr, "  round %d: cortex %s (spawn to ready %s), python %s\n", i+1, ms(d), ms(ready), ms(pd))
		if i < 0 {
			continue // the warm-up round
		}
		cortexCold = append(cortexCold, d)
		hostReady = append(hostReady, ready)
		pyCold = append(pyCold, pd)
		pyAnswer = answer
	}
	if err := sameAnswer(pyAnswer); err != nil {
		return fmt.Errorf("python answer: %w", err)
	}

	// Warm latency and throughput, through one host with one process.
	w, err := b.warm(ctx)
	if err != nil {
		return fmt.Errorf("warm: %w", err)
	}

	b.report(cortexCold, hostReady, pyCold, w)
	if n := w.hostErrors + w.directErrors; n > 0 {
		return fmt.Errorf("%d failed requests under load", n)
	}
	return nil
}

// setup builds the function as cortex serve does (hostFunction) and checks
// the Python side can start.
func (b *bench) setup(ctx context.Context, configDir string) error {
	b.pids = map[int]bool{}
	s, err := spec.Load(b.dir)
	if err != nil {
		return err
	}
	bin, err := build.Binary(ctx, build.Options{Dir: b.dir, Spec: s, Progress: os.Stderr})
	if err != nil {
		return err
	}
	rc, err := build.RuntimeConfig(ctx, s, "", os.Stderr)
	if err != nil {
		return err
	}
	cfg := filepath.Join(configDir, s.Name+".json")
	if err := build.WriteConfig(rc, cfg); err != nil {
		return err
	}
	a := s.Autoscaling
	b.fn = host.Function{
		Name:    s.Name,
		Command: []string{bin.Path},
		Env:     []string{"CORTEX_CONFIG=" + cfg, "CORTEX_HOST=127.0.0.1"},
		Dir:     s.Dir,
		Scale: host.Autoscaling{
			MinScale:          a.MinScale,
			MaxScale:          a.MaxScale,
			TargetConcurrency: a.TargetConcurrency,
			ScaleDownDelay:    a.ScaleDownDelay,
			StableWindow:      a.Window,
		},
		MaxQueue: rc.Limits.WithDefaults().MaxQueue,
	}
	if b.fn.Scale.MinScale != 0 {
		return fmt.Errorf("%s: autoscaling.min_scale is %d; a cold start needs 0", b.dir, b.fn.Scale.MinScale)
	}
	if b.model, err = filepath.Abs(filepath.Join(s.Dir, s.Predictor.Model)); err != nil {
		return err
	}
	if _, err := os.Stat(b.server); err != nil {
		return fmt.Errorf("the Python server: %w (run from the repository root)", err)
	}
	probe := exec.CommandContext(ctx, b.python, "-c", "import fastapi, uvicorn, sklearn, onnx")
	if out, err := probe.CombinedOutput(); err != nil {
		return fmt.Errorf("%s cannot import fastapi, uvicorn, sklearn and onnx (apt-get install -y python3-fastapi python3-uvicorn python3-sklearn python3-onnx): %w\n%s", b.python, err, out)
	}
	return nil
}

// served is a host behind a front server on a loopback port.
type served struct {
	h    *host.Host
	srv  *http.Server
	url  string // http://127.0.0.1:port/iris/predict
	done chan struct{}
}

func (b *bench) serve(fn host.Function) (*served, error) {
	h, err := host.New([]host.Function{fn},
		host.WithLogWriter(io.Discard),
		host.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		host.WithEvents(func(ev host.Event) {
			if ev.Type == host.EventStart {
				b.track(ev.PID)
			}
		}))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = h.Shutdown(context.Background())
		return nil, err
	}
	s := &served{
		h:    h,
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		url:  "http://" + ln.Addr().String() + "/" + fn.Name + "/predict",
		done: make(chan struct{}),
	}
	go func() { defer close(s.done); _ = s.srv.Serve(ln) }()
	return s, nil
}

// stop drains the host's processes (killing them after 30s) and closes
// the front server.
func (s *served) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.h.Shutdown(ctx)
	_ = s.srv.Close()
	<-s.done
	return err
}

// cortexCold times the first request to a fresh host with the function at
// zero processes, and returns the host's own spawn-to-ready time too.
func (b *bench) cortexCold(ctx context.Context) (took, ready time.Duration, err error) {
	s, err := b.serve(b.fn)
	if err != nil {
		return 0, 0, err
	}
	defer func() { err = errors.Join(err, s.stop()) }()
	if st := s.h.Status()[0]; len(st.Processes) != 0 {
		return 0, 0, fmt.Errorf("not idle: %d process(es) before the first request", len(st.Processes))
	}
	c := newClient(1, 60*time.Second)
	defer c.CloseIdleConnections()
	start := time.Now()
	answer, err := post(ctx, c, s.url)
	took = time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	if err := sameAnswer(answer); err != nil {
		return 0, 0, err
	}
	st := s.h.Status()[0]
	if st.ColdStarts != 1 {
		return 0, 0, fmt.Errorf("%d cold starts, want 1", st.ColdStarts)
	}
	return took, st.LastColdStart, nil
}

// pythonCold starts server.py and times process start to the first 200
// answer, polling with the same POST every millisecond.
func (b *bench) pythonCold(ctx context.Context) (took time.Duration, answer []byte, err error) {
	port, err := freePort()
	if err != nil {
		return 0, nil, err
	}
	cmd := exec.Command(b.python, b.server, "--model", b.model, "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/predict"

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	b.track(cmd.Process.Pid)
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() { err = errors.Join(err, stopGroup(cmd.Process.Pid, exited)) }()

	c := newClient(1, time.Second)
	defer c.CloseIdleConnections()
	deadline := start.Add(60 * time.Second)
	for {
		answer, err := post(ctx, c, url)
		if err == nil {
			return time.Since(start), answer, nil
		}
		var status *statusError
		if errors.As(err, &status) {
			return 0, nil, err // it answered, but not 200: no point polling on
		}
		select {
		case <-exited:
			return 0, nil, fmt.Errorf("server.py exited before answering: %s", strings.TrimSpace(stderr.String()))
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, nil, fmt.Errorf("no answer within 60s: %w", err)
		}
	}
}

// stopGroup ends the process group led by pid: SIGTERM, then SIGKILL
// after 10s.
func stopGroup(pid int, exited <-chan struct{}) error {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
	}
	// uvicorn runs in one process, but take down anything it left in
	// its group.
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

type warmResult struct {
	viaHost, direct          latency
	hostRPS, directRPS       float64
	hostErrors, directErrors int
	conns                    int
	processes                int
}

// warm measures one warm process through the host and directly. The host
// is held to one process (max_scale 1, target_concurrency at least the
// client count) so both paths reach the same single process and the
// difference is the proxy alone, not autoscaling.
func (b *bench) warm(ctx context.Context) (w warmResult, err error) {
	fn := b.fn
	fn.Scale.MaxScale = 1
	fn.Scale.TargetConcurrency = max(fn.Scale.TargetConcurrency, b.conns)
	s, err := b.serve(fn)
	if err != nil {
		return w, err
	}
	defer func() { err = errors.Join(err, s.stop()) }()

	c := newClient(b.conns, 10*time.Second)
	defer c.CloseIdleConnections()
	if _, err := post(ctx, c, s.url); err != nil { // the cold start
		return w, err
	}
	st := s.h.Status()[0]
	if len(st.Processes) != 1 || st.Processes[0].State != "ready" {
		return w, fmt.Errorf("want one ready process, have %+v", st.Processes)
	}
	direct := "http://" + st.Processes[0].Addr + "/predict"

	// Sequential latency, in alternating batches.
	fmt.Fprintf(os.Stderr, "warm latency: %d sequential requests per path\n", b.n)
	const batches = 4
	for _, u := range []string{s.url, direct} { // warm both connections
		for range 100 {
			if _, err := post(ctx, c, u); err != nil {
				return w, err
			}
		}
	}
	for i := range batches {
		n := b.n / batches
		if i == batches-1 {
			n = b.n - n*(batches-1)
		}
		for _, p := range []struct {
			url string
			lat *latency
		}{{s.url, &w.viaHost}, {direct, &w.direct}} {
			for range n {
				t0 := time.Now()
				if _, err := post(ctx, c, p.url); err != nil {
					return w, err
				}
				*p.lat = append(*p.lat, time.Since(t0))
			}
		}
	}
	slices.Sort(w.viaHost)
	slices.Sort(w.direct)

	// Throughput, alternating, two runs per path after a short warm-up.
	fmt.Fprintf(os.Stderr, "throughput: %d concurrent clients, 2 x %s per path\n", b.conns, b.dur)
	w.conns = b.conns
	var hostN, directN int
	var hostT, directT time.Duration
	for range 2 {
		for _, p := range []struct {
			url  string
			n, e *int
			t    *time.Duration
		}{{s.url, &hostN, &w.hostErrors, &hostT}, {direct, &directN, &w.directErrors, &directT}} {
			load(ctx, c, p.url, b.conns, 500*time.Millisecond)
			n, e, t := load(ctx, c, p.url, b.conns, b.dur)
			*p.n += n
			*p.e += e
			*p.t += t
		}
	}
	w.hostRPS = float64(hostN) / hostT.Seconds()
	w.directRPS = float64(directN) / directT.Seconds()
	w.processes = len(s.h.Status()[0].Processes)
	if ctx.Err() != nil {
		return w, ctx.Err()
	}
	return w, nil
}

// load sends the request from conns clients for d and counts the 200s and
// the failures.
func load(ctx context.Context, c *http.Client, url string, conns int, d time.Duration) (ok, failed int, took time.Duration) {
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		start  = time.Now()
		cutoff = start.Add(d)
	)
	for range conns {
		wg.Go(func() {
			var n, e int
			for time.Now().Before(cutoff) && ctx.Err() == nil {
				if _, err := post(ctx, c, url); err != nil {
					e++
				} else {
					n++
				}
			}
			mu.Lock()
			ok, failed = ok+n, failed+e
			mu.Unlock()
		})
	}
	wg.Wait()
	return ok, failed, time.Since(start)
}

func newClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil, // loopback only
			MaxIdleConnsPerHost: conns,
			DisableCompression:  true,
		},
	}
}

type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d: %s", e.code, e.body) }

// post sends the setosa request and returns the body of a 200 answer.
func post(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{resp.StatusCode, strings.TrimSpace(string(b))}
	}
	return b, nil
}

// sameAnswer checks an answer is setosa with the sample's probabilities
// (samples/iris/examples/setosa.json), so both sides did the same work.
func sameAnswer(answer []byte) error {
	var r struct {
		Outputs []struct {
			Name string    `json:"name"`
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(answer, &r); err != nil {
		return fmt.Errorf("decoding %s: %w", answer, err)
	}
	want := map[string][]float64{"label": {0}, "probabilities": {0.9783901, 0.021609956, 5.5259186e-08}}
	for _, o := range r.Outputs {
		w, ok := want[o.Name]
		if !ok {
			continue
		}
		delete(want, o.Name)
		if len(o.Data) != len(w) {
			return fmt.Errorf("%s is %v, want %v", o.Name, o.Data, w)
		}
		for i := range w {
			if math.Abs(o.Data[i]-w[i]) > 1e-5 {
				return fmt.Errorf("%s is %v, want %v", o.Name, o.Data, w)
			}
		}
	}
	if len(want) > 0 {
		return fmt.Errorf("missing outputs in %s", answer)
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (b *bench) track(pid int) {
	b.mu.Lock()
	b.pids[pid] = true
	b.mu.Unlock()
}

// checkNoneLeft reports any process this run started that still exists.
func (b *bench) checkNoneLeft() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var left []int
	for pid := range b.pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			left = append(left, pid)
		}
	}
	if len(left) > 0 {
		slices.Sort(left)
		return fmt.Errorf("processes still running: %v", left)
	}
	fmt.Fprintf(os.Stderr, "cleanup: all %d processes started by the run have exited\n", len(b.pids))
	return nil
}

type latency []time.Duration // sorted

func (l latency) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[min(int(float64(len(l))*p/100), len(l)-1)]
}

func stats(ds []time.Duration) (median, lo, hi time.Duration) {
	s := slices.Sorted(slices.Values(ds))
	n := len(s)
	median = s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return median, s[0], s[n-1]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

func (b *bench) report(cortexCold, hostReady, pyCold []time.Duration, w warmResult) {
	cm, clo, chi := stats(cortexCold)
	rm, rlo, rhi := stats(hostReady)
	pm, plo, phi := stats(pyCold)
	hp50, dp50 := w.viaHost.pct(50), w.direct.pct(50)

	fmt.Printf("iris (samples/iris), setosa OIP request, loopback, GOOS/GOARCH %s/%s, GOMAXPROCS %d\n",
		goruntime.GOOS, goruntime.GOARCH, goruntime.GOMAXPROCS(0))
	fmt.Println("compared: cortex = first POST /iris/predict through runtime/host (as cortex serve) to an idle")
	fmt.Println("  function, send to full response, incl. spawn and /readyz; python = server.py (FastAPI + uvicorn")
	fmt.Println("  + scikit-learn LogisticRegression from the same iris.onnx weights), process start to its first")
	fmt.Println("  200 answer to the same POST /predict, polled every 1 ms. Cold rounds alternate between the two.")
	fmt.Println()
	fmt.Printf("%-48s %12s %12s %12s\n", "cold start ("+strconv.Itoa(len(cortexCold))+" rounds)", "median", "min", "max")
	fmt.Printf("%-48s %12s %12s %12s\n", "cortex: first request through the host", ms(cm), ms(clo), ms(chi))
	fmt.Printf("%-48s %12s %12s %12s\n", "  of which spawn to ready (host's own figure)", ms(rm), ms(rlo), ms(rhi))
	fmt.Printf("%-48s %12s %12s %12s\n", "python: process start to first 200", ms(pm), ms(plo), ms(phi))
	fmt.Printf("%-48s %11.1fx  (target: at least 10x)\n", "ratio python / cortex (medians)", float64(pm)/float64(cm))
	fmt.Println()
	fmt.Printf("%-48s %12s %12s %12s\n", fmt.Sprintf("warm request (%d sequential, one process)", len(w.viaHost)), "p50", "p90", "p99")
	fmt.Printf("%-48s %12s %12s %12s\n", "cortex: through the host", us(hp50), us(w.viaHost.pct(90)), us(w.viaHost.pct(99)))
	fmt.Printf("%-48s %12s %12s %12s\n", "cortex: straight to the function process", us(dp50), us(w.direct.pct(90)), us(w.direct.pct(99)))
	fmt.Printf("%-48s %12s  (target: under 100 µs)\n", "proxy's added latency (p50 difference)", us(hp50-dp50))
	fmt.Println()
	fmt.Printf("%-48s %12s %12s\n", fmt.Sprintf("throughput (%d clients, %d process)", w.conns, w.processes), "req/s", "errors")
	fmt.Printf("%-48s %12.0f %12d\n", "cortex: through the host", w.hostRPS, w.hostErrors)
	fmt.Printf("%-48s %12.0f %12d\n", "cortex: straight to the function process", w.directRPS, w.directErrors)
	fmt.Printf("%-48s %12.2f\n", "ratio host / direct", w.hostRPS/w.directRPS)
	fmt.Println("(clients, host and process share this machine's CPUs; the ratio is the proxy's total cost)")
}
