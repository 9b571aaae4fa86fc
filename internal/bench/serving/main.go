// Command serving measures the iris function's HTTP serving throughput and
// latency through the Cortex runtime, beside a baseline: a bare net/http
// server that calls onnxruntime_go directly, written the way a user would
// without Cortex. Both serve the same model with the same ONNX Runtime
// library, each in its own process started by this one, and are loaded by
// the same client from this process, in alternating rounds, so the ratio
// is what the runtime costs.
//
//	go run ./internal/bench/serving [-c 64] [-d 5s] [-rounds 2] [-client go|raw]
//	    [-path /v2/models/iris/infer] [-binary DIR] [-cpuprofile F] [-memprofile F]
//	go run ./internal/bench/serving -serve cortex|baseline -addr HOST:PORT [-cpuprofile F] [-memprofile F]
//
// -binary DIR serves the cortex side with a packaged function instead (its
// executable DIR/bootstrap, as in an unzipped lambda.zip, with PORT set),
// as Knative runs it. -cpuprofile and -memprofile profile the cortex server
// (run in process, not -binary) over its whole life, the paired rounds
// included: the profiles hold the server's work only, not the client's.
// -serve runs one of the two servers alone until SIGINT or SIGTERM, for an
// outside load generator (wrk) and the profiler.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/cortexfn/cortex/internal/bench/irisfloor"
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
	path := flag.String("path", "/v2/models/iris/infer", "the route requests are POSTed to (the baseline answers every path)")
	clientKind := flag.String("client", "go", "load generator: go (net/http's client) or raw (ready-made requests, a minimal parser)")
	binary := flag.String("binary", "", "serve the cortex side with the packaged function in this directory (its bootstrap executable)")
	serve := flag.String("serve", "", "serve only this server (cortex or baseline) on -addr until SIGINT or SIGTERM")
	addr := flag.String("addr", "127.0.0.1:0", "address -serve listens on")
	cpuProfile := flag.String("cpuprofile", "", "write the cortex server's CPU profile to this file")
	memProfile := flag.String("memprofile", "", "write the cortex server's allocation profile to this file")
	intraOp := flag.Int("intra-op-threads", 0, "the cortex server's predictor.intra_op_threads (0: the predictor's default)")
	flag.Parse()
	modelPath, err := filepath.Abs(*model)
	if err != nil {
		log.Fatal(err)
	}
	if *serve != "" {
		if err := serveOne(*serve, *addr, modelPath, *cpuProfile, *memProfile, *intraOp); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *binary != "" && (*cpuProfile != "" || *memProfile != "") {
		log.Fatal("-cpuprofile and -memprofile profile the in-process cortex server: not with -binary")
	}

	var cortex *child
	if *binary != "" {
		cortex, err = startBinary(*binary)
	} else {
		cortex, err = startSelf("cortex", modelPath, *cpuProfile, *memProfile, *intraOp)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer cortex.stop()
	base, err := startSelf("baseline", modelPath, "", "", 0)
	if err != nil {
		log.Fatal(err)
	}
	defer base.stop()

	run := func(url string, d time.Duration) load.Result {
		if *clientKind == "raw" {
			return load.RunRaw(url, []string{body}, *conns, d)
		}
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}}
		defer client.CloseIdleConnections()
		return load.Run(client, url, []string{body}, *conns, d)
	}
	results := map[string][]load.Result{}
	cpu := map[string]time.Duration{} // the server process's CPU time in the measured rounds
	for r := 0; r < *rounds; r++ {
		for _, s := range []struct {
			name string
			c    *child
		}{{"baseline", base}, {"cortex", cortex}} {
			url := "http://" + s.c.addr + *path
			run(url, time.Second) // warm up connections and caches
			t0 := s.c.cpu()
			results[s.name] = append(results[s.name], run(url, *dur))
			cpu[s.name] += s.c.cpu() - t0
		}
	}
	b, cx := load.Merge(results["baseline"]), load.Merge(results["cortex"])
	perReq := func(name string, r load.Result) time.Duration {
		if r.N == 0 {
			return 0
		}
		return (cpu[name] / time.Duration(r.N)).Round(100 * time.Nanosecond)
	}
	what := "cortex runtime (iris function)"
	if *binary != "" {
		what = "packaged iris function binary"
	}
	fmt.Printf("iris over HTTP, POST %s, %d concurrent connections (%s client), %d x %s per server, GOMAXPROCS=%d\n",
		*path, *conns, *clientKind, *rounds, *dur, goruntime.GOMAXPROCS(0))
	fmt.Printf("%-37s %10s %10s %10s %12s %8s\n", "server", "req/s", "p50", "p99", "CPU/request", "errors")
	fmt.Printf("%-37s %10.0f %10s %10s %12s %8d\n", "baseline (net/http + onnxruntime_go)", b.RPS(), b.Pct(50), b.Pct(99), perReq("baseline", b), b.Errors)
	fmt.Printf("%-37s %10.0f %10s %10s %12s %8d\n", what, cx.RPS(), cx.Pct(50), cx.Pct(99), perReq("cortex", cx), cx.Errors)
	fmt.Printf("ratio cortex/baseline: throughput %.2f, p50 %.2f, p99 %.2f, server CPU per request %.2f\n",
		cx.RPS()/b.RPS(), ratio(cx.Pct(50), b.Pct(50)), ratio(cx.Pct(99), b.Pct(99)), ratio(perReq("cortex", cx), perReq("baseline", b)))
	if b.Errors+cx.Errors > 0 {
		cortex.stop()
		base.stop()
		os.Exit(1)
	}
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// child is a server process this one started.
type child struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

