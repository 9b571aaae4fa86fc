package knative_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/adapters/knative"
)

// TestInvalidEventMessage checks the error body for malformed CloudEvents:
// the SDK's problems, one per attribute and each ended by a newline, reach
// the caller on one line, in a stable order, with nothing trailing.
func TestInvalidEventMessage(t *testing.T) {
	h := knative.Wrap(newEngine(classify), next)
	structured := func(body string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/cloudevents+json")
			return r
		}
	}
	tests := []struct {
		name string
		req  func() *http.Request
		want string
	}{
		{"binary, no id", func() *http.Request {
			r := binaryRequest(`{}`)
			r.Header.Del("Ce-Id")
			return r
		}, "invalid CloudEvent: id: MUST be a non-empty string"},
		{"binary, no id and no source", func() *http.Request {
			r := binaryRequest(`{}`)
			r.Header.Del("Ce-Id")
			r.Header.Del("Ce-Source")
			return r
		}, "invalid CloudEvent: id: MUST be a non-empty string; source: REQUIRED"},
		{"structured, no source and no type", structured(`{"specversion": "1.0", "id": "5"}`),
			"invalid CloudEvent: source: REQUIRED; type: MUST be a non-empty string"},
		{"structured, truncated", structured(`{"specversion": "1.0", "id": "5"`),
			"invalid CloudEvent: unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 5 { // the SDK lists its problems in map order
				w := httptest.NewRecorder()
				h.ServeHTTP(w, tt.req())
				var body struct{ Error string }
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusBadRequest {
					t.Fatalf("got %d %s, want a 400 {\"error\": ...}", w.Code, w.Body)
				}
				if body.Error != tt.want {
					t.Fatalf("error:\ngot  %q\nwant %q", body.Error, tt.want)
				}
			}
		})
	}
}
