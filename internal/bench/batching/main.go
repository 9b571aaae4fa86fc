// Command batching measures what server-side batching buys the iris
// function: iris rows/s and latency at many concurrent single-row clients,
// with batching off and on, in one run. Both functions are the Cortex
// runtime with the built-in ONNX predictor behind the HTTP carrier on
// loopback, in the same process and with the same ONNX Runtime library, and
// are loaded by the same client in alternating rounds.
//
// The target (issue 8): batching at least 3 times the rows/s of unbatched,
// with p99 no worse than batch_interval plus the unbatched p99.
//
//	go run ./internal/bench/batching [-c 64] [-d 5s] [-rounds 2] [-max-batch 32] [-interval 5ms]
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
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
	flag.Parse()
	modelPath, err := filepath.Abs(*model)
	if err != nil {
		log.Fatal(err)
	}

	offURL, stopOff := start(modelPath, runtime.Batching{}, *conns)
	defer stopOff()
	onURL, stopOn := start(modelPath, runtime.Batching{MaxBatchSize: *maxBatch, BatchInterval: runtime.Duration(*interval)}, *conns)
	defer stopOn()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}}
	results := map[string][]load.Result{}
	for range *rounds {
		for _, s := range []struct{ name, url string }{{"off", offURL}, {"on", onURL}} {
			load.Run(client, s.url, rows, *conns, time.Second) // warm up connections and caches
			results[s.name] = append(results[s.name], load.Run(client, s.url, rows, *conns, *dur))
		}
	}
	off, on := load.Merge(results["off"]), load.Merge(results["on"])
	fmt.Printf("iris over HTTP, %d concurrent single-row clients, %d x %s per mode, GOMAXPROCS=%d\n",
		*conns, *rounds, *dur, goruntime.GOMAXPROCS(0))
	fmt.Printf("%-44s %10s %10s %10s %8s\n", "batching", "rows/s", "p50", "p99", "errors")
	fmt.Printf("%-44s %10.0f %10s %10s %8d\n", "off", off.RPS(), off.Pct(50), off.Pct(99), off.Errors)
	fmt.Printf("%-44s %10.0f %10s %10s %8d\n", fmt.Sprintf("on (max_batch_size %d, batch_interval %s)", *maxBatch, *interval),
		on.RPS(), on.Pct(50), on.Pct(99), on.Errors)
	bound := *interval + off.Pct(99)
	fmt.Printf("on/off rows/s %.2f (target >= 3); p99 on %s vs batch_interval + p99 off %s (%s)\n",
		on.RPS()/off.RPS(), on.Pct(99), bound, verdict(on.Pct(99) <= bound))
	if off.Errors+on.Errors > 0 {
		os.Exit(1)
	}
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
