// Command ocr measures the OCR sample (samples/ocr) on one fixed rendered
// image, the receipt page of samples/ocr/testpage (480x220, four lines),
// side by side:
//
//   - through `cortex serve`, started as a child process on loopback: the
//     front server, the function's process, the pre stage in WebAssembly,
//     the predictor; one warm-up request, then POST /ocr/predict from 1 and
//     from 4 concurrent keep-alive clients;
//   - in-process, without the runtime (the floor): the pre stage's Go code
//     (raster.Prepare, native, not WebAssembly) and the predictor's Read,
//     called directly from 1 and 4 goroutines, instrumented to split each
//     image's time into pre-processing, detection, recognition and
//     post-processing.
//
// Both are sent the same body ({"image": "<base64 PNG>"}) and must read the
// same four lines. It prints images/s and p50/p99 latency, then where the
// in-process time goes.
//
//	go build -o bin/cortex ./cmd/cortex
//	scripts/fetch-ocr-models.sh
//	go run ./internal/bench/ocr [-d 15s] [-timeout 10m]
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/internal/bench/load"
	"github.com/cortexfn/cortex/samples/ocr/predictor"
	"github.com/cortexfn/cortex/samples/ocr/raster"
	"github.com/cortexfn/cortex/samples/ocr/testpage"
)

func main() {
	dur := flag.Duration("d", 15*time.Second, "measured duration of each run")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up (and stop cortex serve) after this long in all")
	cortexBin := flag.String("cortex", "bin/cortex", "the cortex binary (go build -o bin/cortex ./cmd/cortex)")
	sample := flag.String("sample", "samples/ocr", "the OCR sample's directory")
	flag.Parse()
	log.SetFlags(0)
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil))) // the predictor's model-loading lines

	dir, err := filepath.Abs(*sample)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "model", predictor.DetectorFile)); err != nil {
		log.Fatalf("%v: run scripts/fetch-ocr-models.sh first", err)
	}
	bin, err := filepath.Abs(*cortexBin)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		log.Fatalf("%v: build it with go build -o bin/cortex ./cmd/cortex", err)
	}

	loadBefore := load.LoadAverage()
	page := testpage.Pages[0]
	png := page.PNG()
	body := `{"image":"` + base64.StdEncoding.EncodeToString(png) + `"}`
	conc := []int{1, 4}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	// Through cortex serve first, then stop it, so the two never share the
	// CPUs.
	srv, err := startServe(ctx, bin, dir)
	if err != nil {
		log.Fatal(err)
	}
	served, status, want, err := measureServed(ctx, srv, body, conc, *dur)
	if err != nil {
		tail := srv.tail()
		srv.stop()
		log.Fatalf("%v\ncortex serve's output ends:\n%s", err, tail)
	}
	srv.stop()

	floor, shares, err := measureInProcess(ctx, dir, []byte(body), want, conc, *dur)
	if err != nil {
		log.Fatal(err)
	}

	fmt.Printf("OCR sample (PaddleOCR v4, CPU), fixed image: testpage %q %dx%d PNG, %d lines, %d-byte JSON body\n",
		page.Name, page.W, page.H, len(page.Lines), len(body))
	fmt.Printf("%s per run, GOMAXPROCS=%d, %s/%s, load average before %s, after %s\nlines read: %q\n\n",
		*dur, goruntime.GOMAXPROCS(0), goruntime.GOOS, goruntime.GOARCH, loadBefore, load.LoadAverage(), want)
	fmt.Printf("%-44s %8s %9s %9s %9s %10s %7s\n", "path", "clients", "images/s", "p50", "p99", "CPU/image", "errors")
	for i, c := range conc {
		f, s := floor[i], served[i]
		fc, sc := shares[i].cpu, srv.cpu[i]
		fmt.Printf("%-44s %8d %9.2f %9s %9s %10s %7d\n", "in-process floor (raster.Prepare + Read)", c, f.RPS(), ms(f.Pct(50)), ms(f.Pct(99)), ms(fc), f.Errors)
		fmt.Printf("%-44s %8d %9.2f %9s %9s %10s %7d\n", "cortex serve (POST /ocr/predict, loopback)", c, s.RPS(), ms(s.Pct(50)), ms(s.Pct(99)), ms(sc), s.Errors)
		fmt.Printf("%-44s %8d %8.0f%% %8.0f%% %8.0f%% %9.0f%%\n", "  serve / floor", c, 100*s.RPS()/f.RPS(), pct(s.Pct(50), f.Pct(50)), pct(s.Pct(99), f.Pct(99)), pct(sc, fc))
	}
	fmt.Printf("CPU/image: user+system CPU time per image of this process (floor) or of cortex serve and its function process(es) (serve)\n")
	fmt.Printf("cortex serve after the runs: %s\n\n", status)

	fmt.Printf("where the in-process time goes (mean ms per image, share of the sum)\n")
	fmt.Printf("%-60s", "part")
	for _, c := range conc {
		fmt.Printf(" %17s", fmt.Sprintf("%d client(s)", c))
	}
	fmt.Println()
	for _, part := range parts {
		fmt.Printf("%-60s", part.name)
		for i := range conc {
			t := shares[i]
			fmt.Printf(" %8.1f ms %5.1f%%", t.mean(part.of(t)), 100*float64(part.of(t))/float64(t.total()))
		}
		fmt.Println()
		for _, sub := range part.subs {
			fmt.Printf("  %-58s", sub.name)
			for i := range conc {
				t := shares[i]
				fmt.Printf(" %8.1f ms %5s ", t.mean(sub.of(t)), "")
			}
			fmt.Println()
		}
	}
	bad := 0
	for i := range conc {
		bad += floor[i].Errors + served[i].Errors
	}
	if bad > 0 {
		os.Exit(1)
	}
}

