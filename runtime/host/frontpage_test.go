package host_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/runtime/host"
)

// get sends a request to the front with the headers given as "Key: value"
// and returns the answer with its whole body. It follows no redirect.
func (e *env) get(t *testing.T, method, path string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp, string(b)
}

// rawStatus is one function of /-/status as a generic client reads it.
type rawStatus map[string]any

func (e *env) rawStatus(t *testing.T, name string, headers ...string) rawStatus {
	t.Helper()
	resp, body := e.get(t, http.MethodGet, host.StatusPath, headers...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /-/status: %d %s", resp.StatusCode, body)
	}
	return findRaw(t, body, name)
}

func findRaw(t *testing.T, body, name string) rawStatus {
	t.Helper()
	var all struct{ Functions []rawStatus }
	if err := json.Unmarshal([]byte(body), &all); err != nil {
		t.Fatalf("/-/status is not JSON: %v: %s", err, body)
	}
	for _, f := range all.Functions {
		if f["name"] == name {
			return f
		}
	}
	t.Fatalf("/-/status has no %q: %s", name, body)
	return nil
}

func (s rawStatus) requests() map[string]float64 {
	m := map[string]float64{}
	for k, v := range s["requests"].(map[string]any) {
		m[k] = v.(float64)
	}
	return m
}

// TestStatusCountsRequestsByStatus: /-/status counts a function's answers
// by status code (the process's 200 and 400, the host's own 503 for a
// function with no build), agrees with the host's Prometheus series, and
// keeps the fields its readers had before.
func TestStatusCountsRequestsByStatus(t *testing.T) {
	e := start(t, []host.Function{
		function("echo", host.Autoscaling{}),
		{Name: "broken", Err: errors.New("predictor.go:3: syntax error")},
	})
	for range 3 {
		if a := e.post(t, "/echo/predict", "ok"); a.status != http.StatusOK {
			t.Fatalf("request: %d %s", a.status, a.body)
		}
	}
	for range 2 {
		if a := e.post(t, "/echo/predict?sleep=never", "bad"); a.status != http.StatusBadRequest {
			t.Fatalf("bad request: %d %s, want 400", a.status, a.body)
		}
	}
	if a := e.post(t, "/broken/predict", "x"); a.status != http.StatusServiceUnavailable {
		t.Fatalf("request to a function with no build: %d %s, want 503", a.status, a.body)
	}
	echo := e.rawStatus(t, "echo")
	if got, want := echo.requests(), map[string]float64{"200": 3, "400": 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("echo's requests: %v, want %v", got, want)
	}
	if got := echo["errors"]; got != float64(2) {
		t.Errorf("echo's errors: %v, want 2 (the 400s)", got)
	}
	for _, field := range []string{"name", "state", "revision", "processes", "ready", "starting", "draining", "in_flight", "queued",
		"cold_starts", "last_cold_start_seconds", "last_cold_start_at", "start_failures", "crashes", "replaced", "scale_ups", "scale_downs"} {
		if _, ok := echo[field]; !ok {
			t.Errorf("/-/status of echo has no %q: %v", field, echo)
		}
	}
	broken := e.rawStatus(t, "broken")
	if got, want := broken.requests(), map[string]float64{"503": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("broken's requests: %v, want %v", got, want)
	}
	if broken["state"] != host.StateFailed || !strings.Contains(fmt.Sprint(broken["error"]), "syntax error") {
		t.Errorf("broken: state %v error %v, want failed with the build error", broken["state"], broken["error"])
	}

	series := e.scrape(t)
	for fn, want := range map[string]map[string]float64{"echo": echo.requests(), "broken": broken.requests()} {
		for code, n := range want {
			key := fmt.Sprintf(`cortex_host_requests_total{code=%q,function=%q}`, code, fn)
			if series[key] != fmt.Sprint(n) {
				t.Errorf("%s is %q, /-/status says %v", key, series[key], n)
			}
		}
	}

	// FetchStatus reads the new fields back, and the cold start's length.
	m := statusJSON(t, e)
	if s := m["echo"]; s.Requests[200] != 3 || s.Requests[400] != 2 || s.Errors != 2 || s.LastColdStart <= 0 || s.LastColdStartAt.IsZero() {
		t.Errorf("FetchStatus's echo: requests %v errors %d last cold start %s at %s, want 200:3 400:2, 2, both set",
			s.Requests, s.Errors, s.LastColdStart, s.LastColdStartAt)
	}
}

