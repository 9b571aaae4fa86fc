//go:build unix

// Command floor measures Cortex Functions against the floor (issue 17): a
// bare Go server that calls ONNX Runtime directly on the iris model. Every
// row of the table runs in one process tree, in interleaved
// rounds, and is printed as a ratio to the floor measured in the same run:
//
//  1. the packaged function binary served directly, as Knative runs it:
//     `cortex package` (its Lambda zip, unzipped: the binary with
//     cortex.json, the model and libonnxruntime.so.1 beside it, as in the
//     image) run with $PORT. Target >= 0.92 of the floor's req/s.
//  2. `cortex serve` warm, through its shared front (/iris/...) and, when
//     the CLI has --ports, on the function's own port, where the processes
//     accept on the socket themselves. Target >= 0.85 for the own port.
//  3. cold start, exec to the first 200 answer: the floor and the packaged
//     binary each started -n times. Target: within 1.25x of the floor.
//  4. scale from zero through `cortex serve` (a second one, with a short
//     --scale-down-after): the first request to the function at zero,
//     send to full response, through the front and on its own port.
//     Target: within 1.25x of the floor's cold start.
//  5. batching: the packaged binary with batching off (row 1) and on
//     (max_batch_size 32, batch_interval 5ms: the same binary with the
//     batching section the packager's spec makes of a copy of the
//     cortex.yaml that says so), as a share of what a zero-work server
//     gains over off: (on - off) / (zero - off). Target >= 0.5. The
//     functions' /metrics must show that on batched and off did not.
//
// The floor and the zero-work server are this program re-executed with a
// hidden flag, so every server under test is a child process on loopback
// paying the same process and network costs. The clients are 64 keep-alive
// connections sending the one-row setosa OIP request to
// /v2/models/iris/infer; every 200 answer is checked (the setosa class
// and probabilities). Each round runs every throughput row for -d after a
// warm-up, then its share of the cold starts and scale-from-zero samples;
// the rows' order turns each round, so drift on the machine hits all.
//
// It exits non-zero when a request fails, an answer is wrong or a server
// cannot be started; a target missed is printed, not an error.
//
// -rows picks the rows to run (the floor always runs: every ratio is to
// it), e.g. -rows 1,5 for the packaged binary and batching alone. Each
// single-process server's CPU time per request (all its threads, from
// /proc) is printed beside its req/s: on a shared machine it moves less
// than req/s, and the batching row gets a share from it too.
//
//	go run ./internal/bench/floor [-c 64] [-d 5s] [-rounds 3] [-n 10] [-rows 1,2,3,4,5] [-cortex bin/cortex] [-client raw|go] [-json]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cortexfn/cortex/internal/bench/load"
)

const (
	// The batching row's settings (issue 8's).
	maxBatch      = 32
	batchInterval = 5 * time.Millisecond
	// keepFactor reads the "keep" for the cold rows: at most this
	// many times the floor's exec-to-first-answer median of the same run.
	keepFactor = 1.25
)

type config struct {
	conns     int
	dur       time.Duration
	warmup    time.Duration
	rounds    int
	n         int
	cortex    string
	dir       string
	client    string
	jsonOut   bool
	scaleDown time.Duration
	timeout   time.Duration
	rows      rowSet
}

// rowSet is the table's rows to run, by number (1 to 5).
type rowSet map[int]bool

