// Command serving measures the iris function's HTTP serving throughput and
// latency through the Cortex runtime, beside a baseline: a bare net/http
// server that calls onnxruntime_go directly, written the way a user would
// without Cortex. Both serve the same model with the same ONNX Runtime
// library in the same process, and are loaded by the same client, in
// alternating rounds, so the ratio is what the runtime costs.
//
//	go run ./internal/bench/serving [-c 64] [-d 5s] [-rounds 2]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/cortexfn/cortex/internal/bench/load"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/onnx"
)

const body = `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`

func main() {
	conns := flag.Int("c", 64, "concurrent connections")
	dur := flag.Duration("d", 5*time.Second, "measured duration of each round")
	rounds := flag.Int("rounds", 2, "rounds per server (alternating)")
	model := flag.String("model", "samples/iris/model/iris.onnx", "ONNX model")
	flag.Parse()
	modelPath, err := filepath.Abs(*model)
	if err != nil {
		log.Fatal(err)
	}

	cortexURL, stopCortex := startCortex(modelPath)
	defer stopCortex()
	baseURL, stopBase := startBaseline(modelPath)
	defer stopBase()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}}
	results := map[string][]load.Result{}
	for r := 0; r < *rounds; r++ {
		for _, s := range []struct{ name, url string }{{"baseline", baseURL}, {"cortex", cortexURL}} {
			load.Run(client, s.url, []string{body}, *conns, time.Second) // warm up connections and caches
			results[s.name] = append(results[s.name], load.Run(client, s.url, []string{body}, *conns, *dur))
		}
	}
	base, cx := load.Merge(results["baseline"]), load.Merge(results["cortex"])
	fmt.Printf("iris over HTTP, %d concurrent connections, %d x %s per server, GOMAXPROCS=%d\n",
		*conns, *rounds, *dur, goMaxProcs())
	fmt.Printf("%-34s %10s %10s %10s %8s\n", "server", "req/s", "p50", "p99", "errors")
	fmt.Printf("%-34s %10.0f %10s %10s %8d\n", "baseline (net/http + onnxruntime_go)", base.RPS(), base.Pct(50), base.Pct(99), base.Errors)
	fmt.Printf("%-34s %10.0f %10s %10s %8d\n", "cortex runtime (iris function)", cx.RPS(), cx.Pct(50), cx.Pct(99), cx.Errors)
	fmt.Printf("ratio cortex/baseline: throughput %.2f, p50 %.2f, p99 %.2f\n",
		cx.RPS()/base.RPS(), ratio(cx.Pct(50), base.Pct(50)), ratio(cx.Pct(99), base.Pct(99)))
	if base.Errors+cx.Errors > 0 {
		os.Exit(1)
	}
}

func goMaxProcs() int { return goruntime.GOMAXPROCS(0) }

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// startCortex serves the iris function the way a packaged function does:
// the runtime with the built-in ONNX predictor behind the HTTP carrier.
func startCortex(model string) (string, func()) {
	return load.ServeIris(model, runtime.Limits{MaxConcurrency: 64, MaxQueue: 1024}, runtime.Batching{})
}

// startBaseline is the hand-written server: decode the OIP request, run the
// session, encode the OIP response. No limits, metrics or request ids.
func startBaseline(model string) (string, func()) {
	if !ort.IsInitialized() {
		lib, err := onnx.FindLibrary("")
		if err != nil {
			log.Fatal(err)
		}
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(); err != nil {
			log.Fatal(err)
		}
	}
	session, err := ort.NewDynamicAdvancedSession(model, []string{"input"}, []string{"label", "probabilities"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	type tensor struct {
		Name     string    `json:"name"`
		Shape    []int64   `json:"shape"`
		Datatype string    `json:"datatype"`
		Data     []float32 `json:"data"`
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Inputs []tensor `json:"inputs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Inputs) != 1 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		in, err := ort.NewTensor(ort.NewShape(req.Inputs[0].Shape...), req.Inputs[0].Data)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer in.Destroy()
		outs := []ort.Value{nil, nil}
		if err := session.Run([]ort.Value{in}, outs); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer outs[0].Destroy()
		defer outs[1].Destroy()
		label := outs[0].(*ort.Tensor[int64])
		probs := outs[1].(*ort.Tensor[float32])
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"model_name": "iris",
			"outputs": []any{
				map[string]any{"name": "label", "shape": label.GetShape(), "datatype": "INT64", "data": label.GetData()},
				map[string]any{"name": "probabilities", "shape": probs.GetShape(), "datatype": "FP32", "data": probs.GetData()},
			},
		})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/predict", func() { _ = srv.Close(); _ = session.Destroy() }
}