// TestLastColdStartKeptAtZero: the time and length of the latest cold
// start stay in the status once the function is back at zero processes,
// and move on with the next one.
func TestLastColdStartKeptAtZero(t *testing.T) {
	scale := host.Autoscaling{ScaleDownDelay: 100 * time.Millisecond, StableWindow: 100 * time.Millisecond}
	e := start(t, []host.Function{function("echo", scale, "FN_INIT_DELAY=50ms")})
	if s := e.status(t, "echo"); !s.LastColdStartAt.IsZero() || s.ColdStarts != 0 {
		t.Errorf("before any request: %d cold starts, last at %s, want none", s.ColdStarts, s.LastColdStartAt)
	}
	before := time.Now()
	if a := e.post(t, "/echo/", "one"); a.status != http.StatusOK {
		t.Fatalf("request: %d %s", a.status, a.body)
	}
	after := time.Now()
	eventually(t, 15*time.Second, "the function did not scale to zero", func() bool {
		return len(e.status(t, "echo").Processes) == 0
	})
	first := e.rawStatus(t, "echo")
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(first["last_cold_start_at"]))
	if err != nil || at.Before(before) || at.After(after) {
		t.Errorf("at zero: last_cold_start_at %v (%v), want between %s and %s", first["last_cold_start_at"], err, before, after)
	}
	if secs, _ := first["last_cold_start_seconds"].(float64); secs < 0.05 {
		t.Errorf("at zero: last_cold_start_seconds %v, want at least the 50ms init delay", first["last_cold_start_seconds"])
	}
	if first["state"] != host.StateIdle || first["cold_starts"] != float64(1) {
		t.Errorf("at zero: state %v cold starts %v, want idle and 1", first["state"], first["cold_starts"])
	}
	if a := e.post(t, "/echo/", "two"); a.status != http.StatusOK {
		t.Fatalf("second request: %d %s", a.status, a.body)
	}
	if s := e.status(t, "echo"); s.ColdStarts != 2 || !s.LastColdStartAt.After(at) {
		t.Errorf("after the next cold start: %d cold starts, last at %s, want 2 and later than %s", s.ColdStarts, s.LastColdStartAt, at)
	}
}

// TestFrontPageShell: GET / is the front page's static shell: HTML whose
// script and style are files of their own under a strict CSP, with the
// ids a browser test finds, and nothing of the functions' in it.
func TestFrontPageShell(t *testing.T) {
	// Names that no shell file could hold by chance.
	e := start(t, []host.Function{
		function("zebra-alpha", host.Autoscaling{}),
		{Name: "quokka-beta", Err: errors.New("<script>alert(1)</script>")},
	})
	total := 0
	for _, tt := range []struct{ path, ctype string }{
		{"/", "text/html"},
		{"/-/front.js", "text/javascript"},
		{"/-/front.css", "text/css"},
	} {
		resp, body := e.get(t, http.MethodGet, tt.path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) {
			t.Errorf("GET %s: %d %s, want 200 %s", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.ctype)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q has no %q", tt.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: CSP %q allows unsafe sources", tt.path, csp)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", tt.path, got)
		}
		for _, name := range []string{"zebra", "quokka", "alert(1)"} {
			if strings.Contains(body, name) {
				t.Errorf("GET %s holds %q: the shell must hold no function's data", tt.path, name)
			}
		}
		if strings.Contains(body, "innerHTML") || strings.Contains(body, "insertAdjacentHTML") || strings.Contains(body, "document.write") {
			t.Errorf("GET %s writes HTML from script: values must go in as text", tt.path)
		}
		total += len(body)

		head, hbody := e.get(t, http.MethodHead, tt.path)
		if head.StatusCode != http.StatusOK || hbody != "" || head.Header.Get("Content-Length") != fmt.Sprint(len(body)) {
			t.Errorf("HEAD %s: %d, %d bytes, Content-Length %s, want 200, none, %d", tt.path, head.StatusCode, len(hbody), head.Header.Get("Content-Length"), len(body))
		}
	}
	if total > 16<<10 {
		t.Errorf("the front page is %d bytes, want at most 16 KiB", total)
	}

	_, html := e.get(t, http.MethodGet, "/")
	for _, want := range []string{`<script src="-/front.js" defer></script>`, `<caption>`, `scope="col"`, `aria-live="polite"`,
		`<label for="token">`, `id="token"`, `type="password"`} {
		if !strings.Contains(html, want) {
			t.Errorf("the front page has no %s", want)
		}
	}
	if strings.Count(html, "<script") != 1 || strings.Contains(html, " style=") || strings.Contains(html, "<style") {
		t.Error("the front page has inline script or style, which its CSP refuses")
	}
	_, js := e.get(t, http.MethodGet, "/-/front.js")
	for _, want := range []string{`'fn-' + `, `'cold_starts'`, `'processes'`, `'inflight'`, `'state'`, `a.className = 'page'`, "textContent", "sessionStorage", "'-/events'", "'-/status'"} {
		if !strings.Contains(js, want) {
			t.Errorf("front.js has no %s: the ids and fields the page's tests find", want)
		}
	}

	if resp, body := e.get(t, http.MethodPost, "/"); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d %s, want 405 with Allow", resp.StatusCode, body)
	}
	// Host: {function}.localhost's / is the function's page, not the
	// front page; the page's calls get the function's answer (a 503 here).
	if resp, body := e.get(t, http.MethodGet, "/", "Host: quokka-beta.localhost"); resp.StatusCode != http.StatusOK || strings.Contains(body, "cortex serve</title>") {
		t.Errorf("GET / with Host: quokka-beta.localhost: %d %s, want the function's page", resp.StatusCode, body)
	}
	if resp, body := e.get(t, http.MethodGet, "/openapi.json", "Host: quokka-beta.localhost"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /openapi.json with Host: quokka-beta.localhost: %d %s, want the function's 503", resp.StatusCode, body)
	}
	t.Logf("front page: %d bytes (index.html, front.js, front.css)", total)
}

