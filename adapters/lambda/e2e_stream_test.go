package lambda_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cortexfn/cortex/internal/testutil"
)

// streamEvent is a function-URL event for a streamed prediction.
func streamEvent(t *testing.T, body string, accept string) []byte {
	var ev events.LambdaFunctionURLRequest
	mustUnmarshal(t, urlEvent(t, body), &ev)
	ev.Headers["accept"] = accept
	b, _ := json.Marshal(ev)
	return b
}

// splitPrelude parses a streamed function-URL result: the JSON prelude,
// eight NUL bytes, the body.
func splitPrelude(t *testing.T, b []byte) (status int, headers map[string]string, body []byte) {
	t.Helper()
	prelude, body, ok := bytes.Cut(b, make([]byte, 8))
	if !ok {
		t.Fatalf("no prelude in %.200q", b)
	}
	var p struct {
		StatusCode int               `json:"statusCode"`
		Headers    map[string]string `json:"headers"`
	}
	mustUnmarshal(t, prelude, &p)
	return p.StatusCode, p.Headers, body
}

// TestEndToEndStreamedPrediction: in RESPONSE_STREAM mode, a caller that
// asks for a stream gets the predictor's chunks through the Runtime API's
// streaming protocol as they are sent: the first event reaches the
// Runtime API while the predictor waits for the test to have read it.
// A failure midway is an error event (SSE), or an error in the post's
// trailers (chunked), which Lambda turns into a cut response.
func TestEndToEndStreamedPrediction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a function binary")
	}
	rt := testutil.NewLambdaAPI(t, testARN)
	gate := filepath.Join(t.TempDir(), "gate")
	var sawFirstFirst bool
	rt.ReadStream = func(body io.Reader) ([]byte, error) {
		var got bytes.Buffer
		r := bufio.NewReader(io.TeeReader(body, &got))
		// Through the prelude and the first event.
		if _, err := r.ReadBytes(0); err != nil {
			return got.Bytes(), err
		}
		for blank := 0; blank < 1; {
			line, err := r.ReadString('\n')
			if err != nil {
				return got.Bytes(), err
			}
			if line == "\n" {
				blank++
			}
		}
		sawFirstFirst = !strings.Contains(got.String(), "chunk 1")
		if err := os.WriteFile(gate, nil, 0o600); err != nil {
			return got.Bytes(), err
		}
		_, err := io.Copy(io.Discard, r)
		return got.Bytes(), err
	}
	startFunction(t, rt, "CORTEX_LAMBDA_INVOKE_MODE=RESPONSE_STREAM")

	body := fmt.Sprintf(`{"op": "stream", "n": 3, "gate": %q}`, gate)
	_, res := rt.Invoke(t, "sse-1", streamEvent(t, body, "text/event-stream"), time.Minute)
	status, headers, sse := splitPrelude(t, res.Body)
	want := "event: output\ndata: chunk 0\ndata: \n\nevent: output\ndata: chunk 1\ndata: \n\nevent: output\ndata: chunk 2\ndata: \n\nevent: done\ndata: {\"status\":\"succeeded\"}\n\n"
	if status != 200 || headers["Content-Type"] != "text/event-stream" || string(sse) != want {
		t.Errorf("SSE stream: %d %v\n%s", status, headers, sse)
	}
	if !sawFirstFirst {
		t.Error("the first event did not arrive before the predictor went on")
	}

	// "stream": true asks too; a failure midway ends with an error event.
	_, res = rt.Invoke(t, "sse-2", streamEvent(t, `{"op": "stream", "n": 5, "fail": true, "stream": true}`, ""), time.Minute)
	_, _, sse = splitPrelude(t, res.Body)
	if !strings.HasSuffix(string(sse), "event: error\ndata: {\"status\":422,\"error\":\"cannot go on after 2 chunks\"}\n\n") {
		t.Errorf("SSE stream failing midway:\n%s", sse)
	}

	// Chunked: the chunks themselves; a failure midway is reported in the
	// post's trailers.
	_, res = rt.Invoke(t, "chunked-1", streamEvent(t, `{"op": "stream", "n": 2, "stream": true}`, "text/plain"), time.Minute)
	_, headers, raw := splitPrelude(t, res.Body)
	if string(raw) != "chunk 0\nchunk 1\n" || headers["Content-Type"] != "text/plain; charset=utf-8" || res.Trailer.Get("Lambda-Runtime-Function-Error-Type") != "" {
		t.Errorf("chunked stream: %v %q %v", headers, raw, res.Trailer)
	}
	_, res = rt.Invoke(t, "chunked-2", streamEvent(t, `{"op": "stream", "n": 5, "fail": true, "stream": true}`, "text/plain"), time.Minute)
	if res.Trailer.Get("Lambda-Runtime-Function-Error-Type") == "" {
		t.Errorf("chunked stream failing midway: no error in the trailers (%v)", res.Trailer)
	}

	// Not asked: the whole answer, streamed as one body.
	_, res = rt.Invoke(t, "whole-1", streamEvent(t, `{"op": "stream", "n": 2}`, ""), time.Minute)
	_, _, raw = splitPrelude(t, res.Body)
	if string(raw) != "chunk 0\nchunk 1\n" {
		t.Errorf("not asked for a stream: %q", raw)
	}
}

