package runtime_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
	"github.com/cortexfn/cortex/runtime"
)

// These tests serve the runtime over real HTTP, as Serve does in a
// function process.

// serve runs rt.Serve on a local port until the test ends and returns the
// base URL. Start is Serve's to call, as in a function process.
func serve(t *testing.T, rt *runtime.Runtime) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- rt.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-served
	})
	return "http://" + ln.Addr().String()
}

type answer struct {
	status int
	header http.Header
	body   string
}

// do sends one request and returns the answer; a transport error fails
// the test.
func do(t *testing.T, method, url, contentType string, body io.Reader, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// irisLike is a predictor that describes its model (oip.Catalog), as the
// built-in ONNX predictor does, and loads it in Init: Init blocks until the
// test closes release.
type irisLike struct {
	started, release chan struct{}
}

func (p *irisLike) Init(ctx context.Context, _ functions.Config) error {
	close(p.started)
	<-p.release
	return nil
}

func (p *irisLike) Models() []string { return []string{"iris"} }

func (p *irisLike) DescribeModel(context.Context, string, string) (oip.ModelMetadata, error) {
	return oip.ModelMetadata{Platform: "onnxruntime_onnx",
		Inputs:  []oip.TensorMetadata{{Name: "float_input", Datatype: oip.FP32, Shape: []int64{-1, 4}}},
		Outputs: []oip.TensorMetadata{{Name: "label", Datatype: oip.INT64, Shape: []int64{-1}}}}, nil
}

func (p *irisLike) Predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	return functions.JSON(http.StatusOK, map[string]any{"model_name": "iris", "outputs": []any{}})
}

