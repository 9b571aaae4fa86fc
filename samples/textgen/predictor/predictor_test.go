package predictor_test

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/samples/textgen/predictor"
)

var update = flag.Bool("update", false, "rewrite the expected answers of ../examples/*.json from the model's")

var (
	once sync.Once
	pred functions.Predictor
	err0 error
)

func loaded(t *testing.T) functions.Predictor {
	t.Helper()
	once.Do(func() {
		dir := filepath.Join("..", "model")
		if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err != nil {
			err0 = err
			return
		}
		p := predictor.New()
		err0 = p.(functions.Initializer).Init(context.Background(), functions.Config{Name: "textgen", Dir: "..", Model: dir})
		pred = p
	})
	if err0 != nil {
		t.Fatalf("the textgen model is missing or broken: run `make models` (scripts/fetch-textgen-model.sh) first: %v", err0)
	}
	return pred
}

type example struct {
	Description string `json:"description"`
	Request     struct {
		Method  string            `json:"method,omitempty"`
		Path    string            `json:"path,omitempty"`
		Headers map[string]string `json:"headers,omitempty"`
		Body    json.RawMessage   `json:"body"`
	} `json:"request"`
	Response struct {
		Status        int             `json:"status"`
		Body          json.RawMessage `json:"body,omitempty"`
		ErrorContains string          `json:"error_contains,omitempty"`
		Events        []event         `json:"events,omitempty"`
	} `json:"response"`
}

// event is a server-sent event as `cortex test` reads an example's.
type event struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// chunks is a functions.Stream that keeps what it was sent.
type chunks struct {
	header http.Header
	got    [][]byte
}

func (c *chunks) Header() http.Header { return c.header }
func (c *chunks) Send(b []byte) error {
	c.got = append(c.got, append([]byte(nil), b...))
	return nil
}

// streamExample runs a streamed example (Accept: text/event-stream)
// through PredictStream: the events are the chunks, then "done".
func streamExample(t *testing.T, p functions.Predictor, path string, ex example, body []byte) {
	t.Helper()
	c := &chunks{header: http.Header{}}
	err := p.(functions.Streamer).PredictStream(context.Background(), &functions.Request{Method: http.MethodPost, Path: "/predict", Body: body}, c)
	if err != nil {
		t.Fatal(err)
	}
	var got []event
	for _, ch := range c.got {
		got = append(got, event{Event: "output", Data: ch})
	}
	got = append(got, event{Event: "done"})
	if *update {
		ex.Response.Status, ex.Response.Events = http.StatusOK, got
		out, _ := json.MarshalIndent(ex, "", " ")
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if len(got) != len(ex.Response.Events) {
		t.Fatalf("%d events, want %d (run with -update if the model was rebuilt)", len(got), len(ex.Response.Events))
	}
	for i, w := range ex.Response.Events {
		var wv, gv any
		_ = json.Unmarshal(w.Data, &wv)
		_ = json.Unmarshal(got[i].Data, &gv)
		if w.Event != got[i].Event || !reflect.DeepEqual(wv, gv) {
			t.Errorf("event %d: %s %s, want %s %s", i, got[i].Event, got[i].Data, w.Event, w.Data)
		}
	}
}

// TestExamples runs ../examples/*.json (what `cortex test` sends) through
// the predictor: the status, the error, and for an answer its text, token
// count and finish reason. -update rewrites the expected answers from the
// model's (they are the model's own output, never written by hand).
func TestExamples(t *testing.T) {
	p := loaded(t)
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var ex example
			if err := json.Unmarshal(b, &ex); err != nil {
				t.Fatal(err)
			}
			body := []byte(ex.Request.Body)
			var s string
			if json.Unmarshal(body, &s) == nil && ex.Request.Headers["Content-Type"] != "application/json" {
				body = []byte(s)
			}
			if ex.Request.Headers["Accept"] == "text/event-stream" {
				streamExample(t, p, path, ex, body)
				return
			}
			resp, err := p.Predict(context.Background(), &functions.Request{Method: http.MethodPost, Path: "/predict", Body: body, ContentType: "application/json"})
			status := http.StatusOK
			if err != nil {
				status = functions.StatusOf(err)
			}
			if status != ex.Response.Status && !*update {
				t.Fatalf("status %d (%v); want %d", status, err, ex.Response.Status)
			}
			if err != nil {
				if !strings.Contains(err.Error(), ex.Response.ErrorContains) {
					t.Fatalf("error %q does not contain %q", err, ex.Response.ErrorContains)
				}
				return
			}
			var got predictor.Output
			if err := json.Unmarshal(resp.Body, &got); err != nil {
				t.Fatal(err)
			}
			if *update {
				keep := map[string]any{"text": got.Text, "tokens": got.Tokens, "finish_reason": got.FinishReason}
				var in predictor.Input
				if json.Unmarshal(body, &in) == nil && in.Seed != nil {
					keep["seed"] = got.Seed
				}
				ex.Response.Status = http.StatusOK
				ex.Response.Body, _ = json.Marshal(keep)
				out, _ := json.MarshalIndent(ex, "", " ")
				if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			var want predictor.Output
			if err := json.Unmarshal(ex.Response.Body, &want); err != nil {
				t.Fatal(err)
			}
			if got.Text != want.Text || got.Tokens != want.Tokens || got.FinishReason != want.FinishReason {
				t.Fatalf("got %q (%d tokens, %s); want %q (%d tokens, %s) (run with -update if the model was rebuilt)",
					got.Text, got.Tokens, got.FinishReason, want.Text, want.Tokens, want.FinishReason)
			}
		})
	}
}