func ms(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fms", float64(d)/1e6)
}

func pct(a, b time.Duration) float64 {
	if a < 0 || b <= 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// server is the `cortex serve` child process.
type server struct {
	// cpu is the CPU time per image of cortex serve and its function
	// processes, per concurrency (negative when unknown).
	cpu  []time.Duration
	cmd  *exec.Cmd
	url  string
	log  *os.File
	done chan struct{}
}

// startServe starts `cortex serve DIR` on a free loopback port.
func startServe(ctx context.Context, bin, dir string) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	logf, err := os.CreateTemp("", "cortex-serve-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", dir, "--addr", addr, "--status-every", "0", "--scale-down-after", "10m")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		os.Remove(logf.Name())
		return nil, err
	}
	s := &server{cmd: cmd, url: "http://" + addr, log: logf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	// Stop it when the time is up, even mid-run.
	go func() {
		select {
		case <-ctx.Done():
			s.stop()
		case <-s.done:
		}
	}()
	return s, nil
}

var stopOnce sync.Once

// stop asks cortex serve to shut down (it stops its function processes),
// then kills its process group if it has not exited within 15 s.
func (s *server) stop() {
	stopOnce.Do(func() {
		pid := s.cmd.Process.Pid
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-s.done
		}
		s.log.Close()
		os.Remove(s.log.Name())
	})
}

