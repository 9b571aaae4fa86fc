package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/onnx"
	"github.com/cortexfn/cortex/runtime/wasm"
)

func newBatchRuntime(t *testing.T, p functions.Predictor, b runtime.Batching, limits runtime.Limits) *runtime.Runtime {
	t.Helper()
	cfg := runtime.Config{Name: "test", Limits: limits, Batching: b}
	rt, err := runtime.New(p, cfg, runtime.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return rt
}

// batchSizes returns the count and sum of the cortex_batch_size histogram.
func batchSizes(t *testing.T, rt *runtime.Runtime) (count uint64, sum float64) {
	t.Helper()
	f, ok := scrape(t, rt)["cortex_batch_size"]
	if !ok {
		t.Fatal("no cortex_batch_size metric")
	}
	h := f.GetMetric()[0].GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum()
}

func irisInput(i int) []float32 {
	return []float32{4.3 + float32(i%37)*0.1, 2.0 + float32(i%23)*0.1, 1.0 + float32(i%59)*0.1, 0.1 + float32(i%25)*0.1}
}

func irisRequest(i int) *functions.Request {
	b, _ := json.Marshal(irisInput(i))
	body := fmt.Sprintf(`{"id":"%d","inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":%s}]}`, i, b)
	return &functions.Request{Method: "POST", Path: "/predict", ContentType: "application/json", Body: []byte(body)}
}

// TestBatchingIris runs the real iris model through the real runtime with
// batching on: every caller gets its own prediction, a malformed request
// gets its own 400 without failing its batch, and batches form.
func TestBatchingIris(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("..", "samples", "iris"))
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "model", "iris.onnx")

	// Unbatched answers, from a predictor of its own.
	plain := onnx.New()
	if err := plain.Init(context.Background(), functions.Config{Name: "test", Dir: dir, Model: model}); err != nil {
		t.Fatal(err)
	}
	defer plain.Close()

	p := onnx.New()
	rt, err := runtime.New(p, runtime.Config{Name: "test", Dir: dir,
		Predictor: runtime.PredictorConfig{Type: "onnx", Model: model},
		Limits:    runtime.Limits{MaxConcurrency: 256},
		Batching:  runtime.Batching{MaxBatchSize: 32, BatchInterval: runtime.Duration(5 * time.Millisecond)},
	}, runtime.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer rt.Shutdown(context.Background())

	const callers = 200
	got := make([]*functions.Response, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			req := irisRequest(i)
			if i%10 == 7 {
				req.Body = []byte(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}]}`)
			}
			got[i], errs[i] = rt.Invoke(context.Background(), req)
		})
	}
	close(start)
	wg.Wait()

	for i := range callers {
		if i%10 == 7 {
			if s := status(got[i], errs[i]); s != http.StatusUnprocessableEntity {
				t.Errorf("caller %d of the wrong datatype: got %d, want 422", i, s)
			}
			continue
		}
		if errs[i] != nil || got[i].StatusCode() != 200 {
			t.Errorf("caller %d: %v %v", i, status(got[i], errs[i]), errs[i])
			continue
		}
		want, err := plain.Predict(context.Background(), irisRequest(i))
		if err != nil {
			t.Fatal(err)
		}
		g, err := oip.DecodeResponse(got[i].Body)
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		w, _ := oip.DecodeResponse(want.Body)
		if g.ID != fmt.Sprint(i) {
			t.Errorf("caller %d: got the answer to request %q", i, g.ID)
		}
		gl, _ := oip.Values[int64](g.Output("label").Data)
		wl, _ := oip.Values[int64](w.Output("label").Data)
		gp, _ := oip.Values[float32](g.Output("probabilities").Data)
		wp, _ := oip.Values[float32](w.Output("probabilities").Data)
		if !slices.Equal(gl, wl) || len(gp) != 3 || !close32(gp, wp) {
			t.Errorf("caller %d: got %v %v, want %v %v", i, gl, gp, wl, wp)
		}
	}
	count, sum := batchSizes(t, rt)
	t.Logf("%d batches for %d requests (mean size %.1f)", count, callers, sum/float64(count))
	if sum != callers {
		t.Errorf("batch sizes sum to %v, want %d", sum, callers)
	}
	if count >= callers {
		t.Errorf("%d batches for %d callers: no batch held more than one request", count, callers)
	}
}

func close32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if d := a[i] - b[i]; d > 1e-6 || d < -1e-6 {
			return false
		}
	}
	return true
}

// batchRecorder is a BatchPredictor that records the batches it serves and
// answers each request with its own body, unless batch says otherwise.
type batchRecorder struct {
	mu      sync.Mutex
	sizes   []int
	singles atomic.Int32
	batch   func(ctx context.Context, reqs []*functions.Request) ([]*functions.Response, error)
}

func (b *batchRecorder) Predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	b.singles.Add(1)
	return functions.Bytes(http.StatusOK, "text/plain", req.Body), nil
}

func (b *batchRecorder) PredictBatch(ctx context.Context, reqs []*functions.Request) ([]*functions.Response, error) {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(reqs))
	b.mu.Unlock()
	if b.batch != nil {
		return b.batch(ctx, reqs)
	}
	resps := make([]*functions.Response, len(reqs))
	for i, r := range reqs {
		resps[i] = functions.Bytes(http.StatusOK, "text/plain", r.Body)
	}
	return resps, nil
}

func (b *batchRecorder) batches() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.sizes)
}

// invokeAll sends n requests at once, body "0" to "n-1", and returns the
// statuses and bodies.
func invokeAll(rt *runtime.Runtime, n int) (statuses []int, bodies []string) {
	statuses, bodies = make([]int, n), make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := rt.Invoke(context.Background(), &functions.Request{Body: []byte(fmt.Sprint(i))})
			statuses[i] = status(resp, err)
			if err == nil {
				bodies[i] = string(resp.Body)
			}
		})
	}
	wg.Wait()
	return statuses, bodies
}

func TestBatchFullAndInterval(t *testing.T) {
	p := &batchRecorder{}
	rt := newBatchRuntime(t, p, runtime.Batching{MaxBatchSize: 4, BatchInterval: runtime.Duration(10 * time.Second)}, runtime.Limits{})
	// With a 10s interval, only full batches run: 8 callers make two.
	statuses, bodies := invokeAll(rt, 8)
	for i := range 8 {
		if statuses[i] != 200 || bodies[i] != fmt.Sprint(i) {
			t.Errorf("caller %d: got %d %q, want 200 %q", i, statuses[i], bodies[i], fmt.Sprint(i))
		}
	}
	if got := p.batches(); !slices.Equal(got, []int{4, 4}) {
		t.Errorf("batches: got %v, want [4 4]", got)
	}

	p = &batchRecorder{}
	rt = newBatchRuntime(t, p, runtime.Batching{MaxBatchSize: 100, BatchInterval: runtime.Duration(20 * time.Millisecond)}, runtime.Limits{})
	start := time.Now()
	statuses, _ = invokeAll(rt, 3)
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("a batch that never filled ran after %v, before the 20ms interval", took)
	}
	if !slices.Equal(statuses, []int{200, 200, 200}) {
		t.Errorf("statuses: got %v", statuses)
	}
	if got := p.batches(); len(got) == 0 || got[0] < 2 {
		t.Errorf("batches: got %v, want the callers together", got)
	}
}

func TestBatchErrors(t *testing.T) {
	tests := []struct {
		name   string
		batch  func(context.Context, []*functions.Request) ([]*functions.Response, error)
		status int
	}{
		{name: "status error", status: http.StatusUnprocessableEntity,
			batch: func(context.Context, []*functions.Request) ([]*functions.Response, error) {
				return nil, functions.Errorf(http.StatusUnprocessableEntity, "bad batch")
			}},
		{name: "plain error", status: http.StatusInternalServerError,
			batch: func(context.Context, []*functions.Request) ([]*functions.Response, error) {
				return nil, errors.New("boom")
			}},
		{name: "panic", status: http.StatusInternalServerError,
			batch: func(context.Context, []*functions.Request) ([]*functions.Response, error) {
				panic("boom")
			}},
		{name: "too few responses", status: http.StatusInternalServerError,
			batch: func(_ context.Context, reqs []*functions.Request) ([]*functions.Response, error) {
				return make([]*functions.Response, len(reqs)-1), nil
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &batchRecorder{batch: tc.batch}
			rt := newBatchRuntime(t, p, runtime.Batching{MaxBatchSize: 5, BatchInterval: runtime.Duration(10 * time.Second)}, runtime.Limits{})
			statuses, _ := invokeAll(rt, 5)
			for i, got := range statuses {
				if got != tc.status {
					t.Errorf("member %d: got %d, want %d", i, got, tc.status)
				}
			}
			// The process keeps serving.
			p.batch = nil
			statuses, bodies := invokeAll(rt, 5)
			if statuses[0] != 200 || bodies[0] != "0" {
				t.Errorf("after the failed batch: got %d %q, want 200 \"0\"", statuses[0], bodies[0])
			}
		})
	}
}

// TestBatchDeadlines: a request whose deadline ends before the batch would
// close runs alone at once; a caller that leaves while queued is dropped
// from its batch; one that leaves while the batch runs gets its deadline
// answer and the others their own.
func TestBatchDeadlines(t *testing.T) {
	t.Run("short deadline runs alone", func(t *testing.T) {
		p := &batchRecorder{}
		rt := newBatchRuntime(t, p, runtime.Batching{MaxBatchSize: 8, BatchInterval: runtime.Duration(time.Second)}, runtime.Limits{})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		// Held for the 1 s interval, it would meet its 100 ms deadline and
		// answer 504: a 200 with no batch formed means it ran alone at once.
		resp, err := rt.Invoke(ctx, &functions.Request{Body: []byte("x")})
		if status(resp, err) != 200 {
			t.Errorf("got %d, want 200 at once", status(resp, err))
		}
		if p.singles.Load() != 1 || len(p.batches()) != 0 {
			t.Errorf("got %d Predict and batches %v, want one Predict", p.singles.Load(), p.batches())
		}
	})

	t.Run("caller leaves while queued", func(t *testing.T) {
		p := &batchRecorder{}
		rt := newBatchRuntime(t, p, runtime.Batching{MaxBatchSize: 3, BatchInterval: runtime.Duration(10 * time.Second)}, runtime.Limits{})
		ctx, cancel := context.WithCancel(context.Background())
		left := make(chan int, 1)
		go func() {
			resp, err := rt.Invoke(ctx, &functions.Request{Body: []byte("gone")})
			left <- status(resp, err)
		}()
		waitFor(t, func() bool { return gaugeValue(t, rt, "cortex_requests_in_flight") == 1 })
		cancel()
		if got := <-left; got != 499 {
			t.Errorf("caller that left: got %d, want 499", got)
		}
		waitFor(t, func() bool { return gaugeValue(t, rt, "cortex_requests_in_flight") == 0 })
		statuses, bodies := invokeAll(rt, 3)
		if !slices.Equal(statuses, []int{200, 200, 200}) || !slices.Equal(bodies, []string{"0", "1", "2"}) {
			t.Errorf("got %v %v, want each its own answer", statuses, bodies)
		}
		if got := p.batches(); !slices.Equal(got, []int{3}) {
			t.Errorf("batches: got %v, want [3] (the caller that left dropped)", got)
		}
	})

	t.Run("deadline passes while the batch runs", func(t *testing.T) {
		release := make(chan struct{})
		cancelled := make(chan struct{})
		p := &batchRecorder{batch: func(ctx context.Context, reqs []*functions.Request) ([]*functions.Response, error) {
			select {
			case <-release:
			case <-ctx.Done():
				close(cancelled)
				return nil, ctx.Err()
			}
			resps := make([]*functions.Response, len(reqs))
			for i, r := range reqs {
				resps[i] = functions.Bytes(http.StatusOK, "text/plain", r.Body)
			}
			return resps, nil
		}}
		rt := newBatchRuntime(t, p, runtime.Batching{MaxBatchSize: 2, BatchInterval: runtime.Duration(time.Millisecond)},
			runtime.Limits{Timeout: runtime.Duration(200 * time.Millisecond)})
		start := time.Now()
		statuses, _ := invokeAll(rt, 2)
		if !slices.Equal(statuses, []int{504, 504}) {
			t.Errorf("got %v, want 504 for both members", statuses)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("answers took %v", took)
		}
		// Every member has gone: the batch's run is cancelled, not left
		// to block.
		select {
		case <-cancelled:
		case <-time.After(5 * time.Second):
			t.Error("the batch run was not cancelled when all its members had gone")
			close(release)
		}
		waitFor(t, func() bool { return gaugeValue(t, rt, "cortex_requests_in_flight") == 0 })
	})
}

// TestBatchMemberLeaves: when a member's caller goes while its batch runs
// (the member that filled the batch, which once ran it on its own
// goroutine, or any other), the caller gets its 499 at once, the run goes
// on for the members still waiting, and they get their answers.
func TestBatchMemberLeaves(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var runErr atomic.Value
	p := &batchRecorder{batch: func(ctx context.Context, reqs []*functions.Request) ([]*functions.Response, error) {
		close(started)
		<-release
		runErr.Store(fmt.Sprint(ctx.Err()))
		resps := make([]*functions.Response, len(reqs))
		for i, r := range reqs {
			resps[i] = functions.Bytes(http.StatusOK, "text/plain", r.Body)
		}
		return resps, nil
	}}
	rt := newBatchRuntime(t, p, runtime.Batching{MaxBatchSize: 2, BatchInterval: runtime.Duration(10 * time.Second)}, runtime.Limits{})
	stays := make(chan string, 1)
	go func() {
		resp, err := rt.Invoke(context.Background(), &functions.Request{Body: []byte("stays")})
		if err != nil {
			stays <- err.Error()
			return
		}
		stays <- string(resp.Body)
	}()
	waitFor(t, func() bool { return gaugeValue(t, rt, "cortex_requests_in_flight") == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	goes := make(chan int, 1)
	go func() {
		resp, err := rt.Invoke(ctx, &functions.Request{Body: []byte("goes")})
		goes <- status(resp, err)
	}()
	<-started
	cancel()
	if got := <-goes; got != 499 {
		t.Errorf("the caller that left: got %d, want 499", got)
	}
	close(release)
	if got := <-stays; got != "stays" {
		t.Errorf("the member that stayed: got %q, want its own answer", got)
	}
	if got := runErr.Load(); got != "<nil>" {
		t.Errorf("the run's context: %v, want it alive while a member waits", got)
	}
	waitFor(t, func() bool { return gaugeValue(t, rt, "cortex_requests_in_flight") == 0 })
}

// TestBatchRunOutlivesItsCallers: a PredictBatch that ignores its context
// runs on past every member's deadline. The callers get their 504 at once;
// the run keeps their slots until it returns, counts as overrunning, and
// past limits.overrun_grace marks the process for replacement, as a lone
// prediction that overruns does.
func TestBatchRunOutlivesItsCallers(t *testing.T) {
	release := make(chan struct{})
	p := &batchRecorder{batch: func(_ context.Context, reqs []*functions.Request) ([]*functions.Response, error) {
		<-release
		return make([]*functions.Response, len(reqs)), nil
	}}
	rt := newBatchRuntime(t, p, runtime.Batching{MaxBatchSize: 2, BatchInterval: runtime.Duration(50 * time.Millisecond)},
		runtime.Limits{MaxConcurrency: 2, Timeout: runtime.Duration(100 * time.Millisecond), OverrunGrace: runtime.Duration(200 * time.Millisecond)})
	start := time.Now()
	statuses, _ := invokeAll(rt, 2)
	if !slices.Equal(statuses, []int{504, 504}) {
		t.Errorf("got %v, want 504 for both members", statuses)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the callers waited %v for their 504, want it at their deadline", took)
	}
	if got := gaugeValue(t, rt, "cortex_requests_in_flight"); got != 2 {
		t.Errorf("in flight while the batch runs: %v, want 2 (the run keeps its members' slots)", got)
	}
	waitFor(t, func() bool { return gaugeValue(t, rt, "cortex_overrunning_predictions") == 2 })
	waitFor(t, func() bool { return rt.Live() != nil })
	close(release)
	waitFor(t, func() bool {
		return gaugeValue(t, rt, "cortex_requests_in_flight") == 0 && gaugeValue(t, rt, "cortex_overrunning_predictions") == 0
	})
}

// TestBatchMembersReused: members and their channels are reused between
// requests; under many batches, some callers leaving at random, every
// caller that stays gets its own answer and no other.
func TestBatchMembersReused(t *testing.T) {
	p := &batchRecorder{}
	rt := newBatchRuntime(t, p, runtime.Batching{MaxBatchSize: 8, BatchInterval: runtime.Duration(time.Millisecond)},
		runtime.Limits{MaxConcurrency: 64, MaxQueue: 1024})
	var wg sync.WaitGroup
	for c := range 32 {
		wg.Go(func() {
			for i := range 50 {
				body := fmt.Sprintf("%d/%d", c, i)
				ctx, cancel := context.WithCancel(context.Background())
				if (c+i)%7 == 3 {
					time.AfterFunc(time.Duration(i%3)*time.Millisecond, cancel)
				}
				resp, err := rt.Invoke(ctx, &functions.Request{Body: []byte(body)})
				cancel()
				if err != nil {
					if s := functions.StatusOf(err); s != 499 {
						t.Errorf("%s: got %d %v", body, s, err)
					}
					continue
				}
				if string(resp.Body) != body {
					t.Errorf("%s: got the answer %q", body, resp.Body)
				}
			}
		})
	}
	wg.Wait()
	if len(p.batches()) == 0 {
		t.Error("no batch formed")
	}
}

// TestBatchWithoutPredictBatch: a predictor without PredictBatch is called
// once per member, concurrently.
func TestBatchWithoutPredictBatch(t *testing.T) {
	var running, most atomic.Int32
	p := functions.PredictorFunc(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		return functions.Bytes(http.StatusOK, "text/plain", req.Body), nil
	})
	rt := newBatchRuntime(t, p, runtime.Batching{MaxBatchSize: 4, BatchInterval: runtime.Duration(10 * time.Second)}, runtime.Limits{})
	statuses, bodies := invokeAll(rt, 4)
	if !slices.Equal(statuses, []int{200, 200, 200, 200}) || !slices.Equal(bodies, []string{"0", "1", "2", "3"}) {
		t.Errorf("got %v %v", statuses, bodies)
	}
	if most.Load() < 2 {
		t.Errorf("at most %d members ran at once, want them concurrent", most.Load())
	}
	if count, sum := batchSizes(t, rt); count != 1 || sum != 4 {
		t.Errorf("batch size histogram: %d batches summing to %v, want one of 4", count, sum)
	}
}

// TestBatchConcurrencyBound: members hold their own slots, so
// max_concurrency bounds a batch.
func TestBatchConcurrencyBound(t *testing.T) {
	p := &batchRecorder{}
	rt := newBatchRuntime(t, p, runtime.Batching{MaxBatchSize: 16, BatchInterval: runtime.Duration(10 * time.Millisecond)},
		runtime.Limits{MaxConcurrency: 4, MaxQueue: 64})
	statuses, _ := invokeAll(rt, 16)
	for i, s := range statuses {
		if s != 200 {
			t.Errorf("caller %d: got %d", i, s)
		}
	}
	for _, n := range p.batches() {
		if n > 4 {
			t.Errorf("a batch of %d with max_concurrency 4", n)
		}
	}
}

// TestBatchingWasmStages: with pre and post stages, pre runs on each
// member before it joins a batch and post on each answer after the split,
// so batched answers equal unbatched ones.
func TestBatchingWasmStages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a WebAssembly stage")
	}
	dir, err := filepath.Abs(filepath.Join("..", "samples", "iris-wasm"))
	if err != nil {
		t.Fatal(err)
	}
	stage := filepath.Join(t.TempDir(), "stages.wasm")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := wasm.BuildGo(ctx, filepath.Join(dir, "stages"), stage); err != nil {
		t.Fatal(err)
	}
	start := func(b runtime.Batching) *runtime.Runtime {
		rt, err := runtime.New(onnx.New(), runtime.Config{Name: "iris-wasm", Dir: dir, Pre: stage, Post: stage, WasmCacheDir: testutil.CacheDir("wazero"),
			Predictor: runtime.PredictorConfig{Type: "onnx", Model: "model/iris.onnx"},
			Batching:  b,
		}, runtime.WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rt.Shutdown(context.Background()) })
		return rt
	}
	plain := start(runtime.Batching{})
	batched := start(runtime.Batching{MaxBatchSize: 8, BatchInterval: runtime.Duration(5 * time.Millisecond)})

	const callers = 24
	body := func(i int) []byte {
		r := irisInput(i)
		if i%8 == 5 {
			return []byte(`{"sepal_length": 5.1}`) // the pre stage rejects it
		}
		return fmt.Appendf(nil, `{"sepal_length": %v, "sepal_width": %v, "petal_length": %v, "petal_width": %v}`, r[0], r[1], r[2], r[3])
	}
	type answer struct {
		status int
		body   string
	}
	ask := func(rt *runtime.Runtime, i int) answer {
		resp, err := rt.Invoke(context.Background(), &functions.Request{Method: "POST", Path: "/predict",
			ContentType: "application/json", Body: body(i)})
		if err != nil {
			return answer{status: functions.StatusOf(err)}
		}
		return answer{resp.StatusCode(), string(resp.Body)}
	}
	got := make([]answer, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { got[i] = ask(batched, i) })
	}
	wg.Wait()
	for i := range callers {
		if want := ask(plain, i); got[i] != want {
			t.Errorf("caller %d: got %+v, want %+v", i, got[i], want)
		}
	}
	if count, _ := batchSizes(t, batched); count >= callers {
		t.Errorf("%d batches for %d callers: none held more than one request", count, callers)
	}

	// The stages' own metrics: call latency by stage, the pool's size.
	fams := scrape(t, plain)
	calls := map[string]uint64{}
	for _, m := range fams["cortex_stage_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "stage" {
				calls[l.GetValue()] = m.GetHistogram().GetSampleCount()
			}
		}
	}
	// Every caller ran pre; post ran for those the pre stage let through.
	if calls["pre"] != callers || calls["post"] == 0 || calls["post"] >= callers {
		t.Errorf("stage calls by stage = %v, want pre %d and post fewer but some", calls, callers)
	}
	var size float64
	for _, m := range fams["cortex_stage_instances"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "state" && l.GetValue() == "size" {
				size = m.GetGauge().GetValue()
			}
		}
	}
	if size < 1 {
		t.Errorf("cortex_stage_instances{state=\"size\"} = %v, want the pool's size", size)
	}
}
