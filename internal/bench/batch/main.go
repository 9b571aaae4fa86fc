// Command batch measures `cortex batch` (issue 19) against a plain client:
// -rows iris rows through one `cortex serve samples/iris`, in the same run.
//
//   - plain client: a Go program's loop, the rows in memory, sent as Open
//     Inference Protocol requests of 64 rows by -concurrency goroutines over
//     kept-alive connections; each answer is decoded and its labels
//     counted. Nothing is written.
//   - cortex batch --batch 64: the CLI as a user runs it on the rows'
//     JSONL file, -concurrency requests in flight; the whole process is
//     timed, from its start to its exit: reading and hashing the input,
//     packing 64 rows a request, splitting the answers into one line a row,
//     the journal's fsyncs and the final rename of outputs.jsonl.
//   - cortex batch, one row a request (on -single-rows rows): what the job
//     costs without --batch, to show why --batch exists.
//
// Rows per second of each; the target is cortex batch --batch 64 >= 0.8 of
// the plain client's. Each round runs the paths in turn, the order
// turning, so that the machine's other load falls on both; the medians
// are reported. Every job's outputs must be -rows lines and no failures,
// every round's outputs.jsonl the same bytes, and the one-row-a-request
// job's outputs.jsonl the first -single-rows lines of --batch 64's.
//
//	go run ./internal/bench/batch [-cortex bin/cortex] [-rows 100000] [-rounds 7] [-concurrency 16] [-json]
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cortexfn/cortex/internal/bench/load"
)

type config struct {
	cortex      string
	build       bool
	dir         string
	rows        int
	singleRows  int
	rounds      int
	concurrency int
	jsonOut     bool
}

// report is what the program prints.
type report struct {
	Command     string    `json:"command"`
	Cortex      string    `json:"cortex"`
	Rows        int       `json:"rows"`
	SingleRows  int       `json:"single_rows"`
	Rounds      int       `json:"rounds"`
	Concurrency int       `json:"concurrency"`
	GOMAXPROCS  int       `json:"gomaxprocs"`
	Plain       []float64 `json:"plain_rows_per_s"`
	Batch64     []float64 `json:"cortex_batch_64_rows_per_s"`
	Single      []float64 `json:"cortex_batch_single_rows_per_s"`
	// RoundRatios are each round's cortex batch --batch 64 over the
	// plain client's (a round's two ran under the same load); Ratio is
	// their median.
	RoundRatios []float64 `json:"round_ratios"`
	Ratio       float64   `json:"ratio_batch64_to_plain"`
	// CPU per row of each client (user + system), load-independent:
	// the plain client's from this process's rusage while it alone ran,
	// cortex batch's from its process's.
	PlainCPU    []float64 `json:"plain_cpu_us_per_row"`
	Batch64CPU  []float64 `json:"cortex_batch_64_cpu_us_per_row"`
	SingleRatio float64   `json:"ratio_single_to_plain"`
	Target      float64   `json:"target"`
	Met         bool      `json:"met"`
	OutputSHA   string    `json:"outputs_sha256"`
	LoadStart   string    `json:"load_start"`
	LoadEnd     string    `json:"load_end"`
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("batch: ")
	var c config
	flag.StringVar(&c.cortex, "cortex", "bin/cortex", "the cortex CLI; when not given, built first with go build -o bin/cortex ./cmd/cortex")
	flag.StringVar(&c.dir, "dir", "samples/iris", "the iris function directory")
	flag.IntVar(&c.rows, "rows", 100000, "iris rows a job")
	flag.IntVar(&c.singleRows, "single-rows", 20000, "rows of the one-row-a-request job (0: skip it)")
	flag.IntVar(&c.rounds, "rounds", 7, "rounds; each runs every path once")
	flag.IntVar(&c.concurrency, "concurrency", 16, "requests in flight, both clients")
	flag.BoolVar(&c.jsonOut, "json", false, "print the report as JSON")
	flag.Parse()
	c.build = true
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "cortex" {
			c.build = false
		}
	})
	if c.rows < 64 || c.rounds < 1 || c.concurrency < 1 {
		log.Fatal("-rows must be 64 or more, -rounds and -concurrency positive")
	}
	rep, err := run(c)
	if rep != nil {
		rep.LoadEnd = load.LoadAverage()
		if c.jsonOut {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rep)
		} else {
			rep.write(os.Stdout)
		}
	}
	if err != nil {
		log.Fatal(err)
	}
}

