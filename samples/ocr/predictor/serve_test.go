package predictor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/wasm"
	"github.com/cortexfn/cortex/samples/ocr/predictor"
)

// serve runs the sample as `cortex serve` does, in-process: cortex.yaml, the
// pre stage built to WebAssembly, the predictor behind the runtime's HTTP
// adapter. It returns the base URL.
func serve(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(sampleDir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Load(dir)
	if err != nil {
		t.Fatalf("loading cortex.yaml: %v", err)
	}
	s.SetDefaults()
	if err := s.Validate(); err != nil {
		t.Fatalf("cortex.yaml: %v", err)
	}
	cfg := s.RuntimeConfig()
	cfg.Dir = dir
	pre := filepath.Join(t.TempDir(), "pre.wasm")
	if err := wasm.BuildGo(context.Background(), filepath.Join(dir, s.Pre), pre); err != nil {
		t.Fatal(err)
	}
	cfg.Pre = pre
	// No GPU here: the runtime falls back to the CPU and logs why.
	cfg.GPU = 0
	rt, err := runtime.New(predictor.New(), cfg)
	if err != nil {
		t.Fatalf("runtime.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && err != http.ErrServerClosed && err != context.Canceled {
			t.Logf("Serve: %v", err)
		}
	})
	for deadline := time.Now().Add(time.Minute); !rt.Ready(); {
		if err := rt.InitError(); err != nil {
			t.Fatalf("init: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the function did not become ready within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "http://" + ln.Addr().String()
}

// example is an examples/*.json file, as `cortex test` reads it.
type example struct {
	Description string   `json:"description"`
	Tolerance   *float64 `json:"tolerance"`
	Request     struct {
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	} `json:"request"`
	Response struct {
		Status        int             `json:"status"`
		Body          json.RawMessage `json:"body"`
		ErrorContains string          `json:"error_contains"`
	} `json:"response"`
}

// TestServedExamples sends every examples/*.json through the runtime over
// HTTP, as `cortex test samples/ocr` does, and checks the answers the same
// way (status; error substring; expected keys with numbers within the
// tolerance).
func TestServedExamples(t *testing.T) {
	base := serve(t)
	files, _ := filepath.Glob(filepath.Join(sampleDir, "examples", "*.json"))
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var ex example
			if err := json.Unmarshal(b, &ex); err != nil {
				t.Fatal(err)
			}
			body := []byte(ex.Request.Body)
			ct := ex.Request.Headers["Content-Type"]
			if ct != "" && ct != "application/json" {
				var s string
				if json.Unmarshal(body, &s) == nil {
					body = []byte(s)
				}
			}
			req, _ := http.NewRequest(ex.Request.Method, base+ex.Request.Path, bytes.NewReader(body))
			for k, v := range ex.Request.Headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != ex.Response.Status {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, ex.Response.Status, got)
			}
			if ex.Response.ErrorContains != "" {
				var e struct {
					Error string `json:"error"`
				}
				if json.Unmarshal(got, &e) != nil || !strings.Contains(e.Error, ex.Response.ErrorContains) {
					t.Errorf("answer %.300s: its error does not contain %q", got, ex.Response.ErrorContains)
				}
			}
			if len(ex.Response.Body) > 0 {
				var want, have any
				json.Unmarshal(ex.Response.Body, &want)
				if err := json.Unmarshal(got, &have); err != nil {
					t.Fatalf("answer is not JSON: %.300s", got)
				}
				tol := 1e-4
				if ex.Tolerance != nil {
					tol = *ex.Tolerance
				}
				if err := match(want, have, tol, "body"); err != nil {
					t.Errorf("%v\ngot %.500s", err, got)
				}
			}
		})
	}
}

// match reports whether have holds want: every key of an expected object,
// arrays of the same length, numbers within tol (absolute or relative).
func match(want, have any, tol float64, path string) error {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: got %v, want an object", path, have)
		}
		for k, v := range w {
			if err := match(v, h[k], tol, path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return fmt.Errorf("%s: got %v, want %d elements", path, have, len(w))
		}
		for i := range w {
			if err := match(w[i], h[i], tol, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case float64:
		h, ok := have.(float64)
		if !ok || (math.Abs(h-w) > tol && math.Abs(h-w) > tol*math.Abs(w)) {
			return fmt.Errorf("%s: got %v, want %v", path, have, w)
		}
	default:
		if want != have {
			return fmt.Errorf("%s: got %v, want %v", path, have, want)
		}
	}
	return nil
}
