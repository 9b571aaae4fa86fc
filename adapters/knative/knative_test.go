package knative_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/adapters/knative"
	"github.com/cortexfn/cortex/functions"
)

// testEngine is a small but real adapters.Engine over a predictor: it
// enforces MaxBody, recovers a panic as a 500 and passes a
// functions.Error's status on. The real engine (*runtime.Runtime) is tested
// in package runtime.
type testEngine struct {
	p       functions.PredictorFunc
	maxBody int64

	mu   sync.Mutex
	last *functions.Request
}

func newEngine(p functions.PredictorFunc) *testEngine { return &testEngine{p: p, maxBody: 1 << 20} }

func (e *testEngine) Name() string   { return "iris" }
func (e *testEngine) MaxBody() int64 { return e.maxBody }
func (e *testEngine) Ready() bool    { return true }

func (e *testEngine) Invoke(ctx context.Context, req *functions.Request) (resp *functions.Response, err error) {
	if int64(len(req.Body)) > e.maxBody {
		return nil, adapters.TooLarge(int64(len(req.Body)), e.maxBody)
	}
	if req.ID == "" {
		req.ID = "generated-id"
	}
	e.mu.Lock()
	e.last = req
	e.mu.Unlock()
	defer func() {
		if v := recover(); v != nil {
			resp, err = nil, &functions.Error{Status: 500, Message: "internal error: the predictor panicked"}
		}
	}()
	resp, err = e.p(ctx, req)
	var fe *functions.Error
	if err != nil && !errors.As(err, &fe) {
		err = &functions.Error{Status: 500, Message: "internal error (request id " + req.ID + ")", Err: err}
	}
	return resp, err
}

func (e *testEngine) lastRequest() *functions.Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

var _ adapters.Engine = (*testEngine)(nil)

// next stands for the plain HTTP handler.
var next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Next", "yes")
	w.WriteHeader(http.StatusTeapot)
})

func classify(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	return functions.JSON(http.StatusOK, map[string]string{"class": "setosa", "saw": string(req.Body)})
}

func binaryRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/predict?model=iris&q=a%20b", strings.NewReader(body))
	r.Header.Set("Ce-Specversion", "1.0")
	r.Header.Set("Ce-Id", "evt-1")
	r.Header.Set("Ce-Source", "/sources/ping")
	r.Header.Set("Ce-Type", "dev.cortex.flower")
	r.Header.Set("Ce-Subject", "flower-7")
	r.Header.Set("Ce-Time", "2026-01-02T03:04:05Z")
	r.Header.Set("Ce-Knativearrivaltime", "2026-01-02T03:04:06Z")
	r.Header.Set("Content-Type", "application/json")
	return r
}

// TestBinaryMode checks the request a binary-mode event maps to and the
// binary reply.
func TestBinaryMode(t *testing.T) {
	t.Setenv("K_SERVICE", "")
	e := newEngine(classify)
	h := knative.Wrap(e, next)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, binaryRequest(`{"x": [5.1, 3.5]}`))

	got := e.lastRequest()
	want := &functions.Request{
		ID: "generated-id", Method: "POST", Path: "/predict",
		Query:       url.Values{"model": {"iris"}, "q": {"a b"}},
		ContentType: "application/json", Body: []byte(`{"x": [5.1, 3.5]}`),
		Carrier: functions.CarrierCloudEvent, Model: "iris",
		Attributes: map[string]string{
			"ce-specversion": "1.0", "ce-id": "evt-1", "ce-source": "/sources/ping", "ce-type": "dev.cortex.flower",
			"ce-subject": "flower-7", "ce-time": "2026-01-02T03:04:05Z", "ce-datacontenttype": "application/json",
			"ce-knativearrivaltime": "2026-01-02T03:04:06Z",
		},
	}
	want.Header = got.Header
	if !reflect.DeepEqual(got, want) {
		t.Errorf("request:\n got %+v\nwant %+v", got, want)
	}
	if got.Header.Get("Ce-Id") != "evt-1" || got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers: got %v", got.Header)
	}

	if w.Code != http.StatusOK {
		t.Fatalf("status: got %d %s", w.Code, w.Body)
	}
	reply := parseReply(t, w.Result())
	checkReply(t, reply, "iris", "flower-7")
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("binary reply Content-Type: got %q", ct)
	}
	if w.Header().Get("Ce-Id") == "" {
		t.Error("the reply is not in binary mode")
	}
	if w.Header().Get("X-Request-Id") != "generated-id" {
		t.Errorf("X-Request-Id: got %q", w.Header().Get("X-Request-Id"))
	}

	// A redelivery gets the same reply id.
	w2 := httptest.NewRecorder()
	h.ServeHTTP(w2, binaryRequest(`{"x": [5.1, 3.5]}`))
	if again := parseReply(t, w2.Result()); again.ID() != reply.ID() {
		t.Errorf("reply id of a redelivery: got %q, want %q", again.ID(), reply.ID())
	}
}

