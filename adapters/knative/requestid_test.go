package knative_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/adapters/knative"
	"github.com/cortexfn/cortex/functions"
)

// TestEveryAnswerHasRequestID checks that every answer to a CloudEvent,
// the carrier's own refusals included, carries X-Request-Id: the caller's
// when it sent one, else a fresh one.
func TestEveryAnswerHasRequestID(t *testing.T) {
	e := newEngine(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
		switch string(req.Body) {
		case `"fail"`:
			return nil, functions.Errorf(http.StatusUnprocessableEntity, "no")
		case `"none"`:
			return nil, nil
		}
		return classify(ctx, req)
	})
	e.maxBody = 16
	h := knative.Wrap(e, next)
	structured := func(ct, body string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			r.Header.Set("Content-Type", ct)
			return r
		}
	}
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
	}{
		{"batch", structured("application/cloudevents-batch+json", `[]`), http.StatusBadRequest},
		{"unsupported format", structured("application/cloudevents+avro", `x`), http.StatusUnsupportedMediaType},
		{"invalid binary", func() *http.Request {
			r := binaryRequest(`{}`)
			r.Header.Del("Ce-Id")
			return r
		}, http.StatusBadRequest},
		{"invalid structured", structured("application/cloudevents+json", `{"specversion": "1.0"`), http.StatusBadRequest},
		{"binary over the limit", func() *http.Request { return binaryRequest(strings.Repeat("x", 17)) }, http.StatusRequestEntityTooLarge},
		{"structured over the limit", structured("application/cloudevents+json",
			`{"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data_base64": "`+base64.StdEncoding.EncodeToString(make([]byte, 17))+`"}`),
			http.StatusRequestEntityTooLarge},
		{"predictor error", func() *http.Request { return binaryRequest(`"fail"`) }, http.StatusUnprocessableEntity},
		{"no reply", func() *http.Request { return binaryRequest(`"none"`) }, http.StatusAccepted},
		{"reply", func() *http.Request { return binaryRequest(`{}`) }, http.StatusOK},
	}
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, callerID := range []string{"", "caller-7"} {
				r := tt.req()
				if callerID != "" {
					r.Header.Set("X-Request-Id", callerID)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != tt.status {
					t.Fatalf("status %d %s, want %d", w.Code, w.Body, tt.status)
				}
				got := w.Header().Get("X-Request-Id")
				switch {
				case callerID != "" && got != callerID:
					t.Errorf("with the caller's id: X-Request-Id %q, want %q", got, callerID)
				case callerID == "" && got == "":
					t.Errorf("without the caller's id: no X-Request-Id")
				case callerID == "" && got != "generated-id" && !hexID.MatchString(got):
					t.Errorf("without the caller's id: X-Request-Id %q, want the engine's or 32 hex digits", got)
				}
			}
		})
	}
}
