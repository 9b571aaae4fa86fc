// Command faults checks a function served through the host (runtime/host,
// the engine of `cortex serve`) under overload while it is attacked and
// while its predictor runs away: issue 15's "what must be shown".
//
// It builds the function in ./fn (a Go predictor that does a little work
// per request, 2000 rounds of SHA-256 by default, and, asked with
// ?runaway=1, loops forever ignoring its context), writes its runtime.Config with a short
// limits.timeout and limits.overrun_grace, and serves it through a host
// wired as cmd/cortex's serve wires one (the same options and front
// server) in a child process: the bench runs itself again with -front, so
// that the host's resident set is the host's alone, not the load
// generator's. Then, for the duration, on loopback, it drives twice the
// function's capacity through the front: 2 x (max_scale x
// target_concurrency + max_queue) concurrent clients that retry at once.
//
//   - One request in ten is hostile, in turn: an oversized chunked body
//     (four times limits.max_body, with Expect: 100-continue, written as
//     curl writes it), a truncated body (every other one JSON cut in half
//     with its Content-Length, the others a body that stops short of its
//     Content-Length as the client closes its side), and slow headers (the
//     request line, then the headers one byte a second; the client gives up
//     after 15s).
//   - One prediction in a hundred of the others runs away (?runaway=1).
//   - The function's /healthz through the front is polled every 100ms, and
//     the host's /-/status and every function process's own /metrics every
//     250ms; the resident set of the host and of every function process is
//     read from /proc every 250ms.
//
// It exits non-zero when any check fails:
//
//   - every accepted request (neither hostile nor runaway) answered 200
//     with a correct body, or 503 with Retry-After;
//   - the oversized bodies got 413, the truncated ones 400 and the slow
//     headers a closed connection (or 408) from the front within its header
//     timeout; never another 5xx than a clean 503 with Retry-After (at
//     capacity, the host refuses before anyone reads the body);
//   - runaway callers got 504, or a clean 503 before their prediction ran;
//   - every process that logged a runaway was replaced (exit 75, counted
//     in /-/status and in the host's events), and none crashed;
//   - /-/status answered 200 every time, and /healthz through the front
//     always answered: 200, or a 503 that says why (it waits in the
//     function's queue like a prediction, so the host refuses it at
//     capacity);
//   - memory stayed bounded: no function process above -max-fn-rss-mib and
//     no growth between the first and last third of the load; for the
//     host, a peak under -max-host-rss-mib and no growth between the middle
//     and the last third. Not the first: the host holds every slow-headers
//     connection for its 10s header timeout, so their number, and the
//     host's memory with it, climbs for the first 10s and is then flat (the
//     report shows both, and the open connections by third);
//   - the front drained and exited cleanly on SIGTERM.
//
// Linux only (/proc).
//
//	go run ./internal/bench/faults [-d 30s]
//
// Why a program of its own rather than a mode of internal/bench/overload:
// that one measures one function process without the host, on the iris
// model; this one needs the host, a purpose-built predictor, raw-socket
// clients and several processes to watch, and shares none of its checks.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cortexfn/cortex/runtime"
)

// fnName is the function's name on the host: its route is /faults/.
const fnName = "faults"

// maxDuration bounds -d: the bench task must stay bounded in time.
const maxDuration = 5 * time.Minute

// settings are the run's parameters, from the flags.
type settings struct {
	dur           time.Duration
	maxScale      int   // the host's max_scale
	concurrency   int   // limits.max_concurrency, and the host's target_concurrency
	maxQueue      int   // limits.max_queue, and the host's queue
	maxBody       int64 // limits.max_body
	timeout       time.Duration
	grace         time.Duration // limits.overrun_grace
	rounds        int           // SHA-256 rounds per prediction: its work
	hostileEvery  int
	runawayEvery  int
	growthLimit   int64 // bytes
	fnPeakLimit   int64 // bytes
	hostPeakLimit int64 // bytes
}

// capacity is what the host holds for the function at once: every slot of
// every process, and its queue.
func (s settings) capacity() int { return s.maxScale*s.concurrency + s.maxQueue }