// TestEndToEndStreamAskedInBufferedMode: a function URL in BUFFERED mode
// cannot stream; a caller that asks for server-sent events gets them all
// at once, in one body, as the HTTP carrier sends them over time; one that
// asks for the raw chunks gets the whole answer.
func TestEndToEndStreamAskedInBufferedMode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a function binary")
	}
	rt := testutil.NewLambdaAPI(t, testARN)
	startFunction(t, rt)
	_, res := rt.Invoke(t, "buffered-1", streamEvent(t, `{"op": "stream", "n": 2, "stream": true}`, "text/event-stream"), time.Minute)
	r := urlResult(t, res)
	want := "event: output\ndata: chunk 0\ndata: \n\nevent: output\ndata: chunk 1\ndata: \n\nevent: done\ndata: {\"status\":\"succeeded\"}\n\n"
	if r.StatusCode != 200 || r.Body != want || r.Headers["Content-Type"] != "text/event-stream" {
		t.Errorf("buffered SSE: %d %v %q", r.StatusCode, r.Headers, r.Body)
	}
	// A predictor that does not stream: one event.
	_, res = rt.Invoke(t, "buffered-2", streamEvent(t, `{"op": "echo"}`, "text/event-stream"), time.Minute)
	if r := urlResult(t, res); r.StatusCode != 200 || !strings.HasPrefix(r.Body, "event: output\ndata: {") || !strings.HasSuffix(r.Body, "event: done\ndata: {\"status\":\"succeeded\"}\n\n") {
		t.Errorf("buffered SSE of a whole answer: %d %q", r.StatusCode, r.Body)
	}
	// An error before the first chunk is a plain error answer.
	_, res = rt.Invoke(t, "buffered-3", streamEvent(t, `{"op": "fail"}`, "text/event-stream"), time.Minute)
	if r := urlResult(t, res); r.StatusCode != 422 {
		t.Errorf("buffered SSE of a failure: %d %q", r.StatusCode, r.Body)
	}
	_, res = rt.Invoke(t, "buffered-4", streamEvent(t, `{"op": "stream", "n": 2, "stream": true}`, "text/plain"), time.Minute)
	if r := urlResult(t, res); r.StatusCode != 200 || r.Body != "chunk 0\nchunk 1\n" {
		t.Errorf("buffered raw chunks: %d %q", r.StatusCode, r.Body)
	}
}

// TestEndToEndStreamedAsKnativeRunsIt: the same function binary as an HTTP
// server on $PORT, as Knative's queue-proxy reaches it, streams the same
// chunks as server-sent events: the first while the predictor waits for
// the test to have read it. (queue-proxy itself cannot run here; it
// passes a streamed response through, and the Knative Service sets its
// response timeouts: packager/knative.)
func TestEndToEndStreamedAsKnativeRunsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a function binary")
	}
	url := startHTTP(t, functionBinary(t), "")
	gate := filepath.Join(t.TempDir(), "gate")
	req, _ := http.NewRequest(http.MethodPost, url+"/predict", strings.NewReader(fmt.Sprintf(`{"op": "stream", "n": 3, "gate": %q}`, gate)))
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	var first strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("before the first event ended: %v", err)
		}
		first.WriteString(line)
		if line == "\n" {
			break
		}
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if first.String() != "event: output\ndata: chunk 0\ndata: \n\n" || !strings.HasSuffix(string(rest), "event: done\ndata: {\"status\":\"succeeded\"}\n\n") {
		t.Errorf("first event %q, then %q", first.String(), rest)
	}
}