func progress(format string, args ...any) { fmt.Fprintf(os.Stderr, "batch: "+format+"\n", args...) }

func run(c config) (*report, error) {
	if c.build {
		progress("building the CLI: go build -o %s ./cmd/cortex", c.cortex)
		if out, err := exec.Command("go", "build", "-o", c.cortex, "./cmd/cortex").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build: %w\n%s", err, out)
		}
	}
	cortex, err := filepath.Abs(c.cortex)
	if err != nil {
		return nil, err
	}
	rep := &report{
		Command: strings.TrimSpace("go run ./internal/bench/batch " + strings.Join(os.Args[1:], " ")),
		Rows:    c.rows, SingleRows: c.singleRows, Rounds: c.rounds, Concurrency: c.concurrency,
		GOMAXPROCS: goruntime.GOMAXPROCS(0), Target: 0.8, LoadStart: load.LoadAverage(),
	}
	if out, err := exec.Command(cortex, "version").Output(); err == nil {
		rep.Cortex = strings.TrimSpace(string(out))
	}
	tmp, err := os.MkdirTemp("", "bench-batch-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	rows := irisRows(c.rows)
	input := filepath.Join(tmp, "rows.jsonl")
	if err := writeRows(input, rows); err != nil {
		return nil, err
	}
	singleInput := filepath.Join(tmp, "single.jsonl")
	if err := writeRows(singleInput, rows[:min(c.singleRows, len(rows))]); err != nil {
		return nil, err
	}

	progress("starting %s serve %s (it builds the function)", cortex, c.dir)
	srv, err := serve(cortex, c.dir)
	if err != nil {
		return rep, err
	}
	defer srv.stop()
	url := srv.url + "predict"
	// net/http's client with enough idle connections and, as cortex batch
	// for a function on this machine, no gzip (the function compresses
	// for a client that asks, at a cost to both).
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * c.concurrency, MaxIdleConns: 4 * c.concurrency, DisableCompression: true}}
	if _, err := plain(hc, url, rows[:64], c.concurrency); err != nil { // the cold start
		return rep, fmt.Errorf("warming iris: %w", err)
	}

	// The --batch 64 job's first -single-rows lines: the one-row-a-request
	// job's outputs.jsonl must be the same bytes.
	var singlePrefix string
	paths := []struct {
		name string
		do   func(round int) (float64, error)
		into *[]float64
	}{
		{"plain client, OIP batches of 64", func(int) (float64, error) {
			before := cpuSelf()
			rate, err := plain(hc, url, rows, c.concurrency)
			rep.PlainCPU = append(rep.PlainCPU, (cpuSelf()-before).Seconds()*1e6/float64(len(rows)))
			return rate, err
		}, &rep.Plain},
		{"cortex batch --batch 64", func(r int) (float64, error) {
			rate, cpu, sha, err := cortexBatch(cortex, srv.url, input, filepath.Join(tmp, fmt.Sprintf("out64-%d", r)), c.rows, c.concurrency, 64, min(c.singleRows, c.rows), &singlePrefix)
			rep.Batch64CPU = append(rep.Batch64CPU, cpu.Seconds()*1e6/float64(c.rows))
			if err == nil && rep.OutputSHA != "" && sha != rep.OutputSHA {
				err = fmt.Errorf("round %d's outputs.jsonl differs from round 1's", r+1)
			}
			rep.OutputSHA = sha
			return rate, err
		}, &rep.Batch64},
	}
	if c.singleRows > 0 {
		paths = append(paths, struct {
			name string
			do   func(round int) (float64, error)
			into *[]float64
		}{"cortex batch, one row a request", func(r int) (float64, error) {
			rate, _, sha, err := cortexBatch(cortex, srv.url, singleInput, filepath.Join(tmp, fmt.Sprintf("out1-%d", r)), min(c.singleRows, c.rows), c.concurrency, 1, 0, nil)
			if err == nil && singlePrefix != "" && sha != singlePrefix {
				err = fmt.Errorf("round %d: outputs.jsonl one row a request differs from the first %d lines of --batch 64's", r+1, min(c.singleRows, c.rows))
			}
			return rate, err
		}, &rep.Single})
	}
	for r := range c.rounds {
		for k := range paths {
			p := paths[(k+r)%len(paths)]
			rate, err := p.do(r)
			if err != nil {
				return rep, fmt.Errorf("%s: %w", p.name, err)
			}
			progress("round %d: %s: %.0f rows/s", r+1, p.name, rate)
			*p.into = append(*p.into, rate)
		}
	}
	for i := range rep.Plain {
		rep.RoundRatios = append(rep.RoundRatios, rep.Batch64[i]/rep.Plain[i])
	}
	rep.Ratio = median(rep.RoundRatios)
	if len(rep.Single) > 0 {
		rep.SingleRatio = median(rep.Single) / median(rep.Plain)
	}
	rep.Met = rep.Ratio >= rep.Target
	return rep, nil
}