// TestModelRoutesWaitForInit: while Init runs, every model route answers
// 503 with Retry-After, like /readyz, and none describes a model it has not
// loaded (a client that reads the metadata first would build a wrong
// request); /healthz stays 200. Once ready, the metadata is the model's.
func TestModelRoutesWaitForInit(t *testing.T) {
	p := &irisLike{started: make(chan struct{}), release: make(chan struct{})}
	rt, err := runtime.New(p, runtime.Config{Name: "iris"}, runtime.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, rt)
	<-p.started
	released := false
	defer func() {
		if !released {
			close(p.release)
		}
	}()

	if a := do(t, "GET", base+"/healthz", "", nil); a.status != http.StatusOK {
		t.Errorf("GET /healthz while Init runs: %d %s, want 200", a.status, a.body)
	}
	infer := `{"inputs":[{"name":"float_input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/readyz", ""},
		{"GET", "/v2/health/ready", ""},
		{"GET", "/v2/models/iris", ""},
		{"GET", "/v2/models/iris/versions/1", ""},
		{"GET", "/v2/models/iris/ready", ""},
		{"POST", "/v2/models/iris/infer", infer},
		{"GET", "/v1/models/iris", ""},
		{"POST", "/v1/models/iris:predict", `{"instances":[[5.1,3.5,1.4,0.2]]}`},
		{"POST", "/predict", `{"x":1}`},
		{"POST", "/", `{"x":1}`},
	} {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			a := do(t, r.method, base+r.path, "application/json", strings.NewReader(r.body))
			if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
				t.Errorf("while Init runs: %d (Retry-After %q) %s; want 503 with Retry-After", a.status, a.header.Get("Retry-After"), a.body)
			}
			if strings.Contains(a.body, `"platform"`) {
				t.Errorf("metadata before the model loaded: %s", a.body)
			}
		})
	}

	close(p.release)
	released = true
	waitFor(t, rt.Ready)
	a := do(t, "GET", base+"/v2/models/iris", "", nil)
	if a.status != http.StatusOK || !strings.Contains(a.body, `"float_input"`) || !strings.Contains(a.body, `"onnxruntime_onnx"`) {
		t.Errorf("GET /v2/models/iris once ready: %d %s, want 200 with the model's inputs", a.status, a.body)
	}
}

// holder is a predictor whose ?hold=1 requests ignore their deadline and
// run until the test releases them, and whose ?wait=1 requests wait for
// their deadline.
type holder struct {
	entered chan struct{}
	release chan struct{}
}

func (h *holder) Predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	switch {
	case req.Query.Get("hold") == "1":
		h.entered <- struct{}{}
		<-h.release
	case req.Query.Get("wait") == "1":
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return functions.Text(http.StatusOK, "ok"), nil
}

// TestMetricsCountEveryAnswer: cortex_requests_total counts every answer
// the function gives, with the status the client saw, whichever part
// answered: the HTTP carrier (413 before reading an oversized body, 405,
// 404, 400 for an undecodable body), the CloudEvents carrier (400 for a
// malformed event), the runtime (503 at capacity, 504 past the deadline)
// and the predictor. Probes and scrapes (/healthz, /readyz, /metrics) are
// not requests to the function and are not counted.
func TestMetricsCountEveryAnswer(t *testing.T) {
	h := &holder{entered: make(chan struct{}, 1), release: make(chan struct{})}
	defer close(h.release)
	rt, err := runtime.New(h, runtime.Config{Name: "count", Limits: runtime.Limits{
		MaxBody: 100, MaxConcurrency: 1, MaxQueue: -1, Timeout: runtime.Duration(200 * time.Millisecond)}},
		runtime.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, rt)
	waitFor(t, rt.Ready)

	var mu sync.Mutex
	seen := map[int]int{} // status -> answers the client got
	record := func(a answer) answer {
		mu.Lock()
		defer mu.Unlock()
		seen[a.status]++
		return a
	}
	type chunked struct{ io.Reader } // hides the length: sent chunked
	for _, r := range []struct {
		name, method, path, ct string
		body                   io.Reader
		header                 []string
		want                   int
	}{
		{"prediction", "POST", "/predict", "text/plain", strings.NewReader("x"), nil, 200},
		{"body over max_body", "POST", "/predict", "text/plain", strings.NewReader(strings.Repeat("x", 101)), nil, 413},
		{"chunked body over max_body", "POST", "/predict", "text/plain", chunked{strings.NewReader(strings.Repeat("x", 150))}, nil, 413},
		{"wrong method", "GET", "/predict", "", nil, nil, 405},
		{"wrong method on infer", "PUT", "/v2/models/count/infer", "application/json", strings.NewReader("{}"), nil, 405},
		{"wrong method on a probe", "POST", "/healthz", "", nil, nil, 405},
		{"unknown route", "GET", "/nope", "", nil, nil, 404},
		{"unknown model", "POST", "/v2/models/other/infer", "application/json", strings.NewReader("{}"), nil, 404},
		{"undecodable body", "POST", "/predict", "text/plain", strings.NewReader("not gzip"), []string{"Content-Encoding", "gzip"}, 400},
		{"malformed CloudEvent", "POST", "/", "application/cloudevents+json", strings.NewReader(`{"specversion": "1.0"}`), nil, 400},
		{"past the deadline", "POST", "/predict?wait=1", "text/plain", strings.NewReader("x"), nil, 504},
		{"model metadata", "GET", "/v2/models/count", "", nil, nil, 200},
	} {
		a := record(do(t, r.method, base+r.path, r.ct, r.body, r.header...))
		if a.status != r.want {
			t.Errorf("%s: %s %s answered %d %s, want %d", r.name, r.method, r.path, a.status, a.body, r.want)
		}
	}

	// At capacity: the one slot is held by a prediction that ignores its
	// deadline (its caller gets 504), so the next request is refused.
	waitFor(t, func() bool { return gaugeValue(t, rt, "cortex_requests_in_flight") == 0 })
	held := make(chan answer, 1)
	go func() { held <- record(do(t, "POST", base+"/predict?hold=1", "text/plain", strings.NewReader("x"))) }()
	<-h.entered
	if a := record(do(t, "POST", base+"/predict", "text/plain", strings.NewReader("x"))); a.status != 503 {
		t.Errorf("at capacity: %d %s, want 503", a.status, a.body)
	}
	if a := <-held; a.status != 504 {
		t.Errorf("held prediction: %d %s, want 504", a.status, a.body)
	}

	// Probes and scrapes are not counted.
	for _, p := range []string{"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/metrics"} {
		if a := do(t, "GET", base+p, "", nil); a.status != 200 {
			t.Errorf("GET %s: %d %s", p, a.status, a.body)
		}
	}

	a := do(t, "GET", base+"/metrics", "", nil)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(a.body))
	if err != nil {
		t.Fatal(err)
	}
	counted := map[int]int{}
	for _, m := range fams["cortex_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "code" {
				code, _ := strconv.Atoi(l.GetValue())
				counted[code] = int(m.GetCounter().GetValue())
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for code, n := range seen {
		if counted[code] != n {
			t.Errorf("cortex_requests_total{code=%q} = %d, want %d (the answers the client got)", strconv.Itoa(code), counted[code], n)
		}
	}
	for code, n := range counted {
		if seen[code] == 0 {
			t.Errorf("cortex_requests_total{code=%q} = %d, but the client got no such answer", strconv.Itoa(code), n)
		}
	}
}
