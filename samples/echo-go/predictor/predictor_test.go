package predictor_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/samples/echo-go/predictor"
)

type example struct {
	Request struct {
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers"`
		Query   map[string]string `json:"query"`
		Body    json.RawMessage   `json:"body"`
	} `json:"request"`
	Response struct {
		Status        int            `json:"status"`
		Body          map[string]any `json:"body"`
		ErrorContains string         `json:"error_contains"`
	} `json:"response"`
}

// TestExamples runs every example of the sample against its predictor,
// served by the runtime over HTTP with the sample's predictor.config.
func TestExamples(t *testing.T) {
	rt, err := runtime.New(predictor.New(), runtime.Config{Name: "echo-go",
		Predictor: runtime.PredictorConfig{Type: "go", Values: map[string]any{"greeting": "Hello", "max_name_length": 32.0}}},
		runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.json"))
	if err != nil || len(files) < 7 {
		t.Fatalf("%d examples (%v)", len(files), err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var ex example
			if err := json.Unmarshal(raw, &ex); err != nil {
				t.Fatal(err)
			}
			q := url.Values{}
			for k, v := range ex.Request.Query {
				q.Set(k, v)
			}
			req, err := http.NewRequest(ex.Request.Method, srv.URL+ex.Request.Path+"?"+q.Encode(), strings.NewReader(string(ex.Request.Body)))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range ex.Request.Headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != ex.Response.Status {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, b, ex.Response.Status)
			}
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("body %s: %v", b, err)
			}
			if ex.Response.ErrorContains != "" {
				if msg, _ := got["error"].(string); !strings.Contains(msg, ex.Response.ErrorContains) {
					t.Errorf("error %q, want it to contain %q", msg, ex.Response.ErrorContains)
				}
				if ex.Response.Status == http.StatusUnprocessableEntity && strings.Contains(ex.Response.ErrorContains, "$.") && got["fields"] == nil {
					t.Errorf("a 422 of the input schema without its fields: %s", b)
				}
				return
			}
			for k, w := range ex.Response.Body {
				g := got[k]
				if wf, ok := w.(float64); ok {
					if gf, ok := g.(float64); !ok || gf-wf > 1e-4 || wf-gf > 1e-4 {
						t.Errorf("%s = %v, want %v", k, g, w)
					}
					continue
				}
				if !reflect.DeepEqual(g, w) {
					t.Errorf("%s = %v, want %v", k, g, w)
				}
			}
		})
	}
}
