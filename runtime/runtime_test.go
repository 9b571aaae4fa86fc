package runtime_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
)

// The predictors in these tests are ordinary Go predictors written with the
// SDK, exactly what a user writes; the runtime under test is the real one.

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newRuntime(t *testing.T, p functions.Predictor, limits runtime.Limits) *runtime.Runtime {
	t.Helper()
	rt, err := runtime.New(p, runtime.Config{Name: "test", Limits: limits}, runtime.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return rt
}

var echo = functions.PredictorFunc(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	return functions.Bytes(http.StatusOK, req.ContentType, req.Body), nil
})

func status(resp *functions.Response, err error) int {
	if err != nil {
		return functions.StatusOf(err)
	}
	return resp.StatusCode()
}

func TestInvoke(t *testing.T) {
	tests := []struct {
		name       string
		p          functions.PredictorFunc
		body       string
		limits     runtime.Limits
		wantStatus int
		wantMsg    string // substring of the error message
		notMsg     string // must not appear in the error message
	}{
		{name: "ok", p: echo, body: `{"x":1}`, wantStatus: 200},
		{name: "custom status", p: func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
			return nil, functions.Errorf(http.StatusUnprocessableEntity, "field %q is required", "name")
		}, wantStatus: 422, wantMsg: `field "name" is required`},
		{name: "custom status response", p: func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
			return functions.Text(http.StatusTeapot, "short and stout"), nil
		}, wantStatus: 418},
		{name: "plain error hides detail", p: func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
			return nil, errors.New("db password is hunter2")
		}, wantStatus: 500, wantMsg: "request id", notMsg: "hunter2"},
		{name: "panic", p: func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
			panic("boom")
		}, wantStatus: 500, wantMsg: "panicked", notMsg: "boom"},
		{name: "body over limit", p: echo, body: strings.Repeat("x", 101), limits: runtime.Limits{MaxBody: 100},
			wantStatus: 413, wantMsg: "101 bytes, over the function's limit of 100 bytes (limits.max_body"},
		{name: "body at limit", p: echo, body: strings.Repeat("x", 100), limits: runtime.Limits{MaxBody: 100}, wantStatus: 200},
		{name: "timeout", p: func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}, limits: runtime.Limits{Timeout: runtime.Duration(20 * time.Millisecond)}, wantStatus: 504, wantMsg: "limits.timeout"},
		{name: "timeout ignored by predictor", p: func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
			time.Sleep(200 * time.Millisecond)
			return functions.Text(200, "late"), nil
		}, limits: runtime.Limits{Timeout: runtime.Duration(20 * time.Millisecond)}, wantStatus: 504},
		{name: "nil response", p: func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
			return nil, nil
		}, wantStatus: 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := newRuntime(t, tt.p, tt.limits)
			resp, err := rt.Invoke(context.Background(), &functions.Request{Body: []byte(tt.body)})
			if got := status(resp, err); got != tt.wantStatus {
				t.Fatalf("status = %d (err %v), want %d", got, err, tt.wantStatus)
			}
			if err != nil {
				var fe *functions.Error
				if !errors.As(err, &fe) {
					t.Fatalf("error %T is not a *functions.Error", err)
				}
				if !strings.Contains(fe.Message, tt.wantMsg) {
					t.Errorf("message = %q, want it to contain %q", fe.Message, tt.wantMsg)
				}
				if tt.notMsg != "" && strings.Contains(fe.Message, tt.notMsg) {
					t.Errorf("message = %q leaks %q", fe.Message, tt.notMsg)
				}
			}
			// The process keeps serving after every failure.
			if got := status(rt.Invoke(context.Background(), &functions.Request{})); got >= 500 && tt.wantStatus < 500 {
				t.Errorf("follow-up request status = %d", got)
			}
		})
	}
}