// tail is the end of cortex serve's output, for errors.
func (s *server) tail() string {
	b, _ := os.ReadFile(s.log.Name())
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// measureServed warms the function with one request (the first starts its
// process, after cortex serve has built it), checks the answer, then loads
// it. It returns one result per concurrency, the function's state
// afterwards, and the lines read.
func measureServed(ctx context.Context, srv *server, body string, conc []int, d time.Duration) ([]load.Result, string, []string, error) {
	base := srv.url
	url := base + "/ocr/predict"
	var lines []string
	for {
		if ctx.Err() != nil {
			return nil, "", nil, fmt.Errorf("cortex serve did not answer in time")
		}
		lines0, err := predict(ctx, url, body)
		if err == nil {
			lines = lines0
			break
		}
		var st statusError
		if errors.As(err, &st) {
			return nil, "", nil, fmt.Errorf("warm-up request: %v", err)
		}
		select { // not listening yet: cortex serve is still building
		case <-srv.done:
			return nil, "", nil, fmt.Errorf("cortex serve exited")
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	var res []load.Result
	for _, c := range conc {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}}
		load.Run(client, url, []string{body}, c, time.Second) // warm the connections
		if ctx.Err() != nil {
			return nil, "", nil, ctx.Err()
		}
		pids := append([]int{srv.cmd.Process.Pid}, functionPIDs(base)...)
		cpu0 := procsCPU(pids)
		r := load.Merge([]load.Result{load.Run(client, url, []string{body}, c, d)})
		res = append(res, r)
		srv.cpu = append(srv.cpu, perImage(procsCPU(pids)-cpu0, r.N))
		client.CloseIdleConnections()
	}
	return res, serveStatus(base), lines, nil
}

type statusError struct {
	code int
	body string
}

func (e statusError) Error() string { return fmt.Sprintf("status %d: %.500s", e.code, e.body) }

// predict sends one request and returns the lines' text.
func predict(ctx context.Context, url, body string) ([]string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, statusError{resp.StatusCode, string(b)}
	}
	var out predictor.Output
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return texts(&out), nil
}

func texts(o *predictor.Output) []string {
	t := []string{}
	for _, l := range o.Lines {
		t = append(t, l.Text)
	}
	return t
}

