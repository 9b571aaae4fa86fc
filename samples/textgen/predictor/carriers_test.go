package predictor_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	lambdaadapter "github.com/cortexfn/cortex/adapters/lambda"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/samples/textgen/predictor"
)

var (
	served    sync.Once
	servedRT  *runtime.Runtime
	servedURL string
)

// serveTextgen serves the textgen predictor through the runtime over
// HTTP, as its function process does, once for the package's tests.
func serveTextgen(t *testing.T) (*runtime.Runtime, string) {
	t.Helper()
	loaded(t) // fails with the fix when the model is missing
	served.Do(func() {
		rt, err := runtime.New(predictor.New(), runtime.Config{Name: "textgen", Dir: "..",
			Predictor: runtime.PredictorConfig{Model: "model"},
			Limits:    runtime.Limits{MaxConcurrency: 4, Timeout: runtime.Duration(time.Minute)}},
			runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = rt.Serve(context.Background(), ln) }()
		servedRT, servedURL = rt, "http://"+ln.Addr().String()
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			if resp, err := http.Get(servedURL + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("textgen not ready within a minute")
			}
		}
	})
	return servedRT, servedURL
}

func postJSON(t *testing.T, url, body string, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// sseData reads server-sent events and returns each event's name and
// data.
func sseData(t *testing.T, r io.Reader) (names, data []string) {
	t.Helper()
	sc := bufio.NewScanner(r)
	name, lines := "", []string(nil)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			names, data = append(names, name), append(data, strings.Join(lines, "\n"))
			name, lines = "", nil
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			lines = append(lines, strings.TrimPrefix(line, "data: "))
		}
	}
	return names, data
}

const prompt = `"prompt": "And God said unto Moses,", "max_tokens": 12`