// sseEvent is one event of a stream, or a comment.
type sseEvent struct {
	name, data string
	comment    bool
	at         time.Time
}

// openEvents opens /-/events and returns its events as they arrive; the
// channel closes when the stream ends.
func (e *env) openEvents(t *testing.T, headers ...string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+host.EventsPath, nil)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %d %s, want 200 text/event-stream", host.EventsPath, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan sseEvent, 100)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" || ev.comment {
					ev.at = time.Now()
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				ev.comment = true
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	t.Cleanup(cancel)
	return ch
}

// nextStatus returns the next status event's echo function, skipping
// comments.
func nextStatus(t *testing.T, ch <-chan sseEvent, name string, within time.Duration) (rawStatus, sseEvent) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("the event stream ended")
			}
			if ev.comment {
				continue
			}
			if ev.name != "status" {
				t.Fatalf("event %q, want status", ev.name)
			}
			return findRaw(t, ev.data, name), ev
		case <-timeout:
			t.Fatalf("no status event within %s", within)
		}
	}
}

// TestEventsStreamChanges reads /-/events through a front server whose own
// timeouts are far shorter than the stream: a snapshot on connect, then
// the changes a request makes (a cold start, its answer), at most four
// events a second, heartbeats while idle, and the end at CloseStreams.
func TestEventsStreamChanges(t *testing.T) {
	const short = 300 * time.Millisecond
	e := startFront(t, []host.Function{function("echo", host.Autoscaling{})}, func(s *http.Server) {
		s.ReadTimeout, s.WriteTimeout = short, short
	}, host.WithHeartbeat(100*time.Millisecond))
	ch := e.openEvents(t)
	first, _ := nextStatus(t, ch, "echo", 5*time.Second)
	if first["cold_starts"] != float64(0) || first["state"] != host.StateIdle {
		t.Fatalf("first event: %v, want idle with no cold start", first)
	}
	time.Sleep(2 * short) // past the front's timeouts
	if a := e.post(t, "/echo/predict", "x"); a.status != http.StatusOK {
		t.Fatalf("request: %d %s", a.status, a.body)
	}
	var last sseEvent
	var heartbeats, events int
	deadline := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("the stream ended before it showed the request")
			}
			if ev.comment {
				heartbeats++
				continue
			}
			events++
			if !last.at.IsZero() && ev.at.Sub(last.at) < 200*time.Millisecond {
				t.Errorf("two events %s apart, want at most four a second", ev.at.Sub(last.at))
			}
			last = ev
			s := findRaw(t, ev.data, "echo")
			done = s["cold_starts"] == float64(1) && s.requests()["200"] == 1 && s["in_flight"] == float64(0)
		case <-deadline:
			t.Fatalf("no event showed the cold start and the answer (last: %s)", last.data)
		}
	}
	// Idle: heartbeats, and no event with nothing new.
	timeout := time.After(time.Second)
	for heartbeats < 2 {
		select {
		case ev := <-ch:
			if ev.comment {
				heartbeats++
			} else {
				t.Errorf("an event while nothing changed: %s", ev.data)
			}
		case <-timeout:
			t.Fatalf("%d heartbeats in a second of a 100ms heartbeat", heartbeats)
		}
	}
	e.h.CloseStreams()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the stream is still open after CloseStreams")
		}
	}
}