func TestPanicKeepsServing(t *testing.T) {
	var n atomic.Int32
	rt := newRuntime(t, functions.PredictorFunc(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
		if n.Add(1) == 1 {
			panic("first call fails")
		}
		return functions.Text(200, "fine"), nil
	}), runtime.Limits{})
	if got := status(rt.Invoke(context.Background(), &functions.Request{})); got != 500 {
		t.Fatalf("first status = %d, want 500", got)
	}
	resp, err := rt.Invoke(context.Background(), &functions.Request{})
	if err != nil || string(resp.Body) != "fine" {
		t.Fatalf("second call = %v, %v; want fine", resp, err)
	}
}

func TestRequestID(t *testing.T) {
	var seen string
	rt := newRuntime(t, functions.PredictorFunc(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
		seen = req.ID
		return nil, nil
	}), runtime.Limits{})
	req := &functions.Request{}
	_, _ = rt.Invoke(context.Background(), req)
	if len(seen) != 32 || req.ID != seen {
		t.Errorf("generated id = %q (request %q), want 32 hex chars seen by the predictor", seen, req.ID)
	}
	_, _ = rt.Invoke(context.Background(), &functions.Request{ID: "caller-id"})
	if seen != "caller-id" {
		t.Errorf("id = %q, want the caller's", seen)
	}
}

// gate is a predictor that blocks until released, counting entries.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 100), release: make(chan struct{})} }

func (g *gate) Predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return functions.Text(200, "done"), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestQueueFull(t *testing.T) {
	g := newGate()
	rt := newRuntime(t, g, runtime.Limits{MaxConcurrency: 2, MaxQueue: 3})
	var wg sync.WaitGroup
	results := make(chan int, 5)
	for range 5 { // 2 running + 3 queued
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- status(rt.Invoke(context.Background(), &functions.Request{}))
		}()
	}
	<-g.entered
	<-g.entered
	waitFor(t, func() bool { return gaugeValue(t, rt, "cortex_requests_queued") == 3 })

	resp, err := rt.Invoke(context.Background(), &functions.Request{})
	if got := status(resp, err); got != 503 {
		t.Fatalf("status with full queue = %d, want 503", got)
	}
	var fe *functions.Error
	if !errors.As(err, &fe) || fe.RetryAfter <= 0 || !strings.Contains(fe.Message, "limits.max_queue") {
		t.Fatalf("error = %#v, want a Retry-After and a message naming limits.max_queue", err)
	}
	close(g.release)
	wg.Wait()
	close(results)
	for s := range results {
		if s != 200 {
			t.Errorf("admitted request status = %d, want 200", s)
		}
	}
}

func TestNotReadyAndInitError(t *testing.T) {
	p := &initFails{}
	rt, err := runtime.New(p, runtime.Config{Name: "broken"}, runtime.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if got := status(rt.Invoke(context.Background(), &functions.Request{})); got != 503 || rt.Ready() {
		t.Fatalf("before Start: status %d ready %v, want 503 false", got, rt.Ready())
	}
	err = rt.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), `"broken"`) || !strings.Contains(err.Error(), "model file missing") {
		t.Fatalf("Start error = %v, want it to name the function and the cause", err)
	}
	if rt.Ready() {
		t.Fatal("ready after a failed Init")
	}
}

type initFails struct{}

func (initFails) Init(context.Context, functions.Config) error {
	return errors.New("model file missing")
}
func (initFails) Predict(context.Context, *functions.Request) (*functions.Response, error) {
	return nil, nil
}

