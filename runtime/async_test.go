package runtime

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/adapters/lambda"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/webhook"
	"github.com/cortexfn/cortex/runtime/webhookguard"
)

// model is a predictor that counts its runs and, while gate is open (not
// nil), waits for it to close or for its context to end. It echoes its
// body as {"echo": body}; a body "png" answers image bytes, "fail" a 422.
type model struct {
	runs    atomic.Int64
	gate    atomic.Pointer[chan struct{}]
	started chan struct{} // receives one value per run, when it can
}

// hold makes the next predictions wait until the returned func is called.
func (m *model) hold() func() {
	gate := make(chan struct{})
	m.gate.Store(&gate)
	return func() { close(gate); m.gate.Store(nil) }
}

func (m *model) Predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	m.runs.Add(1)
	select {
	case m.started <- struct{}{}:
	default:
	}
	if gate := m.gate.Load(); gate != nil {
		select {
		case <-*gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	switch string(req.Body) {
	case "png":
		return functions.Bytes(200, "image/png", []byte{0x89, 'P', 'N', 'G'}), nil
	case "fail":
		return nil, functions.Errorf(http.StatusUnprocessableEntity, "cannot predict %q", req.Body)
	}
	return functions.JSON(200, map[string]string{"echo": string(req.Body)})
}

func asyncRuntime(t *testing.T, m *model, cfg Config) (*Runtime, *httptest.Server) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "echo"
	}
	rt, err := New(m, cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(srv.Close)
	return rt, srv
}

func do(t *testing.T, method, u, body string, header map[string]string) (*http.Response, adapters.Prediction, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var p adapters.Prediction
	_ = json.Unmarshal(b, &p)
	return resp, p, b
}

var respondAsync = map[string]string{"Prefer": "respond-async"}