// TestFunctionRedirect: GET /{function} redirects to /{function}/, so that
// the function's page finds its relative links; POST /{function} is still
// a prediction.
func TestFunctionRedirect(t *testing.T) {
	e := start(t, []host.Function{function("echo", host.Autoscaling{})})
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		resp, body := e.get(t, method, "/echo?x=1")
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "/echo/?x=1" {
			t.Errorf("%s /echo?x=1: %d Location %q %s, want 308 to /echo/?x=1", method, resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}
	if a := e.post(t, "/echo", "still a prediction"); a.status != http.StatusOK || a.echo != "still a prediction" {
		t.Errorf("POST /echo: %d %s, want the prediction", a.status, a.body)
	}
	if resp, body := e.get(t, http.MethodGet, "/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope: %d %s, want 404", resp.StatusCode, body)
	}
}

// TestFrontToken: with a token the front answers 401 with a challenge to
// every request without it but the page shells, serves the ones with it,
// and writes it to no log.
func TestFrontToken(t *testing.T) {
	const token = "tok-8f3a9c1e5b7d"
	t.Setenv(host.TokenEnv, token) // as cortex serve may have it: no process inherits it
	logs := &testutil.SyncBuffer{}
	e := start(t, []host.Function{function("echo", host.Autoscaling{})},
		host.WithToken(token),
		host.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	bearer := "Authorization: Bearer " + token
	tests := []struct {
		name         string
		method, path string
		headers      []string
		want         int // 0: anything but 401
	}{
		{"status without", "GET", "/-/status", nil, 401},
		{"status with a wrong token", "GET", "/-/status", []string{"Authorization: Bearer tok-wrong"}, 401},
		{"status with Basic", "GET", "/-/status", []string{"Authorization: Basic " + token}, 401},
		{"status with", "GET", "/-/status", []string{bearer}, 200},
		{"events without", "GET", "/-/events", nil, 401},
		{"metrics without", "GET", "/metrics", nil, 401},
		{"metrics with", "GET", "/metrics", []string{bearer}, 200},
		{"prediction without", "POST", "/echo/predict", nil, 401},
		{"prediction on Host without", "POST", "/predict", []string{"Host: echo.localhost"}, 401},
		{"front page", "GET", "/", nil, 200},
		{"front page HEAD", "HEAD", "/", nil, 200},
		{"front script", "GET", "/-/front.js", nil, 200},
		{"front style", "GET", "/-/front.css", nil, 200},
		{"front page POST", "POST", "/", nil, 401},
		{"redirect", "GET", "/echo", nil, 308},
		{"function page", "GET", "/echo/", nil, 0},
		{"function docs", "HEAD", "/echo/docs", nil, 0},
		{"function page script", "GET", "/echo/-/page.js", nil, 0},
		{"function page on Host", "GET", "/", []string{"Host: echo.localhost"}, 0},
		{"function page POST", "POST", "/echo/", nil, 401},
		{"unknown function page", "GET", "/nope/", nil, 401},
		{"unknown function redirect", "GET", "/nope", nil, 401},
		{"function health", "GET", "/echo/healthz", nil, 401},
		{"CORS preflight", "OPTIONS", "/echo/predict", []string{"Origin: https://app.example", "Access-Control-Request-Method: POST"}, 0},
		{"OPTIONS without Origin", "OPTIONS", "/echo/predict", nil, 401},
		{"CORS preflight to the front", "OPTIONS", "/-/status", []string{"Origin: https://app.example", "Access-Control-Request-Method: GET"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.get(t, tt.method, tt.path, tt.headers...)
			switch {
			case tt.want == 0 && resp.StatusCode == http.StatusUnauthorized,
				tt.want != 0 && resp.StatusCode != tt.want:
				t.Errorf("%s %s: %d %s, want %d (0: anything but 401)", tt.method, tt.path, resp.StatusCode, body, tt.want)
			}
			if resp.StatusCode == http.StatusUnauthorized {
				if c := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(c, `Bearer realm="cortex serve"`) {
					t.Errorf("401 with WWW-Authenticate %q, want a Bearer challenge", c)
				}
				if strings.Contains(body, "echo") {
					t.Errorf("401 body %s names a function", body)
				}
			}
		})
	}
	a := e.do(t, e.srv.URL+"/echo/predict", "", "x") // no token
	if a.status != http.StatusUnauthorized {
		t.Errorf("POST without a token: %d", a.status)
	}
	resp, body := e.get(t, http.MethodPost, "/echo/predict?env=1", bearer)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, host.TokenEnv) || strings.Contains(body, token) {
		t.Errorf("the function's environment: %d %s, want 200 without $%s", resp.StatusCode, body, host.TokenEnv)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/echo/predict?crash=1", strings.NewReader("x"))
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close() // a crash: the host logs it
	}
	eventually(t, 10*time.Second, "the crash was not logged", func() bool { return strings.Contains(logs.String(), "died") })
	for what, out := range map[string]string{"host log": logs.String(), "process output": e.logs.String()} {
		if strings.Contains(out, token) {
			t.Errorf("the %s holds the token:\n%s", what, out)
		}
	}
}