type closeRecorder struct {
	*gate
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

func TestShutdownDrains(t *testing.T) {
	p := &closeRecorder{gate: newGate()}
	rt := newRuntime(t, p, runtime.Limits{})
	inflight := make(chan int, 1)
	go func() { inflight <- status(rt.Invoke(context.Background(), &functions.Request{})) }()
	<-p.entered

	done := make(chan error, 1)
	go func() { done <- rt.Shutdown(context.Background()) }()
	waitFor(t, func() bool { return !rt.Ready() })

	if got := status(rt.Invoke(context.Background(), &functions.Request{})); got != 503 {
		t.Errorf("new request while draining: status %d, want 503", got)
	}
	if p.closed.Load() {
		t.Fatal("predictor closed while a request was in flight")
	}
	close(p.release)
	if got := <-inflight; got != 200 {
		t.Errorf("in-flight request status = %d, want 200", got)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if !p.closed.Load() {
		t.Error("predictor not closed after drain")
	}
}

func TestShutdownBound(t *testing.T) {
	p := &closeRecorder{gate: newGate()}
	rt := newRuntime(t, p, runtime.Limits{Timeout: runtime.Duration(time.Minute)})
	go func() { _, _ = rt.Invoke(context.Background(), &functions.Request{}) }()
	<-p.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := rt.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a stuck request = %v, want deadline exceeded", err)
	}
	if !p.closed.Load() {
		t.Error("predictor not closed at the drain bound")
	}
	close(p.release)
}

func TestMetrics(t *testing.T) {
	rt := newRuntime(t, functions.PredictorFunc(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
		if len(req.Body) == 0 {
			return nil, functions.Errorf(400, "empty")
		}
		return functions.Text(200, "ok"), nil
	}), runtime.Limits{})
	for range 3 {
		_, _ = rt.Invoke(context.Background(), &functions.Request{Body: []byte("x")})
	}
	_, _ = rt.Invoke(context.Background(), &functions.Request{})
	fams := scrape(t, rt)
	counts := map[string]float64{}
	for _, m := range fams["cortex_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "code" {
				counts[l.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if counts["200"] != 3 || counts["400"] != 1 {
		t.Errorf("cortex_requests_total by code = %v, want 200:3 400:1", counts)
	}
	h := fams["cortex_request_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 4 {
		t.Errorf("latency samples = %d, want 4", h.GetSampleCount())
	}
	if _, ok := fams["cortex_model_load_seconds"]; !ok {
		t.Error("no cortex_model_load_seconds")
	}
	if fams["cortex_ready"].GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Error("cortex_ready != 1 after Start")
	}
}

func TestServeGracefulShutdown(t *testing.T) {
	p := &closeRecorder{gate: newGate()}
	rt, err := runtime.New(p, runtime.Config{Name: "graceful"}, runtime.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- rt.Serve(ctx, ln) }()
	waitFor(t, func() bool {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	type answer struct {
		status int
		body   string
		err    error
	}
	inflight := make(chan answer, 1)
	go func() {
		resp, err := http.Post(url+"/predict", "text/plain", strings.NewReader("x"))
		if err != nil {
			inflight <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		inflight <- answer{status: resp.StatusCode, body: string(b)}
	}()
	<-p.entered
	cancel() // what SIGTERM does in Main
	waitFor(t, func() bool { return !rt.Ready() })

	// New connections are refused once the listener has closed.
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 100*time.Millisecond)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	if p.closed.Load() {
		t.Fatal("predictor closed with a request in flight")
	}
	close(p.release)
	a := <-inflight
	if a.err != nil || a.status != 200 || a.body != "done" {
		t.Fatalf("in-flight request = %+v, want 200 done", a)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if !p.closed.Load() {
		t.Error("predictor not closed after drain")
	}
}

func scrape(t *testing.T, rt *runtime.Runtime) map[string]*dto.MetricFamily {
	t.Helper()
	w := httptest.NewRecorder()
	rt.MetricsHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := w.Body.String()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing metrics: %v\n%s", err, body)
	}
	return fams
}

func gaugeValue(t *testing.T, rt *runtime.Runtime, name string) float64 {
	f, ok := scrape(t, rt)[name]
	if !ok {
		return -1
	}
	return f.GetMetric()[0].GetGauge().GetValue()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A connection opened but never used (proxies keep spare ones) must not
// hold a drain: net/http alone would wait five seconds for it.
func TestDrainClosesFreshConnections(t *testing.T) {
	rt, err := runtime.New(echo, runtime.Config{Name: "fresh"}, runtime.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- rt.Serve(ctx, ln) }()
	waitFor(t, rt.Ready)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond) // let the server accept it
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve = %v", err)
		}
	case <-time.After(4 * time.Second): // net/http's own wait is 5 s
		t.Fatal("the drain waited for a connection that never carried a request")
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the fresh connection is still open after the drain")
	}
}