func parseRows(s string) (rowSet, error) {
	rows := rowSet{}
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 5 {
			return nil, fmt.Errorf("-rows %q: want row numbers from 1 to 5, comma-separated (e.g. 1,5)", s)
		}
		rows[n] = true
	}
	return rows, nil
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("floor: ")
	if child, err := childMain(os.Args[1:]); child {
		if err != nil {
			log.Fatal(err)
		}
		return
	}
	var c config
	flag.IntVar(&c.conns, "c", 64, "concurrent keep-alive clients")
	flag.DurationVar(&c.dur, "d", 5*time.Second, "measured duration of each throughput row in each round")
	flag.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured load before each measured run")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds")
	flag.IntVar(&c.n, "n", 10, "cold starts per server and scale-from-zero samples per path, spread over the rounds")
	flag.StringVar(&c.cortex, "cortex", "bin/cortex", "the cortex CLI (go build -o bin/cortex ./cmd/cortex)")
	flag.StringVar(&c.dir, "dir", "samples/iris", "the iris function directory")
	flag.StringVar(&c.client, "client", "raw", "the load's client: raw (ready-made requests on keep-alive TCP, little CPU) or go (net/http)")
	flag.BoolVar(&c.jsonOut, "json", false, "print the report as JSON")
	flag.DurationVar(&c.scaleDown, "scale-down-after", 500*time.Millisecond, "cortex serve's --scale-down-after for the scale-from-zero rows")
	flag.DurationVar(&c.timeout, "timeout", 15*time.Minute, "bound on the whole run")
	rows := flag.String("rows", "1,2,3,4,5", "the rows to run, comma-separated (the floor always runs)")
	flag.Parse()
	var err error
	if c.rows, err = parseRows(*rows); err != nil {
		log.Fatal(err)
	}
	if c.conns < 1 || c.rounds < 1 || c.n < 1 || c.dur <= 0 || c.warmup < 0 {
		log.Fatal("-c, -rounds, -n and -d must be positive")
	}
	if c.client != "raw" && c.client != "go" {
		log.Fatalf("-client %q: use raw or go", c.client)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	b := &bench{config: c}
	rep, err := b.run(ctx)
	b.procs.stopAll()
	cancel()
	stop()
	if leftErr := b.procs.noneLeft(); leftErr != nil {
		err = errors.Join(err, leftErr)
	} else {
		progress("cleanup: all %d processes started by the run have exited", len(b.procs.all))
	}
	if rep != nil {
		rep.LoadEnd = load.LoadAverage()
		if c.jsonOut {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			if err := enc.Encode(rep); err != nil {
				log.Fatal(err)
			}
		} else {
			rep.writeText(os.Stdout)
		}
		if len(rep.Failures) > 0 {
			err = errors.Join(err, fmt.Errorf("%d row(s) had failed requests or wrong answers", len(rep.Failures)))
		}
	}
	if err != nil {
		log.Fatal(err)
	}
}

type bench struct {
	config
	procs procs
	self  string // this program, for the floor and zero-work children
	model string // the packaged model, which the floor serves too
	lib   string // the packaged ONNX Runtime, which the floor loads too
}

// throughput is a throughput row's server.
type throughput struct {
	name string
	url  string
	res  []load.Result
	pid  int             // the server's process, 0 when it is several (cortex serve)
	cpu  []time.Duration // its CPU time during each round's measured run
	// answer is the server's first right answer (startServer's check).
	answer []byte
}