// TestTokenChecks: WithToken refuses tokens a header cannot carry, and
// its error does not repeat the token.
func TestTokenChecks(t *testing.T) {
	for _, tok := range []string{"", "has space-secret", "tab\tsecret", "nön-ascii"} {
		_, err := host.New([]host.Function{function("echo", host.Autoscaling{})}, host.WithToken(tok))
		if err == nil {
			t.Errorf("WithToken(%q): no error", tok)
			continue
		}
		if tok != "" && strings.Contains(err.Error(), tok) {
			t.Errorf("WithToken(%q): the error %q holds the token", tok, err)
		}
	}
}

// TestTokenClient: the CLI's client for a local cortex serve sends the
// token to the front's address only, and FetchStatus says when a token is
// missing.
func TestTokenClient(t *testing.T) {
	const token = "tok-1b2c3d4e5f6a7b"
	e := start(t, []host.Function{function("echo", host.Autoscaling{})}, host.WithToken(token))
	if _, err := host.FetchStatus(context.Background(), nil, e.srv.URL); !errors.Is(err, host.ErrUnauthorized) {
		t.Errorf("FetchStatus without the token: %v, want ErrUnauthorized", err)
	}
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	if m, err := host.FetchStatus(context.Background(), host.TokenClient(addr, token), e.srv.URL); err != nil || m["echo"].Name != "echo" {
		t.Errorf("FetchStatus with TokenClient: %v, %v", m, err)
	}
	// Another address gets no token.
	var got string
	other := testServer(t, func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("Authorization") })
	resp, err := host.TokenClient(addr, token).Get(other)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "" {
		t.Errorf("TokenClient sent Authorization %q to another address", got)
	}
	// A caller's own Authorization stays.
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+host.StatusPath, nil)
	req.Header.Set("Authorization", "Bearer tok-other")
	resp, err = host.TokenClient(addr, token).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a request with its own (wrong) token: %d, want 401: TokenClient must not replace it", resp.StatusCode)
	}
	if c := host.TokenClient(addr, ""); c != http.DefaultClient {
		t.Error("TokenClient without a token is not http.DefaultClient")
	}
}

func testServer(t *testing.T, fn http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(fn)
	t.Cleanup(srv.Close)
	return srv.URL
}

// The front's token follows a function's token rules: long enough not to
// be guessed, and sendable unquoted; the error never holds it.
func TestCheckToken(t *testing.T) {
	for _, bad := range []string{"", "short-token", "has a space in it 0123", "ünïcødé-0123456789"} {
		err := host.CheckToken(bad)
		if err == nil {
			t.Errorf("CheckToken(%q) = nil, want a refusal", bad)
		} else if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("CheckToken's error %q holds the token", err)
		}
	}
	if err := host.CheckToken("0123456789abcdef0123"); err != nil {
		t.Errorf("CheckToken of a good token: %v", err)
	}
}

// A function's page shell is the front's own copy: opening the page of a
// function at zero starts no process (the page's calls do), and it is
// the page the function's carrier serves.
func TestFunctionPageShellWakesNothing(t *testing.T) {
	e := start(t, []host.Function{function("echo", host.Autoscaling{})})
	for _, p := range []string{"/echo/", "/echo/docs", "/echo/-/page.js", "/echo/-/page.css"} {
		resp, body := e.get(t, http.MethodGet, p)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") == "" || body == "" {
			t.Errorf("GET %s: %d, CSP %q, %d bytes; want the page's file", p, resp.StatusCode, resp.Header.Get("Content-Security-Policy"), len(body))
		}
	}
	resp, _ := e.get(t, http.MethodGet, "/", "Host: echo.localhost")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET / on echo.localhost: %d %s, want the page", resp.StatusCode, ct)
	}
	if s := e.status(t, "echo"); len(s.Processes) != 0 || s.ColdStarts != 0 {
		t.Errorf("after opening the page: %d processes, %d cold starts; want none", len(s.Processes), s.ColdStarts)
	}
}