func parseReply(t *testing.T, resp *http.Response) *event.Event {
	t.Helper()
	ev, err := binding.ToEvent(context.Background(), cehttp.NewMessageFromHttpResponse(resp))
	if err != nil {
		t.Fatalf("the reply is not a CloudEvent: %v", err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("invalid reply: %v", err)
	}
	return ev
}

func checkReply(t *testing.T, ev *event.Event, source, subject string) {
	t.Helper()
	if ev.Type() != "dev.cortex.flower.prediction" || ev.Source() != source || ev.Subject() != subject || ev.SpecVersion() != "1.0" {
		t.Errorf("reply attributes: got type %q source %q subject %q specversion %q", ev.Type(), ev.Source(), ev.Subject(), ev.SpecVersion())
	}
	if ev.DataContentType() != "application/json" || !strings.Contains(string(ev.Data()), `"class":"setosa"`) {
		t.Errorf("reply data: got %q %s", ev.DataContentType(), ev.Data())
	}
}

// TestStructuredMode checks JSON, text and base64 data in structured mode
// and the structured reply.
func TestStructuredMode(t *testing.T) {
	t.Setenv("K_SERVICE", "iris-svc")
	tests := []struct {
		name, data, wantCT string
		wantBody           []byte
	}{
		{"json data", `"datacontenttype": "application/json", "data": {"x": [1, 2]}`, "application/json", []byte(`{"x": [1, 2]}`)},
		{"text data", `"datacontenttype": "text/plain", "data": "a \"b\""`, "text/plain", []byte(`a "b"`)},
		{"base64 data", `"datacontenttype": "image/png", "data_base64": "` + base64.StdEncoding.EncodeToString([]byte{0x89, 0, 0xff}) + `"`, "image/png", []byte{0x89, 0, 0xff}},
		{"no data", `"subject": "s"`, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(classify)
			body := `{"specversion": "1.0", "id": "evt-2", "source": "/s", "type": "dev.cortex.flower", "myext": "v", ` + tt.data + `}`
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
			r.Header.Set("X-Request-Id", "rid-9")
			w := httptest.NewRecorder()
			knative.Wrap(e, next).ServeHTTP(w, r)
			got := e.lastRequest()
			if got.ContentType != tt.wantCT || got.Header.Get("Content-Type") != tt.wantCT || string(got.Body) != string(tt.wantBody) || (got.Body == nil) != (tt.wantBody == nil) {
				t.Errorf("request: got %q %q %q, want %q %q", got.ContentType, got.Header.Get("Content-Type"), got.Body, tt.wantCT, tt.wantBody)
			}
			if got.ID != "rid-9" || got.Carrier != functions.CarrierCloudEvent || got.Path != "/" || got.Attributes["ce-myext"] != "v" || got.Attributes["ce-id"] != "evt-2" {
				t.Errorf("request: got %+v", got)
			}
			if r.Header.Get("Content-Type") != "application/cloudevents+json; charset=utf-8" {
				t.Error("the incoming request's header was changed")
			}
			if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/cloudevents+json") {
				t.Fatalf("reply: got %d %q %s", w.Code, w.Header().Get("Content-Type"), w.Body)
			}
			var reply event.Event
			if err := format.JSON.Unmarshal(w.Body.Bytes(), &reply); err != nil {
				t.Fatal(err)
			}
			checkReply(t, &reply, "iris-svc", got.Attributes["ce-subject"])
		})
	}
}

// TestSDKClient round-trips events through a real server with the
// CloudEvents SDK client, in both modes.
func TestSDKClient(t *testing.T) {
	t.Setenv("K_SERVICE", "")
	srv := httptest.NewServer(knative.Wrap(newEngine(classify), next))
	defer srv.Close()
	c, err := cloudevents.NewClientHTTP()
	if err != nil {
		t.Fatal(err)
	}
	for _, structured := range []bool{false, true} {
		t.Run(fmt.Sprint("structured=", structured), func(t *testing.T) {
			ev := cloudevents.NewEvent()
			ev.SetID("sdk-1")
			ev.SetSource("/sdk")
			ev.SetType("dev.cortex.flower")
			ev.SetSubject("flower-1")
			_ = ev.SetData(cloudevents.ApplicationJSON, map[string]any{"x": []float64{5.1}})
			ctx := cloudevents.ContextWithTarget(context.Background(), srv.URL)
			if structured {
				ctx = binding.WithForceStructured(ctx)
			}
			reply, res := c.Request(ctx, ev)
			if !cloudevents.IsACK(res) || reply == nil {
				t.Fatalf("got %v %v", reply, res)
			}
			checkReply(t, reply, "iris", "flower-1")
		})
	}
}