func main() {
	var s settings
	front := flag.String("front", "", "internal: serve the host with this configuration (JSON) instead of running the bench")
	flag.DurationVar(&s.dur, "d", 30*time.Second, "duration of the load (at most 5m)")
	flag.IntVar(&s.maxScale, "max-scale", 2, "the function's autoscaling.max_scale")
	flag.IntVar(&s.concurrency, "max-concurrency", 4, "the function's limits.max_concurrency (and autoscaling.target_concurrency)")
	flag.IntVar(&s.maxQueue, "max-queue", 8, "the function's limits.max_queue (the host queues as many)")
	flag.Int64Var(&s.maxBody, "max-body", 64<<10, "the function's limits.max_body in bytes")
	flag.DurationVar(&s.timeout, "timeout", 200*time.Millisecond, "the function's limits.timeout")
	flag.DurationVar(&s.grace, "overrun-grace", time.Second, "the function's limits.overrun_grace")
	flag.IntVar(&s.rounds, "rounds", 2000, "SHA-256 rounds per prediction (its work)")
	flag.IntVar(&s.hostileEvery, "hostile-every", 10, "one request in this many is hostile")
	flag.IntVar(&s.runawayEvery, "runaway-every", 100, "one prediction in this many runs away")
	growth := flag.Int64("max-growth-mib", 16, "largest allowed RSS growth, mean of the last third over the first, in MiB")
	fnPeak := flag.Int64("max-fn-rss-mib", 128, "largest allowed RSS of a function process, in MiB")
	hostPeak := flag.Int64("max-host-rss-mib", 512, "largest allowed RSS of the host, in MiB")
	flag.Parse()
	if *front != "" {
		if err := serveFront(*front); err != nil {
			fmt.Fprintln(os.Stderr, "faults -front:", err)
			os.Exit(1)
		}
		return
	}
	s.growthLimit, s.fnPeakLimit, s.hostPeakLimit = *growth<<20, *fnPeak<<20, *hostPeak<<20
	switch {
	case s.dur <= 0 || s.dur > maxDuration:
		log.Fatalf("-d must be in (0, %s]", maxDuration)
	case s.maxScale < 1 || s.concurrency < 1 || s.maxQueue < 0:
		log.Fatal("-max-scale and -max-concurrency must be at least 1, -max-queue at least 0")
	case s.maxBody < 1024:
		log.Fatal("-max-body must be at least 1024")
	case s.timeout <= 0 || s.grace <= 0:
		log.Fatal("-timeout and -overrun-grace must be positive")
	case s.rounds < 1 || s.hostileEvery < 2 || s.runawayEvery < 2:
		log.Fatal("-rounds must be at least 1, -hostile-every and -runaway-every at least 2")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, s); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, s settings) error {
	tmp, err := os.MkdirTemp("", "cortex-faults-")
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			_ = os.RemoveAll(tmp)
		}
	}()

	bin := filepath.Join(tmp, "fn")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/cortexfn/cortex/internal/bench/faults/fn")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the function: %w", err)
	}
	cfg := filepath.Join(tmp, "config.json")
	if err := writeConfig(cfg, s); err != nil {
		return err
	}

	logs := filepath.Join(tmp, "front.log")
	f, err := startFront(frontConfig{Bin: bin, Config: cfg, Dir: tmp, MaxScale: s.maxScale, Target: s.concurrency, MaxQueue: s.maxQueue}, logs)
	if err != nil {
		keep = true
		return fmt.Errorf("%w (logs: %s)", err, logs)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = f.stop()
		}
	}()

	// The first request starts the first process: a cold start, not part
	// of the figures.
	bodies := newBodies(s.rounds)
	if err := warmUp(ctx, f.base, bodies); err != nil {
		keep = true
		return fmt.Errorf("%w (logs: %s)", err, logs)
	}

	ld := newLoadResult(2 * s.capacity())
	rss := sampleRSS(250*time.Millisecond, ld.slowOpen.Load)
	rss.add(f.cmd.Process.Pid, roleHost)
	for _, pid := range f.events.watch(func(pid int) { rss.add(pid, roleFunction) }, rss.remove) {
		rss.add(pid, roleFunction)
	}
	time.Sleep(300 * time.Millisecond) // an idle sample or two first
	health := poll(f.base+"/"+fnName+"/healthz", 100*time.Millisecond, classifyHealth)
	status := poll(f.base+"/-/status", 250*time.Millisecond, classifyStatus)
	scrape := scrapeProcesses(f.base, 250*time.Millisecond)

	loadStart := time.Now()
	drive(ctx, ld, f.base, bodies, s)
	loadEnd := time.Now()
	ld.waitSlow() // the slow-headers clients still under way, at most slowBound
	settled := waitSettled(ctx, f, logs, 30*time.Second)

	h, st, counts := health.stop(), status.stop(), scrape.stop()
	final, finalErr := fetchStatus(f.base)
	samples := rss.stop()

	stopped = true
	stopErr := f.stop()

	r := report{
		s: s, load: ld, loadStart: loadStart, loadEnd: loadEnd,
		health: h, status: st, final: final, finalErr: finalErr,
		runaways: runawayPIDs(logs), events: f.events.all(), settled: settled,
		samples: samples, procCounts: counts, stopErr: stopErr,
	}
	if failed := r.print(os.Stdout); failed > 0 {
		keep = true
		return fmt.Errorf("%d check(s) failed (the front's and the processes' logs: %s)", failed, logs)
	}
	return nil
}

// writeConfig writes the function's runtime.Config, as the packager would
// from its cortex.yaml, for CORTEX_CONFIG.
func writeConfig(path string, s settings) error {
	cfg := runtime.Config{
		Name:      fnName,
		Predictor: runtime.PredictorConfig{Type: "go"},
		Limits: runtime.Limits{
			MaxBody:        s.maxBody,
			Timeout:        runtime.Duration(s.timeout),
			MaxConcurrency: s.concurrency,
			MaxQueue:       s.maxQueue,
			OverrunGrace:   runtime.Duration(s.grace),
		},
	}
	if s.maxQueue == 0 {
		cfg.Limits.MaxQueue = -1 // zero would mean the default; negative is none
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// waitSettled waits, at most limit, until every process that logged a
// runaway has exited, so that the replacement counts are final. It reports
// whether they all had.
func waitSettled(ctx context.Context, f *front, logs string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		gone := f.events.gone()
		all := true
		for pid := range runawayPIDs(logs) {
			if !gone[pid] {
				all = false
				break
			}
		}
		if all {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var errNotReady = errors.New("the function did not answer its first request")
