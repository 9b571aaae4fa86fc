// Command batching measures what server-side batching buys the iris
// function: iris rows/s and latency at many concurrent single-row clients,
// with batching off and on, in one run. Both functions are the Cortex
// runtime with the built-in ONNX predictor behind the HTTP carrier on
// loopback, in the same process and with the same ONNX Runtime library, and
// are loaded by the same client in alternating rounds.
//
// A third server, the HTTP floor, is a bare net/http handler that reads
// each request and answers a fixed iris response: no JSON, no runtime, no
// model. No server that does the work can answer faster with this client
// on this machine, so floor/off is the most any server-side batching could
// gain here.
//
// The targets: batching at least 3 times the rows/s of unbatched, with
// p99 no worse than batch_interval plus the unbatched p99 (issue 8); and
// batching on capturing at least half the gain the floor leaves,
// (on - off) / (floor - off) >= 0.5 (issue 17). Each mode's CPU per row is
// the process's (clients and servers share it), so on - floor is what the
// function adds to the HTTP work per row.
//
// -trace then serves iris with batching on once more, instrumented, and
// prints where a batched request's time goes. -workload rec measures a
// model whose inference dominates instead (see rec.go).
//
//	go run ./internal/bench/batching [-c 64] [-d 5s] [-rounds 2] [-max-batch 32] [-interval 5ms] [-client go|raw] [-only off|on|floor] [-cpuprofile FILE] [-trace] [-workload iris|rec [-rec-threads N]]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/cortexfn/cortex/internal/bench/load"
	"github.com/cortexfn/cortex/runtime"
)