// irisRows are n flowers drawn around the iris data set's ranges, the
// same each run.
func irisRows(n int) [][4]float32 {
	r := rand.New(rand.NewPCG(19, 19))
	rows := make([][4]float32, n)
	for i := range rows {
		for j, lim := range [4][2]float32{{4.3, 7.9}, {2.0, 4.4}, {1.0, 6.9}, {0.1, 2.5}} {
			v := lim[0] + r.Float32()*(lim[1]-lim[0])
			rows[i][j] = float32(int(v*10+0.5)) / 10
		}
	}
	return rows
}

// writeRows writes one OIP request a line, one row each.
func writeRows(path string, rows [][4]float32) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, r := range rows {
		fmt.Fprintf(w, `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[%g,%g,%g,%g]}]}`+"\n", r[0], r[1], r[2], r[3])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// plain sends rows as OIP requests of 64 rows from conns goroutines and
// returns rows per second; every answer must be a 200 with a label a row.
func plain(hc *http.Client, url string, rows [][4]float32, conns int) (float64, error) {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Go(func() {
			var body bytes.Buffer
			for {
				i := int(next.Add(64)) - 64
				if i >= len(rows) {
					return
				}
				chunk := rows[i:min(i+64, len(rows))]
				body.Reset()
				fmt.Fprintf(&body, `{"inputs":[{"name":"input","shape":[%d,4],"datatype":"FP32","data":[`, len(chunk))
				for k, r := range chunk {
					if k > 0 {
						body.WriteByte(',')
					}
					fmt.Fprintf(&body, "%g,%g,%g,%g", r[0], r[1], r[2], r[3])
				}
				body.WriteString("]}]}")
				resp, err := hc.Post(url, "application/json", bytes.NewReader(body.Bytes()))
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				var out struct {
					Outputs []struct {
						Name string    `json:"name"`
						Data []float64 `json:"data"`
					} `json:"outputs"`
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
				}
				if err == nil {
					err = json.Unmarshal(b, &out)
					if err == nil && (len(out.Outputs) == 0 || out.Outputs[0].Name != "label" || len(out.Outputs[0].Data) != len(chunk)) {
						err = fmt.Errorf("an answer without a label a row: %.200s", b)
					}
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(len(rows)) / time.Since(start).Seconds(), firstErr
}

// cortexBatch runs the CLI's batch job on input and returns rows per
// second of the whole process, its CPU time and the sha256 of its
// outputs.jsonl.
func cortexBatch(cortex, fnURL, input, out string, rows, conns, batch int, prefix int, prefixSHA *string) (float64, time.Duration, string, error) {
	cmd := exec.Command(cortex, "batch", fnURL, "--input", input, "--output", out, "-q", "-o", "json",
		"--concurrency", fmt.Sprint(conns), "--batch", fmt.Sprint(batch))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	load.DieWithParent(cmd)
	start := time.Now()
	stdout, err := cmd.Output()
	took := time.Since(start)
	if err != nil {
		return 0, 0, "", fmt.Errorf("%w\n%s", err, stderr.Bytes())
	}
	var tot struct {
		Total, Succeeded, Failed int
	}
	if err := json.Unmarshal(stdout, &tot); err != nil {
		return 0, 0, "", fmt.Errorf("its totals: %w: %s", err, stdout)
	}
	if tot.Succeeded != rows || tot.Failed != 0 {
		return 0, 0, "", fmt.Errorf("%d succeeded and %d failed of %d rows", tot.Succeeded, tot.Failed, rows)
	}
	b, err := os.ReadFile(filepath.Join(out, "outputs.jsonl"))
	if err != nil {
		return 0, 0, "", err
	}
	if n := bytes.Count(b, []byte("\n")); n != rows {
		return 0, 0, "", fmt.Errorf("outputs.jsonl has %d lines, want %d", n, rows)
	}
	sum := sha256.Sum256(b)
	if prefixSHA != nil && prefix > 0 {
		end := 0
		for range prefix {
			end += bytes.IndexByte(b[end:], '\n') + 1
		}
		p := sha256.Sum256(b[:end])
		*prefixSHA = hex.EncodeToString(p[:])
	}
	os.RemoveAll(out)
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return float64(rows) / took.Seconds(), cpu, hex.EncodeToString(sum[:]), nil
}

// cpuSelf is this process's CPU time so far.
func cpuSelf() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *report) write(w io.Writer) {
	fmt.Fprintf(w, "cortex batch vs a plain client, %d iris rows through cortex serve (%s), %d rounds, %d in flight, GOMAXPROCS %d\n",
		r.Rows, r.Cortex, r.Rounds, r.Concurrency, r.GOMAXPROCS)
	fmt.Fprintf(w, "%-38s %12s  %s\n", "path", "rows/s", "rounds")
	line := func(name string, xs []float64) {
		var each []string
		for _, x := range xs {
			each = append(each, fmt.Sprintf("%.0f", x))
		}
		fmt.Fprintf(w, "%-38s %12.0f  %s\n", name, median(xs), strings.Join(each, " "))
	}
	line("plain client, OIP batches of 64", r.Plain)
	line("cortex batch --batch 64", r.Batch64)
	if len(r.Single) > 0 {
		line(fmt.Sprintf("cortex batch, one row a request (%d)", r.SingleRows), r.Single)
	}
	met := "met"
	if !r.Met {
		met = "NOT met"
	}
	var ratios []string
	for _, x := range r.RoundRatios {
		ratios = append(ratios, fmt.Sprintf("%.2f", x))
	}
	fmt.Fprintf(w, "ratio cortex batch --batch 64 / plain, median of the rounds' (%s): %.2f (target >= %.1f: %s)\n", strings.Join(ratios, " "), r.Ratio, r.Target, met)
	fmt.Fprintf(w, "client CPU per row (user+system), median: plain %.2f us, cortex batch --batch 64 %.2f us (the whole process: start, input digest, journal)\n", median(r.PlainCPU), median(r.Batch64CPU))
	if r.SingleRatio > 0 {
		fmt.Fprintf(w, "ratio one row a request / plain: %.3f\n", r.SingleRatio)
	}
	fmt.Fprintf(w, "outputs.jsonl sha256 (every round): %s\nload average: start %s, end %s\n", r.OutputSHA, r.LoadStart, r.LoadEnd)
}

// server is a `cortex serve` child.
type server struct {
	cmd    *exec.Cmd
	exited chan struct{}
	url    string // iris's route on the front, ending in /
	errs   bytes.Buffer
}

// serve starts `cortex serve dir -o json` on a free loopback port and
// returns once it has printed iris's URL; idle processes are kept for the
// run (--scale-down-after 1h).
func serve(cortex, dir string) (*server, error) {
	cmd := exec.Command(cortex, "serve", dir, "-o", "json", "--addr", "127.0.0.1:0", "--status-every", "0", "--scale-down-after", "1h")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, exited: make(chan struct{})}
	cmd.Stderr = &lockedWriter{w: &s.errs}
	load.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait(); close(s.exited) }()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l struct{ Name, URL string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.URL != "" {
				select {
				case found <- l.URL:
				default:
				}
			}
		}
	}()
	select {
	case u := <-found:
		s.url = strings.TrimSuffix(u, "/") + "/"
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("cortex serve exited: %s", s.errs.String())
	case <-time.After(5 * time.Minute):
		s.stop()
		return nil, errors.New("cortex serve printed no URL within 5 minutes")
	}
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