// poll GETs the prediction until it has finished.
func poll(t *testing.T, base, id string) adapters.Prediction {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		resp, p, b := do(t, "GET", base+adapters.PredictionPath(id), "", nil)
		if resp.StatusCode != 200 && resp.StatusCode != 202 {
			t.Fatalf("GET %s: %d %s", id, resp.StatusCode, b)
		}
		if p.Done() {
			return p
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("prediction %s did not finish", id)
	return adapters.Prediction{}
}

// TestAsyncRoutes: every prediction route answers Prefer: respond-async
// with 202, Location and the resource; GET shows it processing while the
// predictor runs and its answer once done.
func TestAsyncRoutes(t *testing.T) {
	m := &model{started: make(chan struct{}, 1)}
	_, srv := asyncRuntime(t, m, Config{})
	for _, tc := range []struct{ name, path, prefer string }{
		{"own route", "/predict", "respond-async"},
		{"root", "/", "respond-async"},
		{"OIP", "/v2/models/echo/infer", "respond-async, wait=0"},
		{"KServe V1", "/v1/models/echo:predict", `foo="a, b", RESPOND-ASYNC;x=1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := m.hold()
			resp, p, b := do(t, "POST", srv.URL+tc.path, `{"x":1}`, map[string]string{"Prefer": tc.prefer})
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("status %d, want 202: %s", resp.StatusCode, b)
			}
			if got, want := resp.Header.Get("Location"), "/predictions/"+p.ID; got != want || len(p.ID) != 32 {
				t.Errorf("Location %q, id %q; want %q and a 32-character id", got, p.ID, want)
			}
			if got := resp.Header.Get("Preference-Applied"); got != "respond-async" {
				t.Errorf("Preference-Applied %q, want respond-async", got)
			}
			if p.Status != adapters.StatusStarting && p.Status != adapters.StatusProcessing || p.CreatedAt.IsZero() || p.URLs.Cancel != "/predictions/"+p.ID+"/cancel" {
				t.Errorf("resource %s, want starting (or processing) with created_at and urls", b)
			}
			<-m.started
			resp, got, b := do(t, "GET", srv.URL+p.URLs.Get, "", nil)
			if resp.StatusCode != 202 || got.Status != adapters.StatusProcessing || got.StartedAt.IsZero() {
				t.Errorf("GET while running: %d %s, want 202 processing with started_at", resp.StatusCode, b)
			}
			release()
			done := poll(t, srv.URL, p.ID)
			if done.Status != adapters.StatusSucceeded || done.StatusCode != 200 || string(done.Output) != `{"echo":"{\"x\":1}"}` || done.CompletedAt.IsZero() {
				t.Errorf("finished: %+v, want succeeded with the echo as JSON", done)
			}
		})
	}
	t.Run("binary output and a failure", func(t *testing.T) {
		_, p, _ := do(t, "POST", srv.URL+"/predict", "png", respondAsync)
		done := poll(t, srv.URL, p.ID)
		raw, _ := base64.StdEncoding.DecodeString(strings.Trim(string(done.Output), `"`))
		if done.OutputEncoding != "base64" || done.ContentType != "image/png" || !bytes.Equal(raw, []byte{0x89, 'P', 'N', 'G'}) {
			t.Errorf("binary output: %+v, want the bytes in base64 with their content type", done)
		}
		_, p, _ = do(t, "POST", srv.URL+"/predict", "fail", respondAsync)
		done = poll(t, srv.URL, p.ID)
		if done.Status != adapters.StatusFailed || done.StatusCode != 422 || !strings.Contains(done.Error, `cannot predict "fail"`) {
			t.Errorf("failure: %+v, want failed, 422 and the error", done)
		}
	})
	t.Run("wait preference", func(t *testing.T) {
		resp, p, b := do(t, "POST", srv.URL+"/predict", `"quick"`, map[string]string{"Prefer": "respond-async, wait=5"})
		if resp.StatusCode != 200 || p.Status != adapters.StatusSucceeded {
			t.Errorf("a prediction done within wait: %d %s, want 200 succeeded", resp.StatusCode, b)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		for _, path := range []string{"/predictions/nope", "/predictions/nope/cancel"} {
			method := map[bool]string{true: "POST", false: "GET"}[strings.HasSuffix(path, "cancel")]
			if resp, _, b := do(t, method, srv.URL+path, "", nil); resp.StatusCode != 404 || !strings.Contains(string(b), "never made here") {
				t.Errorf("%s %s: %d %s, want 404", method, path, resp.StatusCode, b)
			}
		}
		if resp, _, _ := do(t, "DELETE", srv.URL+"/predictions/nope", "", nil); resp.StatusCode != 405 {
			t.Errorf("DELETE: %d, want 405", resp.StatusCode)
		}
	})
	t.Run("unknown model", func(t *testing.T) {
		if resp, _, b := do(t, "POST", srv.URL+"/v2/models/other/infer", `{}`, respondAsync); resp.StatusCode != 404 {
			t.Errorf("async to a model not served: %d %s, want 404 at submission", resp.StatusCode, b)
		}
	})
}

// TestAsyncCancel: cancelling ends the prediction's context and marks it
// canceled; again, the same; a finished one stays as it is.
func TestAsyncCancel(t *testing.T) {
	m := &model{started: make(chan struct{}, 1)}
	_, srv := asyncRuntime(t, m, Config{})
	release := m.hold()
	_, p, _ := do(t, "POST", srv.URL+"/predict", `1`, respondAsync)
	<-m.started
	for range 2 {
		resp, got, b := do(t, "POST", srv.URL+p.URLs.Cancel, "", nil)
		if resp.StatusCode != 200 || got.Status != adapters.StatusCanceled || got.CompletedAt.IsZero() {
			t.Errorf("cancel: %d %s, want 200 canceled", resp.StatusCode, b)
		}
	}
	if got := poll(t, srv.URL, p.ID); got.Status != adapters.StatusCanceled {
		t.Errorf("after cancel: %s, want canceled", got.Status)
	}
	release()
	_, p, _ = do(t, "POST", srv.URL+"/predict", `2`, respondAsync)
	poll(t, srv.URL, p.ID)
	if _, got, b := do(t, "POST", srv.URL+p.URLs.Cancel, "", nil); got.Status != adapters.StatusSucceeded {
		t.Errorf("cancel of a finished one: %s, want it left succeeded", b)
	}
}

// TestAsyncPut: PUT /predictions/{id} makes the prediction under the
// caller's id; a repeat never runs the model again; another body is 409.
func TestAsyncPut(t *testing.T) {
	m := &model{}
	_, srv := asyncRuntime(t, m, Config{})
	release := m.hold()
	u := srv.URL + "/predictions/job-42.a_b"
	resp, p, b := do(t, "PUT", u, `{"n":1}`, respondAsync)
	if resp.StatusCode != 202 || p.ID != "job-42.a_b" {
		t.Fatalf("PUT: %d %s, want 202 with the caller's id", resp.StatusCode, b)
	}
	for range 3 {
		if resp, p, b := do(t, "PUT", u, `{"n":1}`, respondAsync); resp.StatusCode != 202 || p.ID != "job-42.a_b" {
			t.Errorf("repeated PUT: %d %s, want 202 and the same prediction", resp.StatusCode, b)
		}
	}
	if resp, _, b := do(t, "PUT", u, `{"n":2}`, respondAsync); resp.StatusCode != 409 {
		t.Errorf("PUT with another body: %d %s, want 409", resp.StatusCode, b)
	}
	release()
	poll(t, srv.URL, "job-42.a_b")
	if resp, p, _ := do(t, "PUT", u, `{"n":1}`, nil); resp.StatusCode != 200 || p.Status != adapters.StatusSucceeded {
		t.Errorf("PUT after it finished: %d %s, want 200 succeeded", resp.StatusCode, p.Status)
	}
	if n := m.runs.Load(); n != 1 {
		t.Errorf("the model ran %d times, want once", n)
	}
	// Without Prefer, PUT answers when the prediction is done.
	if resp, p, b := do(t, "PUT", srv.URL+"/predictions/sync-1", `"s"`, nil); resp.StatusCode != 200 || p.Status != adapters.StatusSucceeded {
		t.Errorf("PUT without Prefer: %d %s, want 200 succeeded", resp.StatusCode, b)
	}
	for _, id := range []string{"..", "a%20b", strings.Repeat("x", 129)} {
		if resp, _, b := do(t, "PUT", srv.URL+"/predictions/"+id, `1`, respondAsync); resp.StatusCode != 400 {
			t.Errorf("PUT id %q: %d %s, want 400", id, resp.StatusCode, b)
		}
	}
}

// TestAsyncExpiry: a result is deleted async.keep after it finished, and
// the oldest finished one makes room beyond async.max_predictions.
func TestAsyncExpiry(t *testing.T) {
	_, srv := asyncRuntime(t, &model{}, Config{Async: AsyncConfig{Keep: Duration(150 * time.Millisecond), MaxPredictions: 2}})
	_, p, _ := do(t, "POST", srv.URL+"/predict", `1`, respondAsync)
	poll(t, srv.URL, p.ID)
	time.Sleep(200 * time.Millisecond)
	if resp, _, b := do(t, "GET", srv.URL+p.URLs.Get, "", nil); resp.StatusCode != 404 {
		t.Errorf("GET after keep: %d %s, want 404", resp.StatusCode, b)
	}
	var ids []string
	for i := range 3 {
		_, p, _ := do(t, "POST", srv.URL+"/predict", `1`, map[string]string{"Prefer": "respond-async, wait=5"})
		if p.Status != adapters.StatusSucceeded {
			t.Fatalf("prediction %d: %s", i, p.Status)
		}
		ids = append(ids, p.ID)
	}
	for i, want := range []int{404, 200, 200} {
		if resp, _, _ := do(t, "GET", srv.URL+"/predictions/"+ids[i], "", nil); resp.StatusCode != want {
			t.Errorf("prediction %d of 3 with max_predictions 2: %d, want %d", i, resp.StatusCode, want)
		}
	}
}

// TestAsyncDrain: a drain waits for a background prediction that runs.
func TestAsyncDrain(t *testing.T) {
	m := &model{started: make(chan struct{}, 1)}
	rt, srv := asyncRuntime(t, m, Config{})
	release := m.hold()
	_, p, _ := do(t, "POST", srv.URL+"/predict", `1`, respondAsync)
	<-m.started
	done := make(chan error, 1)
	go func() { done <- rt.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a background prediction running", err)
	case <-time.After(100 * time.Millisecond):
	}
	if resp, _, _ := do(t, "POST", srv.URL+"/predict", `2`, respondAsync); resp.StatusCode != 503 {
		t.Errorf("submission while draining: %d, want 503", resp.StatusCode)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, _ := rt.Prediction(context.Background(), p.ID); got.Status != adapters.StatusSucceeded {
		t.Errorf("after the drain: %s, want succeeded", got.Status)
	}
}

const testWebhookSecretEnv = "CORTEX_ASYNC_TEST_WEBHOOK_SECRET"

// receiver is a webhook receiver that fails its first failFirst
// deliveries with 500.
type receiver struct {
	mu        sync.Mutex
	failFirst int
	attempts  int
	got       []delivery
}

type delivery struct {
	header http.Header
	body   []byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts++
	rc.got = append(rc.got, delivery{r.Header.Clone(), b})
	if rc.attempts <= rc.failFirst {
		http.Error(w, "not now", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

func hostOf(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestAsyncWebhook: the completed event reaches a receiver that fails
// twice on the third attempt, signed so that webhook.Verify takes it and
// refuses it tampered; start and output events come first when asked.
func TestAsyncWebhook(t *testing.T) {
	secret := webhook.NewSecret()
	t.Setenv(testWebhookSecretEnv, secret)
	rc := &receiver{failFirst: 2}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	cfg := Config{Async: AsyncConfig{WebhookSecretEnv: testWebhookSecretEnv, WebhookAllow: []string{hostOf(t, hook.URL)}, WebhookBackoff: Duration(10 * time.Millisecond)}}
	rt, srv := asyncRuntime(t, &model{}, cfg)

	resp, p, b := do(t, "POST", srv.URL+"/predict?webhook="+url.QueryEscape(hook.URL+"/hook?token=abc"), `{"w":1}`, respondAsync)
	if resp.StatusCode != 202 {
		t.Fatalf("submit: %d %s", resp.StatusCode, b)
	}
	poll(t, srv.URL, p.ID)
	waitFor(t, func() bool { return len(rc.deliveries()) >= 3 })
	time.Sleep(50 * time.Millisecond) // no fourth
	got := rc.deliveries()
	if len(got) != 3 {
		t.Fatalf("%d deliveries, want 3: two failed, then delivered", len(got))
	}
	last := got[2]
	if err := webhook.Verify(secret, last.header, last.body, 0); err != nil {
		t.Errorf("Verify of the delivery: %v", err)
	}
	if id := last.header.Get(webhook.HeaderID); id == "" || id != got[0].header.Get(webhook.HeaderID) {
		t.Errorf("webhook-id %q, want one id on every attempt (first %q)", id, got[0].header.Get(webhook.HeaderID))
	}
	var res adapters.Prediction
	if err := json.Unmarshal(last.body, &res); err != nil || res.ID != p.ID || res.Status != adapters.StatusSucceeded || string(res.Output) != `{"echo":"{\"w\":1}"}` {
		t.Errorf("delivered %s, want the succeeded prediction with its output", last.body)
	}
	tampered := bytes.Replace(last.body, []byte("succeeded"), []byte("failed\x20\x20\x20"), 1)
	if err := webhook.Verify(secret, last.header, tampered, 0); err == nil {
		t.Error("Verify took a tampered body")
	}

	t.Run("events", func(t *testing.T) {
		rc2 := &receiver{}
		hook2 := httptest.NewServer(rc2)
		defer hook2.Close()
		g, err := webhookguard.New([]string{hostOf(t, hook.URL), hostOf(t, hook2.URL)})
		if err != nil {
			t.Fatal(err)
		}
		rt.async.guard, rt.async.client = g, g.Client()
		_, p, _ := do(t, "POST", srv.URL+"/predict", `2`, map[string]string{"Prefer": "respond-async", "Cortex-Webhook": hook2.URL,
			"Cortex-Webhook-Events": "start, output,completed"})
		waitFor(t, func() bool { return len(rc2.deliveries()) >= 3 })
		var statuses []string
		for _, d := range rc2.deliveries() {
			var res adapters.Prediction
			_ = json.Unmarshal(d.body, &res)
			statuses = append(statuses, res.Status)
			if res.ID != p.ID {
				t.Errorf("delivery of %q, want %q", res.ID, p.ID)
			}
		}
		if strings.Join(statuses, ",") != "processing,succeeded,succeeded" {
			t.Errorf("events' statuses %v, want processing (start), succeeded (output), succeeded (completed)", statuses)
		}
		if resp, _, b := do(t, "POST", srv.URL+"/predict", `3`, map[string]string{"Prefer": "respond-async", "Cortex-Webhook": hook2.URL, "Cortex-Webhook-Events": "done"}); resp.StatusCode != 400 {
			t.Errorf("unknown event: %d %s, want 400", resp.StatusCode, b)
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("timed out waiting")
}

// TestAsyncWebhookWithoutSecret: a function with no signing secret
// refuses a webhook with 422 rather than send it unsigned.
func TestAsyncWebhookWithoutSecret(t *testing.T) {
	_, srv := asyncRuntime(t, &model{}, Config{})
	resp, _, b := do(t, "POST", srv.URL+"/predict", `1`, map[string]string{"Prefer": "respond-async", "Cortex-Webhook": "https://hooks.example.com/x"})
	if resp.StatusCode != 422 || !strings.Contains(string(b), "async.webhook_secret_env") {
		t.Errorf("%d %s, want 422 naming async.webhook_secret_env", resp.StatusCode, b)
	}
}

// TestAsyncLambda: on Lambda a Prefer: respond-async is answered when
// done, without Preference-Applied (a function URL's invocation cannot
// leave work running), and the /predictions routes answer 501 rather
// than run the model as the function's own route.
func TestAsyncLambda(t *testing.T) {
	t.Setenv(lambda.EnvRuntimeAPI, "127.0.0.1:9")
	m := &model{}
	rt, err := New(m, Config{Name: "echo"}, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h, err := lambda.Handler(rt, rt.lambdaOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	invoke := func(method, path, body string) events.LambdaFunctionURLResponse {
		ev := events.LambdaFunctionURLRequest{
			Version: "2.0", RawPath: path, Body: body,
			Headers: map[string]string{"content-type": "application/json", "prefer": "respond-async"},
			RequestContext: events.LambdaFunctionURLRequestContext{RequestID: "req-1", DomainName: "abc.lambda-url.us-east-1.on.aws",
				HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: method, Path: path}},
		}
		payload, _ := json.Marshal(ev)
		out, err := h(context.Background(), payload)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(out)
		var resp events.LambdaFunctionURLResponse
		if err := json.Unmarshal(b, &resp); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		return resp
	}
	resp := invoke("POST", "/predict", `"x"`)
	if resp.StatusCode != 200 || resp.Body != `{"echo":"\"x\""}` || resp.Headers["Preference-Applied"] != "" {
		t.Errorf("async-style invoke: %d %v %s, want the answer itself, without Preference-Applied", resp.StatusCode, resp.Headers, resp.Body)
	}
	for _, c := range []struct{ method, path string }{{"GET", "/predictions/abc"}, {"PUT", "/predictions/abc"}, {"POST", "/predictions/abc/cancel"}} {
		resp := invoke(c.method, c.path, `"y"`)
		if resp.StatusCode != 501 || !strings.Contains(resp.Body, "not served on AWS Lambda") {
			t.Errorf("%s %s: %d %s, want 501 saying why", c.method, c.path, resp.StatusCode, resp.Body)
		}
	}
	if n := m.runs.Load(); n != 1 {
		t.Errorf("the model ran %d times, want once (the /predictions routes are no predictions)", n)
	}
}