func main() {
	conns := flag.Int("c", 64, "concurrent clients, one row per request")
	dur := flag.Duration("d", 5*time.Second, "measured duration of each round")
	rounds := flag.Int("rounds", 2, "rounds per mode (alternating)")
	maxBatch := flag.Int("max-batch", 32, "batching.max_batch_size when batching is on")
	interval := flag.Duration("interval", 5*time.Millisecond, "batching.batch_interval when batching is on")
	model := flag.String("model", "samples/iris/model/iris.onnx", "ONNX model")
	only := flag.String("only", "", "run only this mode (off, on or floor), for profiling")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the last measured round to this file")
	clientKind := flag.String("client", "go", "the load's client: go (net/http) or raw (ready-made requests on keep-alive TCP; less CPU per request)")
	trace := flag.Bool("trace", false, "then trace where a batched request's time goes")
	workload := flag.String("workload", "iris", "iris, or rec: the OCR recogniser (a model whose inference dominates)")
	recDir := flag.String("rec-model", "samples/ocr/model", "with -workload rec: the OCR sample's model directory")
	recThreads := flag.Int("rec-threads", 0, "with -workload rec: ONNX Runtime's intra-op threads per session (0: GOMAXPROCS)")
	flag.Parse()
	if *workload == "rec" {
		runRec(*recDir, *conns, *dur, *rounds, *maxBatch, *interval, *recThreads)
		return
	}
	if *workload != "iris" {
		log.Fatalf("-workload %q: use iris or rec", *workload)
	}
	modelPath, err := filepath.Abs(*model)
	if err != nil {
		log.Fatal(err)
	}

	offURL, stopOff := start(modelPath, runtime.Batching{}, *conns)
	defer stopOff()
	onURL, stopOn := start(modelPath, runtime.Batching{MaxBatchSize: *maxBatch, BatchInterval: runtime.Duration(*interval)}, *conns)
	defer stopOn()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}}
	floorURL, stopFloor := floor(client, offURL)
	defer stopFloor()

	runLoad := func(url string, d time.Duration) load.Result { return load.Run(client, url, rows, *conns, d) }
	switch *clientKind {
	case "go":
	case "raw":
		runLoad = func(url string, d time.Duration) load.Result { return load.RunRaw(url, rows, *conns, d) }
	default:
		log.Fatalf("-client %q: use go or raw", *clientKind)
	}
	modes := []struct{ name, url string }{{"off", offURL}, {"on", onURL}, {"floor", floorURL}}
	results := map[string][]load.Result{}
	cpu := map[string]time.Duration{} // CPU used in the measured rounds, by mode
	var prof []byte
	for range *rounds {
		for _, m := range modes {
			if *only != "" && *only != m.name {
				continue
			}
			runLoad(m.url, time.Second) // warm up connections and caches
			stop := profile(*cpuprofile, &prof)
			c0 := cpuTime()
			results[m.name] = append(results[m.name], runLoad(m.url, *dur))
			cpu[m.name] += cpuTime() - c0
			stop()
		}
	}
	if *cpuprofile != "" {
		if err := os.WriteFile(*cpuprofile, prof, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	off, on, fl := load.Merge(results["off"]), load.Merge(results["on"]), load.Merge(results["floor"])
	fmt.Printf("iris over HTTP, %d concurrent single-row clients (%s client), %d x %s per mode, GOMAXPROCS=%d\n",
		*conns, *clientKind, *rounds, *dur, goruntime.GOMAXPROCS(0))
	fmt.Printf("%-48s %10s %10s %10s %10s %6s %8s\n", "server", "rows/s", "p50", "p99", "CPU/row", "cores", "errors")
	perRow := func(mode string, r load.Result) time.Duration {
		return (cpu[mode] / time.Duration(max(r.N, 1))).Round(100 * time.Nanosecond)
	}
	for _, r := range []struct {
		mode, name string
		res        load.Result
	}{
		{"off", "batching off", off},
		{"on", fmt.Sprintf("batching on (max_batch_size %d, batch_interval %s)", *maxBatch, *interval), on},
		{"floor", "HTTP floor (bare net/http, fixed answer)", fl},
	} {
		if r.res.N > 0 {
			// cores: the CPU the process got while loaded, of 2 on this
			// machine; a mode that waits more, or that the kernel shares
			// less of a busy machine with, gets fewer.
			fmt.Printf("%-48s %10.0f %10s %10s %10s %6.2f %8d\n", r.name, r.res.RPS(), r.res.Pct(50), r.res.Pct(99), perRow(r.mode, r.res),
				cpu[r.mode].Seconds()/max(r.res.Elapsed.Seconds(), 1e-9), r.res.Errors)
		}
	}
	if off.N > 0 && on.N > 0 {
		bound := *interval + off.Pct(99)
		fmt.Printf("on/off rows/s %.2f (target >= 3); p99 on %s vs batch_interval + p99 off %s (%s)\n",
			on.RPS()/off.RPS(), on.Pct(99), bound, verdict(on.Pct(99) <= bound))
	}
	if off.N > 0 && fl.N > 0 {
		fmt.Printf("floor/off rows/s %.2f: the most any server-side batching can gain with this client on this machine\n",
			fl.RPS()/off.RPS())
	}
	if off.N > 0 && on.N > 0 && fl.N > 0 {
		fmt.Printf("batching on reaches %.2f of that gain ((on-off)/(floor-off); target >= 0.5)\n",
			(on.RPS()-off.RPS())/(fl.RPS()-off.RPS()))
		// At a fixed CPU budget rows/s goes as 1/(CPU per row): the share
		// is 0.5 when on's CPU per row is the harmonic midpoint of off's
		// and the floor's.
		cOff, cOn, cFl := perRow("off", off), perRow("on", on), perRow("floor", fl)
		need := time.Duration(2 / (1/cOff.Seconds() + 1/cFl.Seconds()) * float64(time.Second)).Round(100 * time.Nanosecond)
		fmt.Printf("CPU per row: the function adds %s to the floor's %s unbatched, %s batched; a share of 0.5 needs batched at %s (%s more than the floor)\n",
			cOff-cFl, cFl, cOn-cFl, need, need-cFl)
	}
	if *trace {
		traceBatching(modelPath, runtime.Batching{MaxBatchSize: *maxBatch, BatchInterval: runtime.Duration(*interval)}, *conns, *dur,
			func(url string, d time.Duration) load.Result { return runLoad(url, d) })
	}
	if off.Errors+on.Errors+fl.Errors > 0 {
		os.Exit(1)
	}
}

// floor serves the HTTP floor: a bare net/http server on loopback that
// reads each request body and answers the response the iris function gives
// for the first row, fetched from it once.
func floor(client *http.Client, irisURL string) (string, func()) {
	resp, err := client.Post(irisURL, "application/json", strings.NewReader(rows[0]))
	if err != nil {
		log.Fatal(err)
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		log.Fatalf("floor: fetching the iris answer: status %d, %v", resp.StatusCode, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/predict", func() { _ = srv.Shutdown(context.Background()) }
}

// profile starts a CPU profile when path is set; stop ends it and keeps
// the round's profile in *out.
func profile(path string, out *[]byte) (stop func()) {
	if path == "" {
		return func() {}
	}
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		log.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); *out = buf.Bytes() }
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

// start serves the iris function with the given batching.
func start(model string, b runtime.Batching, conns int) (string, func()) {
	return load.ServeIris(model, runtime.Limits{MaxConcurrency: conns, MaxQueue: 1024}, b)
}

// rows are distinct single-row requests: the same row over and over would
// flatter nothing here, but varied input is what a real load looks like.
var rows = func() []string {
	var b []string
	for i := range 150 {
		b = append(b, fmt.Sprintf(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[%.1f,%.1f,%.1f,%.1f]}]}`,
			4.3+float64(i%37)*0.1, 2.0+float64(i%23)*0.1, 1.0+float64(i%59)*0.1, 0.1+float64(i%25)*0.1))
	}
	return b
}()
