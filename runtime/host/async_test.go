package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/functions/webhook"
	"github.com/cortexfn/cortex/runtime/host"
)

// hookReceiver is a webhook receiver that fails its first failFirst
// deliveries, verifies every one with the SDK's webhook.Verify, and keeps
// the verified ones.
type hookReceiver struct {
	secret    string
	failFirst int

	mu       sync.Mutex
	attempts int
	bad      []string                       // deliveries that did not verify
	got      []hookDelivery                 // verified, in order
	byID     map[string]adapters.Prediction // the latest verified resource of each prediction
}

type hookDelivery struct {
	header http.Header
	body   []byte
	res    adapters.Prediction
}

func (rc *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts++
	if rc.attempts <= rc.failFirst {
		http.Error(w, "not now", http.StatusInternalServerError)
		return
	}
	if err := webhook.Verify(rc.secret, r.Header, b, webhook.DefaultTolerance); err != nil {
		rc.bad = append(rc.bad, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var res adapters.Prediction
	_ = json.Unmarshal(b, &res)
	rc.got = append(rc.got, hookDelivery{r.Header.Clone(), b, res})
	if rc.byID == nil {
		rc.byID = map[string]adapters.Prediction{}
	}
	rc.byID[res.ID] = res
	w.WriteHeader(http.StatusNoContent)
}

func (rc *hookReceiver) snapshot() (attempts int, got []hookDelivery, bad []string, byID map[string]adapters.Prediction) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	m := map[string]adapters.Prediction{}
	for k, v := range rc.byID {
		m[k] = v
	}
	return rc.attempts, append([]hookDelivery(nil), rc.got...), append([]string(nil), rc.bad...), m
}

// asyncCall makes a request to the front and decodes a prediction.
func asyncCall(t *testing.T, method, url, body string, hdr map[string]string) (*http.Response, adapters.Prediction, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p adapters.Prediction
	_ = json.Unmarshal(b, &p)
	return resp, p, b
}

// runs counts the lines of the function's run log that are body.
func runs(t *testing.T, log, body string) int {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for l := range strings.SplitSeq(string(data), "\n") {
		if l == body {
			n++
		}
	}
	return n
}

func asyncFunction(name, runLog, secret string, set host.AsyncSettings) host.Function {
	fn := function(name, host.Autoscaling{}, "FN_RUN_LOG="+runLog)
	set.WebhookSecret = secret
	set.WebhookAllow = []string{"127.0.0.1"}
	fn.Async = set
	return fn
}

// TestAsyncThroughTheFront: cortex serve's host owns a background
// prediction asked for on its front: 202 with Location, GET until it is
// done, a webhook that fails twice delivered on the third attempt and
// verified, a cancel, an idempotent PUT (the model runs once, across a
// restart of the host on the same state file too), a refused webhook URL,
// and a result deleted after async.keep.
func TestAsyncThroughTheFront(t *testing.T) {
	dir := t.TempDir()
	state, runLog := filepath.Join(dir, "serve.db"), filepath.Join(dir, "runs")
	secret := webhook.NewSecret()
	rc := &hookReceiver{secret: secret, failFirst: 2}
	hooks := httptest.NewServer(rc)
	defer hooks.Close()
	fns := func() []host.Function {
		return []host.Function{
			asyncFunction("fn", runLog, secret, host.AsyncSettings{WebhookBackoff: 20 * time.Millisecond}),
			asyncFunction("brief", runLog, secret, host.AsyncSettings{Keep: 300 * time.Millisecond}),
		}
	}
	e := start(t, fns(), host.WithStateFile(state), host.WithSweepEvery(50*time.Millisecond))

	resp, p, b := asyncCall(t, "POST", e.srv.URL+"/fn/predict?sleep=200ms", "hello", map[string]string{
		"Prefer": "respond-async", "Cortex-Webhook": hooks.URL + "/hook"})
	if resp.StatusCode != 202 || p.ID == "" || resp.Header.Get("Location") != "/fn/predictions/"+p.ID ||
		resp.Header.Get("Preference-Applied") != "respond-async" || p.URLs.Cancel != "/fn/predictions/"+p.ID+"/cancel" {
		t.Fatalf("submit: %d %v %s, want 202 with Location /fn/predictions/{id}", resp.StatusCode, resp.Header, b)
	}
	var done adapters.Prediction
	eventually(t, 20*time.Second, "the prediction finishes", func() bool {
		resp, got, _ := asyncCall(t, "GET", e.srv.URL+resp.Header.Get("Location"), "", nil)
		done = got
		return resp.StatusCode == 200
	})
	var out struct{ Body string }
	if done.Status != adapters.StatusSucceeded || json.Unmarshal(done.Output, &out) != nil || out.Body != "hello" || done.StatusCode != 200 {
		t.Fatalf("finished prediction %+v, want succeeded with the echo of hello", done)
	}
	eventually(t, 10*time.Second, "the webhook is delivered", func() bool {
		_, got, _, _ := rc.snapshot()
		return len(got) == 1
	})
	attempts, got, bad, _ := rc.snapshot()
	if attempts != 3 || len(bad) != 0 || got[0].res.ID != p.ID || got[0].res.Status != adapters.StatusSucceeded {
		t.Errorf("webhook: %d attempts, %d verified (%v), want 3 attempts (2 refused by the receiver) and the succeeded prediction verified", attempts, len(got), bad)
	}
	tampered := bytes.Replace(got[0].body, []byte("hello"), []byte("HELLO"), 1)
	if err := webhook.Verify(secret, got[0].header, tampered, webhook.DefaultTolerance); err == nil {
		t.Error("Verify took a tampered body")
	}

	t.Run("cancel", func(t *testing.T) {
		_, p, _ := asyncCall(t, "POST", e.srv.URL+"/fn/predict?sleep=20s", "long", map[string]string{"Prefer": "respond-async"})
		eventually(t, 10*time.Second, "the prediction reaches a process", func() bool { return runs(t, runLog, "long") == 1 })
		resp, c, b := asyncCall(t, "POST", e.srv.URL+"/fn/predictions/"+p.ID+"/cancel", "", nil)
		if resp.StatusCode != 200 || c.Status != adapters.StatusCanceled {
			t.Fatalf("cancel: %d %s, want 200 canceled", resp.StatusCode, b)
		}
		eventually(t, 5*time.Second, "the cancelled request leaves the process", func() bool { return e.status(t, "fn").InFlight == 0 })
		if _, g, _ := asyncCall(t, "GET", e.srv.URL+"/fn/predictions/"+p.ID, "", nil); g.Status != adapters.StatusCanceled {
			t.Errorf("after cancel: %s, want canceled", g.Status)
		}
	})

	put := func(t *testing.T, e *env, body string) (*http.Response, adapters.Prediction) {
		resp, p, _ := asyncCall(t, "PUT", e.srv.URL+"/fn/predictions/my-id.1", body, nil)
		return resp, p
	}
	t.Run("put", func(t *testing.T) {
		for i := range 3 {
			resp, p := put(t, e, "once")
			if resp.StatusCode != 200 || p.ID != "my-id.1" || p.Status != adapters.StatusSucceeded {
				t.Fatalf("PUT %d: %d %+v, want 200 succeeded (without respond-async it waits)", i, resp.StatusCode, p)
			}
		}
		if n := runs(t, runLog, "once"); n != 1 {
			t.Errorf("the model ran %d times for three PUTs of one id, want 1", n)
		}
		if resp, _ := put(t, e, "other"); resp.StatusCode != 409 {
			t.Errorf("PUT with another body: %d, want 409", resp.StatusCode)
		}
		if resp, _, _ := asyncCall(t, "PUT", e.srv.URL+"/fn/predictions/..", "x", nil); resp.StatusCode != 400 && resp.StatusCode != 404 {
			t.Errorf("PUT of a bad id: %d, want 400", resp.StatusCode)
		}
	})

	t.Run("ssrf", func(t *testing.T) {
		for _, u := range []string{"http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/x", "http://localhost:1/x"} {
			resp, _, b := asyncCall(t, "POST", e.srv.URL+"/fn/predict", "ssrf", map[string]string{"Prefer": "respond-async", "Cortex-Webhook": u})
			if resp.StatusCode != 422 {
				t.Errorf("webhook %s: %d %s, want 422", u, resp.StatusCode, b)
			}
		}
		if n := runs(t, runLog, "ssrf"); n != 0 {
			t.Errorf("refused submissions ran the model %d times", n)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		resp, p, _ := asyncCall(t, "POST", e.srv.URL+"/brief/predict", "brief", map[string]string{"Prefer": "respond-async, wait=10"})
		if resp.StatusCode != 200 || p.Status != adapters.StatusSucceeded {
			t.Fatalf("wait=10: %d %+v, want 200 succeeded", resp.StatusCode, p)
		}
		eventually(t, 5*time.Second, "the result is deleted after async.keep", func() bool {
			resp, _, _ := asyncCall(t, "GET", e.srv.URL+"/brief/predictions/"+p.ID, "", nil)
			return resp.StatusCode == 404
		})
	})

	// The host stops; another on the same file has the predictions, and
	// a repeated PUT still runs nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	e2 := start(t, fns(), host.WithStateFile(state))
	if resp, p := put(t, e2, "once"); resp.StatusCode != 200 || p.Status != adapters.StatusSucceeded {
		t.Errorf("PUT after a restart: %d %+v, want the finished prediction", resp.StatusCode, p)
	}
	if n := runs(t, runLog, "once"); n != 1 {
		t.Errorf("after a restart the model ran %d times for one id, want 1", n)
	}
	if resp, g, _ := asyncCall(t, "GET", e2.srv.URL+"/fn/predictions/"+p.ID, "", nil); resp.StatusCode != 200 || g.Status != adapters.StatusSucceeded {
		t.Errorf("GET after a restart: %d %+v", resp.StatusCode, g)
	}
	if _, err := host.New(fns(), host.WithStateFile(state)); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second host on the same state file: %v, want refused as in use", err)
	}
}

// The crash test's function and scale: 8 predictions handed to processes
// at once (the most that may be running when the host is killed).
const (
	crashPredictions = 200
	crashConcurrency = 8
)

// TestAsyncCrashChild is the host of TestAsyncSurvivesSIGKILL, run in a
// process of its own (the test binary again) so that it can be killed.
func TestAsyncCrashChild(t *testing.T) {
	state := os.Getenv("ASYNC_CHILD_STATE")
	if state == "" {
		t.Skip("run by TestAsyncSurvivesSIGKILL")
	}
	fn := function("fn", host.Autoscaling{TargetConcurrency: 4, MaxScale: 2}, "FN_RUN_LOG="+os.Getenv("ASYNC_CHILD_RUNS"))
	fn.Async = host.AsyncSettings{WebhookSecret: os.Getenv("ASYNC_CHILD_SECRET"), WebhookAllow: []string{"127.0.0.1"},
		WebhookBackoff: 50 * time.Millisecond, Concurrency: crashConcurrency}
	h, err := host.New([]host.Function{fn}, host.WithStateFile(state),
		host.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv("ASYNC_CHILD_ADDR"), []byte(ln.Addr().String()), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = http.Serve(ln, h) // until killed
}

// TestAsyncSurvivesSIGKILL: 200 background predictions accepted, the host
// killed with SIGKILL midway and started again on its state file: every
// prediction reaches a final state and every webhook is delivered
// (verified with webhook.Verify); the model runs each prediction at
// least once and at most once more for those a process had at the kill,
// and never runs again one that was recorded finished.
func TestAsyncSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a host")
	}
	dir := t.TempDir()
	state, runLog, addrFile := filepath.Join(dir, "serve.db"), filepath.Join(dir, "runs"), filepath.Join(dir, "addr")
	secret := webhook.NewSecret()
	rc := &hookReceiver{secret: secret}
	hooks := httptest.NewServer(rc)
	defer hooks.Close()

	startHost := func() (*exec.Cmd, string) {
		os.Remove(addrFile)
		cmd := exec.Command(os.Args[0], "-test.run=^TestAsyncCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), "ASYNC_CHILD_STATE="+state, "ASYNC_CHILD_RUNS="+runLog,
			"ASYNC_CHILD_ADDR="+addrFile, "ASYNC_CHILD_SECRET="+secret)
		logs := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("host %d's log:\n%s", cmd.Process.Pid, logs.String())
			}
		})
		var addr []byte
		eventually(t, 30*time.Second, "the host listens", func() bool {
			addr, _ = os.ReadFile(addrFile)
			return len(addr) > 0
		})
		return cmd, "http://" + string(addr)
	}

	began := time.Now()
	cmd, base := startHost()
	ids := make([]string, crashPredictions)
	for i := range crashPredictions {
		resp, p, b := asyncCall(t, "POST", base+"/fn/predict?sleep=100ms", "p-"+strconv.Itoa(i), map[string]string{
			"Prefer": "respond-async", "Cortex-Webhook": hooks.URL + "/hook"})
		if resp.StatusCode != 202 {
			t.Fatalf("submission %d: %d %s", i, resp.StatusCode, b)
		}
		ids[i] = p.ID
	}
	eventually(t, 30*time.Second, "a third of the webhooks arrive", func() bool {
		_, got, _, _ := rc.snapshot()
		return len(got) >= crashPredictions/3
	})
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	_, before, _, _ := rc.snapshot()
	deliveredBefore := map[string]bool{}
	for _, d := range before {
		deliveredBefore[string(bytes.TrimSpace(d.res.Output))] = true
	}
	logBefore, _ := os.ReadFile(runLog)
	t.Logf("killed the host after %s: %d webhooks delivered, %d model runs", time.Since(began).Round(time.Millisecond), len(before), bytes.Count(logBefore, []byte("\n")))

	_, base = startHost()
	eventually(t, 40*time.Second, "every webhook is delivered after the restart", func() bool {
		_, _, _, byID := rc.snapshot()
		return len(byID) == crashPredictions
	})
	_, got, bad, byID := rc.snapshot()
	if len(bad) != 0 {
		t.Errorf("%d deliveries did not verify: %v", len(bad), bad[:min(len(bad), 3)])
	}
	for i, id := range ids {
		res, ok := byID[id]
		if !ok || res.Status != adapters.StatusSucceeded {
			t.Errorf("prediction %d (%s): webhook %v %q, want delivered succeeded", i, id, ok, res.Status)
		}
		resp, p, b := asyncCall(t, "GET", base+"/fn/predictions/"+id, "", nil)
		if resp.StatusCode != 200 || !p.Done() {
			t.Errorf("GET prediction %d: %d %s, want finished", i, resp.StatusCode, b)
		}
	}

	data, err := os.ReadFile(runLog)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for l := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		counts[l]++
	}
	total, twice := 0, 0
	for _, n := range counts {
		total += n
		if n > 1 {
			twice++
		}
	}
	// A run after the kill of a prediction whose webhook had arrived
	// before it (so it was recorded finished) would be a second run of a
	// finished prediction.
	after := map[string]int{}
	for l := range strings.SplitSeq(strings.TrimSpace(string(data[len(logBefore):])), "\n") {
		if l != "" {
			after[l]++
		}
	}
	for out := range deliveredBefore {
		var v struct{ Body string }
		if json.Unmarshal([]byte(out), &v) == nil && after[v.Body] > 0 {
			t.Errorf("%s was recorded finished before the kill and ran again after it", v.Body)
		}
	}
	t.Logf("%d predictions: %d model runs (%d predictions ran twice: a process had them at the kill), %d webhook deliveries verified, in %s",
		crashPredictions, total, twice, len(got), time.Since(began).Round(time.Millisecond))
	if len(counts) != crashPredictions || total > crashPredictions+crashConcurrency {
		t.Errorf("%d model runs of %d distinct predictions, want all %d run, at most %d runs (%d more than the predictions: those running at the kill)",
			total, len(counts), crashPredictions, crashPredictions+crashConcurrency, crashConcurrency)
	}
}