// serveStatus summarises GET /-/status: how many processes served the
// function, and how often it started and scaled.
func serveStatus(base string) string {
	resp, err := http.Get(base + "/-/status")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var st struct {
		Functions []struct {
			Name       string `json:"name"`
			Ready      int    `json:"ready"`
			ColdStarts int64  `json:"cold_starts"`
			ScaleUps   int64  `json:"scale_ups"`
			Crashes    int64  `json:"crashes"`
		} `json:"functions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return err.Error()
	}
	var parts []string
	for _, f := range st.Functions {
		parts = append(parts, fmt.Sprintf("%s: %d ready process(es), %d cold start(s), %d scale-up(s), %d crash(es)", f.Name, f.Ready, f.ColdStarts, f.ScaleUps, f.Crashes))
	}
	return strings.Join(parts, "; ")
}

// functionPIDs are the function's process ids from GET /-/status.
func functionPIDs(base string) []int {
	resp, err := http.Get(base + "/-/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st struct {
		Functions []struct {
			Processes []struct {
				PID int `json:"pid"`
			} `json:"processes"`
		} `json:"functions"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	var pids []int
	for _, f := range st.Functions {
		for _, p := range f.Processes {
			pids = append(pids, p.PID)
		}
	}
	return pids
}

// procsCPU is the user+system CPU time the processes have used
// (load.ProcessCPU; -1 where there is none).
func procsCPU(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		d, err := load.ProcessCPU(pid)
		if err != nil {
			return -1
		}
		sum += d
	}
	return sum
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func perImage(d time.Duration, n int) time.Duration {
	if d < 0 || n == 0 {
		return -1
	}
	return d / time.Duration(n)
}

// timings adds up where in-process time went over n images.
type timings struct {
	cpu                                  time.Duration // CPU time of this process per image
	n                                    int
	prepare                              time.Duration // raster.Prepare: body, decode, flatten, resize
	detIn, det, boxes, crop, rec, decode time.Duration // from predictor.Timings
}

func (t *timings) add(prepare time.Duration, p predictor.Timings) {
	t.n++
	t.prepare += prepare
	t.detIn += p.DetectInput
	t.det += p.Detect
	t.boxes += p.Boxes
	t.crop += p.Crop
	t.rec += p.Recognise
	t.decode += p.Decode
}

func (t timings) total() time.Duration {
	return t.prepare + t.detIn + t.det + t.boxes + t.crop + t.rec + t.decode
}

func (t timings) mean(d time.Duration) float64 { return float64(d) / float64(max(t.n, 1)) / 1e6 }

type part struct {
	name string
	of   func(timings) time.Duration
	subs []part
}

// parts is how the stages are grouped into the four shares.
var parts = []part{
	{"pre-processing (decode, resize, normalise, crop lines)", func(t timings) time.Duration { return t.prepare + t.detIn + t.crop }, []part{
		{"raster.Prepare: unwrap, decode PNG, resize (the pre stage)", func(t timings) time.Duration { return t.prepare }, nil},
		{"detector input tensor (normalise)", func(t timings) time.Duration { return t.detIn }, nil},
		{"line crops rectified to 48 px (recogniser input)", func(t timings) time.Duration { return t.crop }, nil},
	}},
	{"detection (DB model, ONNX Runtime)", func(t timings) time.Duration { return t.det }, nil},
	{"recognition (SVTR model, ONNX Runtime, once per line)", func(t timings) time.Duration { return t.rec }, nil},
	{"post-processing (DB boxes, reading order, CTC decode)", func(t timings) time.Duration { return t.boxes + t.decode }, []part{
		{"threshold, regions, rectangles, unclip, order", func(t timings) time.Duration { return t.boxes }, nil},
		{"CTC greedy decode, boxes to image pixels", func(t timings) time.Duration { return t.decode }, nil},
	}},
}

// measureInProcess runs the pipeline without the runtime: the stage's Go
// code and the predictor's Read, from c goroutines at once for d.
func measureInProcess(ctx context.Context, dir string, body []byte, want []string, conc []int, d time.Duration) ([]load.Result, []timings, error) {
	o := predictor.New().(*predictor.OCR)
	if err := o.Init(ctx, functions.Config{Name: "ocr", Dir: dir, Model: filepath.Join(dir, "model")}); err != nil {
		return nil, nil, err
	}
	defer o.Close()
	one := func() (time.Duration, predictor.Timings, error) {
		var t predictor.Timings
		start := time.Now()
		f, err := raster.Prepare(body, raster.Limits{})
		if err != nil {
			return 0, t, err
		}
		prep := time.Since(start)
		out, err := o.Read(ctx, f, &t)
		if err != nil {
			return 0, t, err
		}
		if got := texts(out); !slices.Equal(got, want) {
			return 0, t, fmt.Errorf("in-process read %q, cortex serve read %q", got, want)
		}
		return prep, t, nil
	}
	if _, _, err := one(); err != nil { // warm up, and check the answer
		return nil, nil, err
	}
	var res []load.Result
	var all []timings
	for _, c := range conc {
		cpu0 := selfCPU()
		var (
			mu     sync.Mutex
			wg     sync.WaitGroup
			r      load.Result
			tt     timings
			cutoff = time.Now().Add(d)
			start  = time.Now()
		)
		for range c {
			wg.Go(func() {
				var lat []time.Duration
				var mine timings
				errs := 0
				for time.Now().Before(cutoff) && ctx.Err() == nil {
					t0 := time.Now()
					prep, t, err := one()
					if err != nil {
						errs++
						continue
					}
					lat = append(lat, time.Since(t0))
					mine.add(prep, t)
				}
				mu.Lock()
				defer mu.Unlock()
				r.Lat = append(r.Lat, lat...)
				r.Errors += errs
				tt.n += mine.n
				tt.prepare += mine.prepare
				tt.detIn += mine.detIn
				tt.det += mine.det
				tt.boxes += mine.boxes
				tt.crop += mine.crop
				tt.rec += mine.rec
				tt.decode += mine.decode
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("in-process run: %w", ctx.Err())
		}
		r.Elapsed = time.Since(start)
		r.N = len(r.Lat)
		tt.cpu = perImage(selfCPU()-cpu0, r.N)
		res = append(res, load.Merge([]load.Result{r}))
		all = append(all, tt)
	}
	return res, all, nil
}