// TestNotEvents checks that other requests reach the next handler.
func TestNotEvents(t *testing.T) {
	h := knative.Wrap(newEngine(classify), next)
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodPost, "/predict", strings.NewReader(`{}`)),
		httptest.NewRequest(http.MethodGet, "/healthz", nil),
		func() *http.Request { r := binaryRequest(""); r.Method = http.MethodGet; return r }(),
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusTeapot || w.Header().Get("X-Next") != "yes" {
			t.Errorf("%s %s: got %d, want it passed to next", r.Method, r.URL, w.Code)
		}
	}
}

// TestRefused checks what is refused, and with which status.
func TestRefused(t *testing.T) {
	e := newEngine(classify)
	e.maxBody = 16
	h := knative.Wrap(e, next)
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		msg    string
	}{
		{"batch", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`[]`))
			r.Header.Set("Content-Type", "application/cloudevents-batch+json")
			return r
		}, 400, "batched CloudEvents"},
		{"unknown structured format", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`x`))
			r.Header.Set("Content-Type", "application/cloudevents+avro")
			return r
		}, 415, "not supported"},
		{"missing id", func() *http.Request {
			r := binaryRequest(`{}`)
			r.Header.Del("Ce-Id")
			return r
		}, 400, "invalid CloudEvent"},
		{"malformed structured", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"specversion": "1.0", "id": 5`))
			r.Header.Set("Content-Type", "application/cloudevents+json")
			return r
		}, 400, "invalid CloudEvent"},
		{"binary data over the limit", func() *http.Request { return binaryRequest(strings.Repeat("x", 17)) }, 413, "17 bytes"},
		{"structured data over the limit", func() *http.Request {
			b := `{"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data_base64": "` + base64.StdEncoding.EncodeToString(make([]byte, 17)) + `"}`
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(b))
			r.Header.Set("Content-Type", "application/cloudevents+json")
			return r
		}, 413, "17 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req())
			var body struct{ Error string }
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != tt.status || !strings.Contains(body.Error, tt.msg) {
				t.Errorf("got %d %s, want %d with %q", w.Code, w.Body, tt.status, tt.msg)
			}
		})
	}
}

// TestErrorStatuses checks that failures map to statuses Knative Eventing
// retries when they are transient and does not otherwise.
func TestErrorStatuses(t *testing.T) {
	tests := []struct {
		name       string
		resp       *functions.Response
		err        error
		status     int
		retryAfter string
	}{
		{"bad input", nil, functions.Errorf(400, "bad input"), 400, ""},
		{"unknown model is not retried", nil, functions.Errorf(404, "no model v9"), 422, ""},
		{"conflict is not retried", nil, functions.Errorf(409, "conflict"), 422, ""},
		{"overloaded is retried", nil, &functions.Error{Status: 429, Message: "busy", RetryAfter: time.Second}, 429, "1"},
		{"timeout is retried", nil, functions.Errorf(504, "too slow"), 504, ""},
		{"panic is retried", nil, nil, 500, ""},
		{"plain error", nil, errors.New("secret"), 500, ""},
		{"an error response from the predictor", functions.Bytes(404, "application/json", functions.ErrorBody("gone")), nil, 422, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
				if tt.resp == nil && tt.err == nil {
					panic("boom")
				}
				return tt.resp, tt.err
			})
			w := httptest.NewRecorder()
			knative.Wrap(e, next).ServeHTTP(w, binaryRequest(`{}`))
			var body struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error == "" || strings.Contains(body.Error, "secret") {
				t.Errorf("body: got %s, want {\"error\": ...} without internals", w.Body)
			}
			if w.Code != tt.status || w.Header().Get("Retry-After") != tt.retryAfter || w.Header().Get("Ce-Id") != "" {
				t.Errorf("got %d Retry-After %q, want %d %q and no event", w.Code, w.Header().Get("Retry-After"), tt.status, tt.retryAfter)
			}
		})
	}
}

// TestNoReply checks the 202 without an event.
func TestNoReply(t *testing.T) {
	empty := newEngine(func(ctx context.Context, req *functions.Request) (*functions.Response, error) { return nil, nil })
	w := httptest.NewRecorder()
	knative.Wrap(empty, next).ServeHTTP(w, binaryRequest(`{}`))
	if w.Code != http.StatusAccepted || w.Body.Len() != 0 || w.Header().Get("Ce-Id") != "" {
		t.Errorf("empty prediction: got %d %q", w.Code, w.Body)
	}
	r := binaryRequest(`{}`)
	r.Header.Set("Prefer", "respond-async, return=minimal")
	w = httptest.NewRecorder()
	knative.Wrap(newEngine(classify), next).ServeHTTP(w, r)
	if w.Code != http.StatusAccepted || w.Body.Len() != 0 {
		t.Errorf("Prefer: return=minimal: got %d %q", w.Code, w.Body)
	}
	_, _ = io.Copy(io.Discard, w.Body)
}