func (b *bench) run(ctx context.Context) (*report, error) {
	rep := &report{
		Command:    strings.TrimSpace("go run ./internal/bench/floor " + strings.Join(os.Args[1:], " ")),
		Clients:    b.conns,
		Client:     b.client,
		Duration:   b.dur.String(),
		Rounds:     b.rounds,
		N:          b.n,
		GOMAXPROCS: goMaxProcs(),
		LoadStart:  load.LoadAverage(),
	}
	var err error
	if b.self, err = os.Executable(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(b.cortex); err != nil {
		return nil, fmt.Errorf("the CLI: %w (build it: go build -o bin/cortex ./cmd/cortex, and run from the repository root)", err)
	}
	if out, err := exec.Command(b.cortex, "version").Output(); err == nil {
		rep.Cortex = strings.TrimSpace(string(out))
	}
	ports, err := hasPorts(b.cortex)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "cortex-floor-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	// The function as cortex package ships it, and its batching twin.
	progress("packaging %s with %s", b.dir, b.cortex)
	offZip, err := b.packaged(ctx, b.dir, filepath.Join(tmp, "off"))
	if err != nil {
		return nil, err
	}
	offTask := filepath.Join(tmp, "off", "task")
	if err := unzip(offZip, offTask); err != nil {
		return nil, err
	}
	onTask, err := withBatching(b.dir, offTask, filepath.Join(tmp, "on"))
	if err != nil {
		return nil, err
	}
	if b.model, err = packagedModel(offTask); err != nil {
		return nil, err
	}
	b.lib = filepath.Join(offTask, "lib", "libonnxruntime.so.1")

	// The servers, all children of this process.
	progress("starting the floor, the packaged function (batching off and on), the zero-work server and cortex serve")
	floor, err := b.startServer(ctx, "floor", "floor", b.floorCmd)
	if err != nil {
		return nil, err
	}
	off, err := b.startServer(ctx, "function", "packaged", b.functionCmd(offTask))
	if err != nil {
		return nil, err
	}
	rows := map[string]*throughput{}
	tputs := []*throughput{floor}
	if b.rows[1] || b.rows[5] {
		tputs = append(tputs, off)
	}
	if b.rows[2] {
		warm, err := b.serve(ctx, "cortex serve", ports)
		if err != nil {
			return nil, err
		}
		for _, u := range []string{warm.front, warm.direct} {
			if u == "" {
				continue
			}
			if _, err := firstAnswer(ctx, warm.child, u, 2*time.Minute); err != nil {
				return nil, err
			}
		}
		tputs = append(tputs, &throughput{name: "front", url: warm.front})
		if ports {
			tputs = append(tputs, &throughput{name: "direct", url: warm.direct})
		}
	}
	var on *throughput
	if b.rows[5] {
		if on, err = b.startServer(ctx, "function, batching on", "on", b.functionCmd(onTask)); err != nil {
			return nil, err
		}
		answerFile := filepath.Join(tmp, "answer.json")
		if err := os.WriteFile(answerFile, off.answer, 0o644); err != nil {
			return nil, err
		}
		zero, err := b.startServer(ctx, "zero-work", "zero", b.zeroCmd(answerFile))
		if err != nil {
			return nil, err
		}
		tputs = append(tputs, on, zero)
	}
	var fromZero *served
	if b.rows[4] {
		if fromZero, err = b.serve(ctx, "cortex serve (scale from zero)", ports, "--scale-down-after", b.scaleDown.String()); err != nil {
			return nil, err
		}
	}
	for _, t := range tputs {
		rows[t.name] = t
	}
	var cold struct{ floor, packaged, front, direct []time.Duration }
	for r := range b.rounds {
		progress("round %d of %d: %d throughput rows of %s after %s of warm-up", r+1, b.rounds, len(tputs), b.dur, b.warmup)
		for i := range tputs {
			t := tputs[(i+r)%len(tputs)]
			if w := b.load(t.url, b.warmup); w.Wrong > 0 {
				return nil, fmt.Errorf("%s: a wrong answer while warming up: %w", t.name, w.Err)
			}
			cpu0 := processCPU(t.pid)
			res := load.Merge([]load.Result{b.load(t.url, b.dur)}) // sorts the latencies
			t.res = append(t.res, res)
			cpu := ""
			if t.pid != 0 {
				t.cpu = append(t.cpu, processCPU(t.pid)-cpu0)
				cpu = fmt.Sprintf("  CPU %.1f µs/req", perRequest(last(t.cpu), res.N))
			}
			progress("  %-9s %8.0f req/s  p50 %-9s p99 %-9s errors %d, wrong %d%s", t.name, res.RPS(), res.Pct(50), res.Pct(99), res.Errors, res.Wrong, cpu)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		k := b.n / b.rounds
		if r < b.n%b.rounds {
			k++
		}
		if !b.rows[3] && !b.rows[4] {
			continue
		}
		progress("round %d of %d: %d cold starts each, %d scale-from-zero samples per path", r+1, b.rounds, k, k)
		for i := range k {
			starts := []struct {
				name string
				cmd  func(string) *exec.Cmd
				into *[]time.Duration
			}{{"floor", b.floorCmd, &cold.floor}, {"function", b.functionCmd(offTask), &cold.packaged}}
			if i%2 == 1 {
				starts[0], starts[1] = starts[1], starts[0]
			}
			if !b.rows[3] {
				starts = nil
			}
			for _, s := range starts {
				d, err := b.coldStart(ctx, s.name+" (cold start)", s.cmd)
				if err != nil {
					return nil, err
				}
				*s.into = append(*s.into, d)
			}
			type path struct {
				url  string
				into *[]time.Duration
			}
			var paths []path
			if fromZero != nil {
				paths = []path{{fromZero.front, &cold.front}, {fromZero.direct, &cold.direct}}
			}
			for _, p := range paths {
				if p.url == "" {
					continue
				}
				d, err := b.fromZero(ctx, fromZero, p.url)
				if err != nil {
					return nil, err
				}
				*p.into = append(*p.into, d)
			}
			direct := ""
			if ports {
				direct = ", own port " + ms(last(cold.direct))
			}
			progress("  cold start floor %s, function %s; from zero front %s%s", ms(last(cold.floor)), ms(last(cold.packaged)),
				ms(last(cold.front)), direct)
		}
	}

	rep.rows(b.rows, rows, ports, cold.floor, cold.packaged, cold.front, cold.direct)
	if !b.rows[5] {
		return rep, nil
	}
	// The batching row means something only if the function batched,
	// and the off row only if it did not.
	onN, onSum, err := batches(ctx, on.url)
	if err != nil {
		return nil, err
	}
	offN, _, err := batches(ctx, off.url)
	if err != nil {
		return nil, err
	}
	if onN == 0 || offN != 0 {
		return nil, fmt.Errorf("batching on ran %.0f batches, off %.0f: the batching row measured nothing", onN, offN)
	}
	rep.MeanBatch = onSum / onN
	return rep, nil
}

// batches reads cortex_batch_size's count and sum from the /metrics of
// the function whose infer URL is url.
func batches(ctx context.Context, url string) (count, sum float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(url, inferPath)+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "{")
		switch name {
		case "cortex_batch_size_count":
			count, err = strconv.ParseFloat(value, 64)
		case "cortex_batch_size_sum":
			sum, err = strconv.ParseFloat(value, 64)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", sc.Text(), err)
		}
	}
	return count, sum, sc.Err()
}

