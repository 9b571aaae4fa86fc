package knative_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/cortexfn/cortex/adapters/knative"
	"github.com/cortexfn/cortex/functions"
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
