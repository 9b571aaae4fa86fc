package knative_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/cortexfn/cortex/adapters/knative"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
)

func echoData(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	return functions.Bytes(http.StatusOK, req.ContentType, req.Body), nil
}

// FuzzBinary sends binary-mode events with fuzzed attributes and data: the
// carrier never panics, answers a known status, and a 200 carries a valid
// reply event with the data back.
func FuzzBinary(f *testing.F) {
	f.Add("1.0", "id", "/src", "type", "application/json", "ext", []byte(`{"a":1}`))
	f.Add("0.3", "", "::bad", "t", "text/plain", "", []byte("x"))
	f.Add("2.0", "id", "/src", "t", "", "", []byte{0, 0xff})
	h := knative.Wrap(newEngine(echoData), next)
	f.Fuzz(func(t *testing.T, spec, id, source, typ, ct, ext string, data []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(data)))
		set := func(k, v string) {
			if v != "" && !strings.ContainsAny(v, "\r\n\x00") {
				r.Header.Set(k, v)
			}
		}
		r.Header.Set("Ce-Specversion", "1.0")
		set("Ce-Specversion", spec)
		set("Ce-Id", id)
		set("Ce-Source", source)
		set("Ce-Type", typ)
		set("Content-Type", ct)
		set("Ce-Myext", ext)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		checkOutcome(t, w, data)
	})
}

// FuzzStructured sends arbitrary structured-mode bodies.
func FuzzStructured(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":{"x":1}}`))
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64": "AAEC"}`))
	f.Add([]byte(`{"specversion":"0.3","id":"1","source":"/s","type":"t","datacontentencoding":"base64","data":"AAEC"}`))
	f.Add([]byte(`[]`))
	h := knative.Wrap(newEngine(echoData), next)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/cloudevents+json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		checkOutcome(t, w, nil)
	})
}

func checkOutcome(t *testing.T, w *httptest.ResponseRecorder, data []byte) {
	t.Helper()
	switch w.Code {
	case http.StatusOK:
		var reply *event.Event
		if strings.HasPrefix(w.Header().Get("Content-Type"), "application/cloudevents+json") {
			reply = new(event.Event)
			if err := format.JSON.Unmarshal(w.Body.Bytes(), reply); err != nil {
				t.Fatalf("structured reply: %v\n%s", err, w.Body)
			}
		} else {
			reply = parseReply(t, w.Result())
		}
		if err := reply.Validate(); err != nil {
			t.Fatalf("reply: %v", err)
		}
		if data != nil && string(reply.Data()) != string(data) {
			t.Fatalf("reply data: got %q, want %q", reply.Data(), data)
		}
	case http.StatusBadRequest:
		var body struct{ Error string }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || strings.Contains(body.Error, "\n") || strings.TrimSpace(body.Error) != body.Error {
			t.Fatalf("400 body %s: want {\"error\": ...} on one line, nothing trailing", w.Body)
		}
	case http.StatusAccepted, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
	default:
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

// FuzzCloudEvent sends fuzzed requests through the function's whole HTTP
// handler (runtime.Handler: this carrier in front of the HTTP carrier, the
// real engine and an echoing predictor), in every mode the carrier tells
// apart: binary, structured, batch, another structured format. Whatever
// the input: no panic, never a 5xx (every problem is the caller's, so a
// 4xx), every answer to a CloudEvent carries X-Request-Id, and a 200 to one
// is a valid reply event.
func FuzzCloudEvent(f *testing.F) {
	f.Add(uint8(0), "predict", "1.0", "id", "/src", "type", "application/json", "", []byte(`{"a":1}`))
	f.Add(uint8(0), "v2/models/echo/infer", "1.0", "id", "/src", "type", "application/json", "",
		[]byte(`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`))
	f.Add(uint8(0), "v1/models/echo:predict?model=echo", "1.0", "id", "/src", "t", "text/plain", "gzip", []byte("x"))
	f.Add(uint8(1), "", "", "", "", "", "; charset=utf-8", "",
		[]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":{"x":1}}`))
	f.Add(uint8(1), "any/path", "", "", "", "", "", "",
		[]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"AAEC"}`))
	f.Add(uint8(2), "", "", "", "", "", "", "", []byte(`[{"specversion":"1.0","id":"1","source":"/s","type":"t"}]`))
	f.Add(uint8(3), "", "", "", "", "", "+avro", "", []byte("x"))
	f.Add(uint8(0), "", "0.3", "", "::bad", "", "", "br", []byte{0, 0xff})

	rt, err := runtime.New(functions.PredictorFunc(echoData), runtime.Config{Name: "echo", Limits: runtime.Limits{MaxBody: 64 << 10}},
		runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		f.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	h := rt.Handler()

	f.Fuzz(func(t *testing.T, mode uint8, path, spec, id, source, typ, ct, encoding string, body []byte) {
		u, err := url.ParseRequestURI("/" + strings.TrimLeft(path, "/"))
		if err != nil {
			u = &url.URL{Path: "/"}
		}
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		r.URL, r.RequestURI = u, u.RequestURI()
		set := func(k, v string) {
			if v != "" && !strings.ContainsAny(v, "\r\n\x00") {
				r.Header.Set(k, v)
			}
		}
		switch mode % 4 {
		case 0: // binary
			r.Header.Set("Ce-Specversion", "1.0")
			set("Ce-Specversion", spec)
			set("Ce-Id", id)
			set("Ce-Source", source)
			set("Ce-Type", typ)
			set("Content-Type", ct)
		case 1: // structured; ct adds parameters
			r.Header.Set("Content-Type", "application/cloudevents+json")
			set("Content-Type", "application/cloudevents+json"+ct)
		case 2:
			r.Header.Set("Content-Type", "application/cloudevents-batch+json")
		case 3: // another structured format, or a mangled one
			r.Header.Set("Content-Type", "application/cloudevents")
			set("Content-Type", "application/cloudevents"+ct)
		}
		set("Content-Encoding", encoding)
		isEvent := r.Header.Get("Ce-Specversion") != "" || strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/cloudevents")

		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s (%v): %d %s: a 5xx for the caller's input", r.Method, r.URL, r.Header, w.Code, w.Body)
		}
		if !isEvent {
			return
		}
		if w.Header().Get("X-Request-Id") == "" {
			t.Fatalf("%v: %d %s without X-Request-Id", r.Header, w.Code, w.Body)
		}
		if w.Code == http.StatusOK {
			checkOutcome(t, w, nil)
		}
	})
}
