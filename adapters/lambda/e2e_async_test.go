package lambda_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/internal/testutil"
)

// TestEndToEndAsyncInvoke: Lambda's asynchronous invoke (InvocationType
// Event, to NAME:live, whose event-invoke configuration cortex deploy
// sets from targets.lambda.async) queues the event and hands it to the
// runtime exactly as a direct invoke: the same payload on the same
// Runtime API, only no caller waits. The function must answer it as it
// answers a direct invoke: a result posted as the response (what an
// on_success destination records as responsePayload), and a failed
// prediction posted as a function error, which is what makes Lambda retry
// (max_retries) and then send the event to on_failure. An event from an
// asynchronous source (EventBridge here) is a direct payload too: the
// predictor gets it as the body.
func TestEndToEndAsyncInvoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a function binary")
	}
	rt := testutil.NewLambdaAPI(t, testARN+":live")
	config := filepath.Join(t.TempDir(), "cortex.json")
	if err := os.WriteFile(config, []byte(`{"name":"fn"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	startFunction(t, rt, "CORTEX_CONFIG="+config)

	const payload = `{"op": "echo", "x": [1, 2]}`
	for _, id := range []string{"direct-1", "async-1"} {
		_, res := rt.Invoke(t, id, []byte(payload), time.Minute)
		if res.Kind != testutil.LambdaResponse {
			t.Fatalf("%s: got a %s (%s), want a response", id, res.Kind, res.Body)
		}
		var got map[string]any
		mustUnmarshal(t, res.Body, &got)
		attrs, _ := got["attributes"].(map[string]any)
		if got["body"] != payload || got["path"] != "/predict" || got["method"] != "POST" || got["id"] != id ||
			attrs["lambda-function-arn"] != testARN+":live" {
			t.Errorf("%s: got %s, want the prediction of the payload under its own id", id, res.Body)
		}
	}

	// A failed prediction is a function error, on each attempt Lambda
	// makes: the first and its retry.
	for _, id := range []string{"async-fail-1", "async-fail-1-retry"} {
		_, res := rt.Invoke(t, id, []byte(`{"op": "fail"}`), time.Minute)
		if typ, msg := lambdaError(t, res); typ != "UnprocessableEntity" || !strings.Contains(msg, "cannot classify this input") {
			t.Errorf("%s: got %s %q, want the predictor's 422 as a function error", id, typ, msg)
		}
	}

	// An EventBridge event, as an event bus delivers it asynchronously.
	ev := `{"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":"review","source":"shop","account":"123456789012",` +
		`"time":"2026-01-01T00:00:00Z","region":"eu-west-1","resources":[],"detail":{"text":"great"}}`
	_, res := rt.Invoke(t, "async-eventbridge", []byte(ev), time.Minute)
	if res.Kind != testutil.LambdaResponse {
		t.Fatalf("EventBridge event: got a %s (%s), want a response", res.Kind, res.Body)
	}
	var got map[string]any
	mustUnmarshal(t, res.Body, &got)
	var body map[string]any
	if err := json.Unmarshal([]byte(got["body"].(string)), &body); err != nil || body["detail-type"] != "review" {
		t.Errorf("EventBridge event: the predictor got body %v (%v), want the event", got["body"], err)
	}
}
