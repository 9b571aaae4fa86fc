package examples_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/cmd/cortex/internal/examples"
)

func TestCompare(t *testing.T) {
	tests := []struct {
		name      string
		want, got string
		tol       float64
		err       string // substring; "" for a match
	}{
		{"equal", `{"a": 1, "b": [1, 2]}`, `{"a": 1, "b": [1, 2]}`, 1e-4, ""},
		{"key order", `{"a": 1, "b": 2}`, `{"b": 2, "a": 1}`, 1e-4, ""},
		{"extra key in answer", `{"a": 1}`, `{"a": 1, "id": "x"}`, 1e-4, ""},
		{"missing key", `{"a": 1, "b": 2}`, `{"a": 1}`, 1e-4, "$.b: missing"},
		{"within tolerance", `{"p": 0.6667}`, `{"p": 0.6666666}`, 1e-4, ""},
		{"outside tolerance", `{"p": 0.67}`, `{"p": 0.6666666}`, 1e-4, "$.p: got 0.6666666, want 0.67 (tolerance 0.0001)"},
		{"custom tolerance", `{"p": 0.67}`, `{"p": 0.6666666}`, 0.01, ""},
		{"relative tolerance for big numbers", `[100000]`, `[100000.5]`, 1e-5, ""},
		{"nested path", `{"outputs": [{"data": [1, 2]}]}`, `{"outputs": [{"data": [1, 3]}]}`, 1e-4, "$.outputs[0].data[1]: got 3, want 2"},
		{"array length", `[1, 2]`, `[1, 2, 3]`, 1e-4, "$: got 3 elements, want 2"},
		{"string", `{"s": "a"}`, `{"s": "b"}`, 1e-4, `$.s: got "b", want "a"`},
		{"number for string", `{"s": "1"}`, `{"s": 1}`, 1e-4, `$.s: got the number 1, want "1"`},
		{"string for number", `{"n": 1}`, `{"n": "1"}`, 1e-4, `$.n: got "1", want the number 1`},
		{"null", `{"n": null}`, `{"n": null}`, 1e-4, ""},
		{"bool", `{"b": true}`, `{"b": false}`, 1e-4, "$.b: got false, want true"},
		{"object for array", `[1]`, `{"a": 1}`, 1e-4, "$: got {\"a\":1}, want an array"},
		{"big integers exactly", `{"n": 9007199254740993}`, `{"n": 9007199254740993}`, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			ex := examples.Example{Name: tt.name}
			ex.Response.Status = 200
			ex.Response.Body = json.RawMessage(tt.want)
			ex.Response.Tolerance = &tt.tol
			err := examples.Check(ex, 200, []byte(tt.got))
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("got %v, want a match", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("got %v, want an error containing %q", err, tt.err)
			}
		})
	}
}

func TestCheckErrors(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		contains string
		gotCode  int
		gotBody  string
		err      string
	}{
		{"error field", 422, "name", 422, `{"error": "name is required"}`, ""},
		{"wrong status", 422, "name", 500, `{"error": "name"}`, "status 500, want 422"},
		{"message differs", 422, "age", 422, `{"error": "name is required"}`, `error "name is required" does not contain "age"`},
		{"not JSON", 400, "bad", 400, `bad request`, ""},
		{"only in another field", 400, "x", 400, `{"error": "y", "detail": "x"}`, `does not contain "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := examples.Example{}
			ex.Response.Status = tt.status
			ex.Response.ErrorContains = tt.contains
			err := examples.Check(ex, tt.gotCode, []byte(tt.gotBody))
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("got %v, want a pass", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("got %v, want an error containing %q", err, tt.err)
			}
		})
	}
}

// TestRun sends examples to a real HTTP server and checks what arrives.
func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "path": r.URL.Path, "q": r.URL.Query().Get("k"),
			"ct": r.Header.Get("Content-Type"), "body": string(body),
		})
	}))
	defer srv.Close()
	dir := t.TempDir()
	write := func(name, content string) {
		os.MkdirAll(filepath.Join(dir, "examples"), 0o755)
		if err := os.WriteFile(filepath.Join(dir, "examples", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b-json.json", `{"request": {"path": "/v1/x", "query": {"k": "v"}, "body": {"a": 1}},
		"response": {"status": 200, "body": {"method": "POST", "path": "/v1/x", "q": "v", "ct": "application/json", "body": "{\"a\": 1}"}}}`)
	write("a-text.json", `{"request": {"headers": {"Content-Type": "text/plain"}, "body": "hello"},
		"response": {"status": 200, "body": {"path": "/predict", "ct": "text/plain", "body": "hello"}}}`)
	write("c-fail.json", `{"request": {"method": "GET"}, "response": {"status": 201}}`)
	exs, err := examples.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ex := range exs {
		r := examples.Run(context.Background(), nil, srv.URL, ex)
		got = append(got, r.Name+":"+map[bool]string{true: "pass", false: "fail " + r.Problem}[r.Pass])
	}
	want := []string{"a-text:pass", "b-json:pass", "c-fail:fail status 200, want 201"}
	for i := range want {
		if i >= len(got) || !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("result %d: got %q, want %q", i, got, want[i])
		}
	}
}

func TestLoadRejectsUnknownFields(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "examples"), 0o755)
	os.WriteFile(filepath.Join(dir, "examples", "x.json"), []byte(`{"request": {}, "respnse": {"status": 200}}`), 0o644)
	if _, err := examples.Load(dir); err == nil || !strings.Contains(err.Error(), "respnse") {
		t.Errorf("got %v, want an error naming the unknown field", err)
	}
}

func TestSampleExamplesLoad(t *testing.T) {
	exs, err := examples.Load("../../../../samples/echo-go")
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) < 5 {
		t.Errorf("got %d examples", len(exs))
	}
}

// TestCheckEvents: a streamed answer is checked event by event.
func TestCheckEvents(t *testing.T) {
	body := "event: output\ndata: {\"text\": \" and\", \"extra\": 1}\n\nevent: output\ndata: plain\ndata: two lines\n\nevent: done\ndata: {\"status\":\"succeeded\"}\n\n"
	ev := func(name, data string) examples.Event {
		e := examples.Event{Event: name}
		if data != "" {
			e.Data = json.RawMessage(data)
		}
		return e
	}
	tests := []struct {
		name string
		want []examples.Event
		err  string
	}{
		{"match", []examples.Event{ev("output", `{"text": " and"}`), ev("output", `"plain\ntwo lines"`), ev("done", "")}, ""},
		{"text differs", []examples.Event{ev("output", `{"text": " or"}`), ev("output", ""), ev("done", "")}, `event 0 (output)`},
		{"fewer events", []examples.Event{ev("output", ""), ev("done", "")}, "3 events, want 2"},
		{"other name", []examples.Event{ev("output", ""), ev("output", ""), ev("error", "")}, `event 2 is "done", want "error"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := examples.Example{}
			ex.Response.Status = 200
			ex.Response.Events = tt.want
			err := examples.Check(ex, 200, []byte(body))
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("got %v, want a pass", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("got %v, want an error containing %q", err, tt.err)
			}
		})
	}
}