// TestSameTextOnEveryRoute: greedy, and sampled with a seed, the text is
// the same whole or streamed, on /predict, on OpenAI's completions route
// (as the OpenAI SDKs send it, streamed and not), over HTTP, over a
// Lambda function-URL event and over a CloudEvent.
func TestSameTextOnEveryRoute(t *testing.T) {
	rt, base := serveTextgen(t)
	for _, opts := range []string{`"temperature": 0`, `"temperature": 0.9, "top_k": 40, "seed": 7`} {
		body := "{" + prompt + ", " + opts + "}"

		resp := postJSON(t, base+"/predict", body)
		var whole predictor.Output
		if err := json.NewDecoder(resp.Body).Decode(&whole); err != nil || resp.StatusCode != 200 || whole.Text == "" {
			t.Fatalf("%s: /predict: %d %v %+v", opts, resp.StatusCode, err, whole)
		}
		resp.Body.Close()
		want := whole.Text

		// Streamed: one event per piece, then the usage, then done.
		resp = postJSON(t, base+"/predict", body, "Accept", "text/event-stream")
		names, data := sseData(t, resp.Body)
		resp.Body.Close()
		var text strings.Builder
		for i, d := range data[:len(data)-2] {
			var piece struct{ Text string }
			if names[i] != "output" || json.Unmarshal([]byte(d), &piece) != nil {
				t.Fatalf("%s: event %d: %s %s", opts, i, names[i], d)
			}
			text.WriteString(piece.Text)
		}
		var last predictor.Output
		_ = json.Unmarshal([]byte(data[len(data)-2]), &last)
		if text.String() != want || last.FinishReason != whole.FinishReason || last.Tokens != whole.Tokens || names[len(names)-1] != "done" {
			t.Errorf("%s: streamed %q (%+v, last event %s), whole %q", opts, text.String(), last, names[len(names)-1], want)
		}

		// OpenAI's completions route, whole and streamed.
		oa := "{" + strings.Replace(prompt, `"max_tokens"`, `"model": "textgen", "max_tokens"`, 1) + ", " + strings.Replace(opts, `, "top_k": 40`, "", 1) + "}"
		if strings.Contains(opts, "top_k") {
			continue // OpenAI's API has no top_k: the sampled texts differ by design
		}
		resp = postJSON(t, base+"/v1/completions", oa)
		var c struct {
			Object  string
			Choices []struct {
				Text         string
				FinishReason string `json:"finish_reason"`
			}
			Usage struct {
				CompletionTokens int `json:"completion_tokens"`
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || len(c.Choices) != 1 || c.Choices[0].Text != want || c.Object != "text_completion" || c.Usage.CompletionTokens != whole.Tokens {
			t.Errorf("%s: /v1/completions: %d %v %+v, want %q", opts, resp.StatusCode, err, c, want)
		}
		resp.Body.Close()
		resp = postJSON(t, base+"/v1/completions", strings.Replace(oa, "{", `{"stream": true, `, 1))
		names, data = sseData(t, resp.Body)
		resp.Body.Close()
		text.Reset()
		for i, d := range data {
			if names[i] != "" {
				t.Errorf("OpenAI's events have no name; got %q", names[i])
			}
			if d == "[DONE]" {
				if i != len(data)-1 {
					t.Errorf("[DONE] is event %d of %d", i, len(data))
				}
				continue
			}
			var ch struct{ Choices []struct{ Text string } }
			if err := json.Unmarshal([]byte(d), &ch); err != nil || len(ch.Choices) != 1 {
				t.Fatalf("chunk %q: %v", d, err)
			}
			text.WriteString(ch.Choices[0].Text)
		}
		if text.String() != want || data[len(data)-1] != "[DONE]" {
			t.Errorf("/v1/completions streamed %q, want %q", text.String(), want)
		}

		// A Lambda function-URL event, through the Lambda carrier.
		h, err := lambdaadapter.Handler(rt)
		if err != nil {
			t.Fatal(err)
		}
		ev := events.LambdaFunctionURLRequest{Version: "2.0", RawPath: "/predict", Body: body, Headers: map[string]string{"content-type": "application/json"},
			RequestContext: events.LambdaFunctionURLRequestContext{DomainName: "textgen.lambda-url.eu-west-1.on.aws",
				HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST", Path: "/predict"}}}
		payload, _ := json.Marshal(ev)
		out, err := h.Invoke(context.Background(), payload)
		if err != nil {
			t.Fatal(err)
		}
		var lr events.LambdaFunctionURLResponse
		_ = json.Unmarshal(out, &lr)
		lb := lr.Body
		if lr.IsBase64Encoded {
			b, _ := base64.StdEncoding.DecodeString(lb)
			lb = string(b)
		}
		var lo predictor.Output
		if err := json.Unmarshal([]byte(lb), &lo); err != nil || lo.Text != want {
			t.Errorf("%s: Lambda: %d %q, want %q", opts, lr.StatusCode, lb, want)
		}

		// A binary-mode CloudEvent: the whole answer.
		resp = postJSON(t, base+"/", body, "Ce-Specversion", "1.0", "Ce-Id", "1", "Ce-Source", "test", "Ce-Type", "textgen.request")
		var co predictor.Output
		if err := json.NewDecoder(resp.Body).Decode(&co); err != nil || co.Text != want {
			t.Errorf("%s: CloudEvent: %d %v %+v, want %q", opts, resp.StatusCode, err, co, want)
		}
		resp.Body.Close()
	}
}

// TestChatCompletions: OpenAI's chat route, whole and streamed, as the
// OpenAI SDKs send it and read it.
func TestChatCompletions(t *testing.T) {
	_, base := serveTextgen(t)
	body := `{"model": "textgen", "messages": [{"role": "user", "content": "Who spake unto Moses?"}], "max_tokens": 8, "temperature": 0}`
	resp := postJSON(t, base+"/v1/chat/completions", body)
	var c struct {
		Object  string
		Choices []struct {
			Msg          struct{ Role, Content string } `json:"message"`
			FinishReason string                         `json:"finish_reason"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != 200 || c.Object != "chat.completion" || len(c.Choices) != 1 || c.Choices[0].Msg.Role != "assistant" {
		t.Fatalf("chat: %d %v %+v", resp.StatusCode, err, c)
	}
	resp.Body.Close()
	want := c.Choices[0].Msg.Content

	resp = postJSON(t, base+"/v1/chat/completions", strings.Replace(body, "{", `{"stream": true, "stream_options": {"include_usage": true}, `, 1))
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	_, data := sseData(t, resp.Body)
	resp.Body.Close()
	var text strings.Builder
	role := ""
	for _, d := range data {
		if d == "[DONE]" {
			continue
		}
		var ch struct {
			Object  string
			Choices []struct {
				Delta struct{ Role, Content string }
			}
		}
		if err := json.Unmarshal([]byte(d), &ch); err != nil || ch.Object != "chat.completion.chunk" {
			t.Fatalf("chunk %q: %v", d, err)
		}
		if ch.Choices[0].Delta.Role != "" {
			role = ch.Choices[0].Delta.Role
		}
		text.WriteString(ch.Choices[0].Delta.Content)
	}
	if text.String() != want || role != "assistant" || data[len(data)-1] != "[DONE]" {
		t.Errorf("chat streamed %q (role %q), want %q", text.String(), role, want)
	}

	// What the model cannot do is refused, not ignored.
	resp = postJSON(t, base+"/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "n": 2}`)
	if resp.StatusCode != 400 {
		t.Errorf("n: 2: %d, want 400", resp.StatusCode)
	}
	resp.Body.Close()
	resp = postJSON(t, base+"/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "logprobs": true}`)
	if resp.StatusCode != 400 {
		t.Errorf("logprobs: %d, want 400", resp.StatusCode)
	}
	resp.Body.Close()
}