// load runs the load on url for d.
func (b *bench) load(url string, d time.Duration) load.Result {
	if b.client == "go" {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: b.conns, MaxConnsPerHost: b.conns, DisableCompression: true}}
		defer client.CloseIdleConnections()
		return load.RunChecked(client, url, []string{body}, b.conns, d, checkSetosa)
	}
	return load.RunRawChecked(url, []string{body}, b.conns, d, checkSetosa)
}

// startServer starts a server under test on a free port and waits for its
// first right answer; it returns it as the throughput row key.
func (b *bench) startServer(ctx context.Context, name, key string, cmd func(addr string) *exec.Cmd) (*throughput, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c, err := b.procs.start(name, cmd(addr))
	if err != nil {
		return nil, err
	}
	t := &throughput{name: key, url: "http://" + addr + inferPath, pid: c.cmd.Process.Pid}
	t.answer, err = firstAnswer(ctx, c, t.url, 2*time.Minute)
	return t, err
}

// floorCmd is the floor on addr: this program re-executed.
func (b *bench) floorCmd(addr string) *exec.Cmd {
	cmd := exec.Command(b.self, "-serve-floor", addr, "-model", b.model, "-lib", b.lib)
	cmd.Env = environ()
	return cmd
}

// zeroCmd is the zero-work server answering answerFile.
func (b *bench) zeroCmd(answerFile string) func(addr string) *exec.Cmd {
	return func(addr string) *exec.Cmd {
		cmd := exec.Command(b.self, "-serve-zero", addr, "-answer", answerFile)
		cmd.Env = environ()
		return cmd
	}
}

// functionCmd runs the packaged function in task as Knative runs it: an
// HTTP server on $PORT (on loopback only: CORTEX_HOST).
func (b *bench) functionCmd(task string) func(addr string) *exec.Cmd {
	return func(addr string) *exec.Cmd {
		port := addr[strings.LastIndexByte(addr, ':')+1:]
		cmd := exec.Command(filepath.Join(task, "bootstrap"))
		cmd.Dir = task
		cmd.Env = environ("PORT="+port, "CORTEX_HOST=127.0.0.1", "K_SERVICE=iris")
		return cmd
	}
}

// coldStart starts a server and times exec to its first right answer.
func (b *bench) coldStart(ctx context.Context, name string, cmd func(addr string) *exec.Cmd) (time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c := cmd(addr)
	start := time.Now()
	ch, err := b.procs.start(name, c)
	if err != nil {
		return 0, err
	}
	_, err = firstAnswer(ctx, ch, "http://"+addr+inferPath, time.Minute)
	took := time.Since(start)
	b.procs.stop(ch, 10*time.Second)
	return took, err
}

// fromZero waits until s has scaled the function to zero, then times one
// request to url, on a new connection, from send to full response.
func (b *bench) fromZero(ctx context.Context, s *served, url string) (time.Duration, error) {
	before, err := s.idle(ctx, b.scaleDown+time.Minute)
	if err != nil {
		return 0, err
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, DisableCompression: true}}
	start := time.Now()
	status, answer, err := post(ctx, client, url)
	took := time.Since(start)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("status %d: %s", status, strings.TrimSpace(string(answer)))
	}
	if err == nil {
		err = checkSetosa(answer)
	}
	if err != nil {
		return 0, s.failed(fmt.Errorf("the first request to %s at zero: %w", url, err))
	}
	if after, err := s.status(ctx); err == nil && after.ColdStarts <= before.ColdStarts {
		progress("  warning: %s answered from zero but /-/status counts no new cold start (%d, then %d)", url, before.ColdStarts, after.ColdStarts)
	}
	return took, nil
}

// packagedModel is the model file the packaged cortex.json names.
func packagedModel(task string) (string, error) {
	b, err := os.ReadFile(filepath.Join(task, "cortex.json"))
	if err != nil {
		return "", err
	}
	var c struct {
		Predictor struct{ Model string } `json:"predictor"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Predictor.Model == "" {
		return "", fmt.Errorf("the packaged cortex.json names no model (%v): %s", err, b)
	}
	return filepath.Join(task, c.Predictor.Model), nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func last(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)-1]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// processCPU is the CPU time process pid has used (load.ProcessCPU); 0
// without it (pid 0, or not Linux).
func processCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	d, _ := load.ProcessCPU(pid)
	return d
}

// perRequest is cpu over n requests, in microseconds.
func perRequest(cpu time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(cpu) / float64(time.Microsecond) / float64(n)
}
