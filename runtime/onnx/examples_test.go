package onnx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
	"github.com/cortexfn/cortex/runtime/onnx"
)

var update = flag.Bool("update", false, "rewrite the expected bodies in samples/iris/examples from the model's answers")

// example is one file of samples/iris/examples, the format `cortex test`
// reads, with its rule for bodies: a "body" that is a JSON string is sent as
// it is when the Content-Type is not JSON (so a malformed body can be
// written down); any other body is sent as JSON.
type example struct {
	Description string `json:"description"`
	Request     struct {
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers,omitempty"`
		Body    json.RawMessage   `json:"body,omitempty"`
	} `json:"request"`
	Response struct {
		Status        int             `json:"status"`
		Body          json.RawMessage `json:"body,omitempty"`
		ErrorContains string          `json:"error_contains,omitempty"`
		Tolerance     *float64        `json:"tolerance,omitempty"`
	} `json:"response"`
}

func (e *example) body() []byte {
	var s string
	if !strings.Contains(e.Request.Headers["Content-Type"], "json") && json.Unmarshal(e.Request.Body, &s) == nil {
		return []byte(s)
	}
	return e.Request.Body
}

// TestIrisExamples runs every example of the iris sample against the real
// model, routing it the way the HTTP adapter does: /predict and the OIP
// infer route take OIP JSON; the KServe V1 route goes through oip.FromV1
// and oip.ToV1 with the predictor's metadata.
func TestIrisExamples(t *testing.T) {
	p := newIris(t)
	files, err := filepath.Glob(filepath.Join(irisDir, "examples", "*.json"))
	if err != nil || len(files) < 6 {
		t.Fatalf("got %d example files (%v), want at least 6", len(files), err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var ex example
			if err := json.Unmarshal(raw, &ex); err != nil {
				t.Fatalf("parsing %s: %v", file, err)
			}
			status, body := serve(p, ex.Request.Path, ex.body())
			if status != ex.Response.Status {
				t.Fatalf("status: got %d (%s), want %d", status, body, ex.Response.Status)
			}
			if ex.Response.ErrorContains != "" {
				var e struct{ Error string }
				if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, ex.Response.ErrorContains) {
					t.Errorf("got %s, want an error containing %q", body, ex.Response.ErrorContains)
				}
				return
			}
			if *update {
				ex.Response.Body = body
				out, err := json.MarshalIndent(&ex, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				out = scalarArrays.ReplaceAllFunc(out, func(b []byte) []byte {
					b = spaces.ReplaceAll(b, []byte(" "))
					return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("[ "), []byte("[")), []byte(" ]"), []byte("]"))
				})
				if err := os.WriteFile(file, append(out, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			tol := 1e-4
			if ex.Response.Tolerance != nil {
				tol = *ex.Response.Tolerance
			}
			var got, want any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("response %s: %v", body, err)
			}
			if err := json.Unmarshal(ex.Response.Body, &want); err != nil {
				t.Fatalf("expected body: %v", err)
			}
			if err := jsonClose(got, want, tol, "body"); err != nil {
				t.Errorf("%v\ngot  %s\nwant %s", err, body, ex.Response.Body)
			}
		})
	}
}

// scalarArrays matches arrays of numbers and booleans, which -update writes
// on one line.
var (
	scalarArrays = regexp.MustCompile(`\[[\s0-9eE.+\-,truefals]*\]`)
	spaces       = regexp.MustCompile(`\s+`)
)

// serve answers a request as the HTTP adapter would.
func serve(p *onnx.Predictor, path string, body []byte) (int, []byte) {
	ctx := context.Background()
	req := &functions.Request{Method: "POST", Path: path, Body: body, ContentType: "application/json"}
	v1 := strings.HasPrefix(path, "/v1/")
	switch {
	case strings.HasPrefix(path, "/v2/models/"):
		req.Protocol = functions.ProtocolOIP
		req.Model = strings.Split(strings.TrimPrefix(path, "/v2/models/"), "/")[0]
	case v1:
		ir, err := oip.FromV1(body, p.ModelMetadata().Inputs[0])
		if err != nil {
			return errorResponse(err)
		}
		if req.Body, err = json.Marshal(ir); err != nil {
			return errorResponse(err)
		}
	}
	resp, err := p.Predict(ctx, req)
	if err != nil {
		return errorResponse(err)
	}
	if v1 {
		r, err := oip.DecodeResponse(resp.Body)
		if err != nil {
			return errorResponse(err)
		}
		b, err := oip.ToV1(r)
		if err != nil {
			return errorResponse(err)
		}
		return resp.StatusCode(), b
	}
	return resp.StatusCode(), resp.Body
}

func errorResponse(err error) (int, []byte) {
	msg := err.Error()
	var fe *functions.Error
	if errors.As(err, &fe) {
		msg = fe.Message
	}
	return functions.StatusOf(err), functions.ErrorBody(msg)
}

// jsonClose compares decoded JSON, numbers within abs+rel tolerance tol.
func jsonClose(got, want any, tol float64, at string) error {
	switch w := want.(type) {
	case float64:
		g, ok := got.(float64)
		if !ok || math.Abs(g-w) > tol+tol*math.Abs(w) {
			return fmt.Errorf("%s: got %v, want %v (tolerance %g)", at, got, w, tol)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: got %v, want %d elements", at, got, len(w))
		}
		for i := range w {
			if err := jsonClose(g[i], w[i], tol, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: got %v, want %v", at, got, w)
		}
		for k := range w {
			if err := jsonClose(g[k], w[k], tol, at+"."+k); err != nil {
				return err
			}
		}
	default:
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if !bytes.Equal(gb, wb) {
			return fmt.Errorf("%s: got %s, want %s", at, gb, wb)
		}
	}
	return nil
}