// startSelf runs this program with -serve name on a free loopback port.
func startSelf(name, model, cpuProfile, memProfile string, intraOp int) (*child, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"-serve", name, "-addr", addr, "-model", model, "-intra-op-threads", strconv.Itoa(intraOp)}
	if cpuProfile != "" {
		args = append(args, "-cpuprofile", cpuProfile)
	}
	if memProfile != "" {
		args = append(args, "-memprofile", memProfile)
	}
	return start(exec.Command(os.Args[0], args...), addr)
}

// startBinary runs the packaged function in dir as a platform does: its
// executable with PORT set, working directory its own.
func startBinary(dir string) (*child, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(filepath.Join(dir, "bootstrap"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT="+port, "CORTEX_LOG_LEVEL=warn")
	return start(cmd, addr)
}

func start(cmd *exec.Cmd, addr string) (*child, error) {
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	load.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	// Ready once it answers a prediction.
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Post("http://"+addr+"/predict", "application/json", strings.NewReader(body))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("%s exited before it was ready", cmd.Path)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("%s not ready after 30s", cmd.Path)
		}
	}
}

// cpu is the CPU time the process has used so far (load.ProcessCPU); 0
// where there is none.
func (c *child) cpu() time.Duration {
	d, _ := load.ProcessCPU(c.cmd.Process.Pid)
	return d
}

// stop sends SIGTERM, so a profiled server writes its profiles, and waits.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// serveOne serves one server on addr until SIGINT or SIGTERM, profiling
// it when asked.
func serveOne(name, addr, model, cpuProfile, memProfile string, intraOp int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	switch name {
	case "cortex":
		err = serveCortex(ctx, ln, model, intraOp)
	case "baseline":
		err = serveBaseline(ctx, ln, model)
	default:
		err = fmt.Errorf("-serve %q: want cortex or baseline", name)
	}
	if err != nil {
		return err
	}
	if memProfile != "" {
		f, err := os.Create(memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		return pprof.Lookup("allocs").WriteTo(f, 0)
	}
	return nil
}

// serveCortex serves the iris function the way a packaged function does:
// the runtime with the built-in ONNX predictor behind the HTTP carrier
// (runtime.Serve, which a generated main reaches through runtime.Main).
func serveCortex(ctx context.Context, ln net.Listener, model string, intraOp int) error {
	cfg := runtime.Config{
		Name:      "iris",
		Predictor: runtime.PredictorConfig{Type: "onnx", Model: model},
		Limits:    runtime.Limits{MaxConcurrency: 64, MaxQueue: 1024},
	}
	if intraOp > 0 {
		cfg.Predictor.Values = map[string]any{onnx.ConfigIntraOpThreads: intraOp}
	}
	rt, err := runtime.New(onnx.New(), cfg)
	if err != nil {
		return err
	}
	return rt.Serve(ctx, ln)
}

// serveBaseline is the hand-written server: decode the OIP request, run the
// session, encode the OIP response. No limits, metrics or request ids.
func serveBaseline(ctx context.Context, ln net.Listener, model string) error {
	lib, err := onnx.FindLibrary("")
	if err != nil {
		return err
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(); err != nil {
		return err
	}
	session, err := irisfloor.NewSession(model)
	if err != nil {
		return err
	}
	defer session.Destroy()
	h := irisfloor.Handler(session)
	srv := &http.Server{Handler: h}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
