package runtime_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
)

// generator streams the words of its request body, one chunk each. After
// its first chunk it waits for next (when not nil) before it goes on, so a
// test can show the first chunk reached the caller before the prediction
// ended. A word "fail" fails the prediction there; "hang" waits for the
// context to end; "slow" sleeps 50ms per word after it.
type generator struct {
	next    chan struct{}
	running sync.WaitGroup
}

func (g *generator) Predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	return functions.Collect(ctx, g, req)
}

func (g *generator) PredictStream(ctx context.Context, req *functions.Request, s functions.Stream) error {
	g.running.Add(1)
	defer g.running.Done()
	s.Header().Set("Content-Type", "text/plain; charset=utf-8")
	slow := false
	for i, w := range strings.Fields(string(req.Body)) {
		switch w {
		case "fail":
			return functions.Errorf(http.StatusUnprocessableEntity, "cannot say %q", w)
		case "hang":
			<-ctx.Done()
			return ctx.Err()
		case "slow":
			slow = true
			continue
		}
		if slow {
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := s.Send([]byte(w + " ")); err != nil {
			return err
		}
		if i == 0 && g.next != nil {
			select {
			case <-g.next:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

type event struct{ name, data string }

// readEvents reads server-sent events from r until it ends, calling each
// (when not nil) as each arrives.
func readEvents(t *testing.T, r io.Reader, each func(event)) []event {
	t.Helper()
	var events []event
	var ev event
	var data []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			ev.data = strings.Join(data, "\n")
			events = append(events, ev)
			if each != nil {
				each(ev)
			}
			ev, data = event{}, nil
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		}
	}
	return events
}

func streamRuntime(t *testing.T, p functions.Predictor, limits runtime.Limits) string {
	t.Helper()
	rt, err := runtime.New(p, runtime.Config{Name: "gen", Limits: limits}, runtime.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, rt)
	waitReady(t, base)
	return base
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready")
		}
	}
}

func post(t *testing.T, url, body string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestStreamSSE: the first event reaches the caller while the predictor
// is still running (it waits, after its first chunk, for the test to have
// read it), then the rest, then "done".
func TestStreamSSE(t *testing.T) {
	g := &generator{next: make(chan struct{})}
	base := streamRuntime(t, g, runtime.Limits{})
	resp := post(t, base+"/predict", "once upon a time", "Accept", "text/event-stream")
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("answer: %d %v", resp.StatusCode, resp.Header)
	}
	var got []string
	events := readEvents(t, resp.Body, func(ev event) {
		if len(got) == 0 {
			close(g.next) // the predictor goes on only now
		}
		got = append(got, ev.name+":"+ev.data)
	})
	want := []string{"output:once ", "output:upon ", "output:a ", "output:time ", `done:{"status":"succeeded"}`}
	if strings.Join(got, "|") != strings.Join(want, "|") || len(events) != len(want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// TestStreamAskedInTheBody: "stream": true asks for SSE; with an Accept of
// another type, for the chunks themselves; without either, the predictor's
// Predict answers whole.
func TestStreamAskedInTheBody(t *testing.T) {
	base := streamRuntime(t, &generator{}, runtime.Limits{})
	resp := post(t, base+"/predict", `{"stream": true}`)
	events := readEvents(t, resp.Body, nil)
	resp.Body.Close()
	if len(events) != 3 || events[0].data != `{"stream": ` || events[2].name != "done" {
		t.Errorf(`"stream": true: %q`, events)
	}
	resp = post(t, base+"/predict", `{"stream": true} and more`, "Accept", "text/plain")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != `{"stream": true} and more ` || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("chunked: %q %q", resp.Header.Get("Content-Type"), b)
	}
	a := do(t, "POST", base+"/predict", "text/plain", strings.NewReader("not streamed"))
	if a.status != 200 || a.body != "not streamed " {
		t.Errorf("no stream asked: %d %q", a.status, a.body)
	}
}

// TestStreamErrors: a failure before the first chunk is a plain answer
// with its status; one midway is an "error" event; a deadline midway is
// an "error" event with 504, not a hang.
func TestStreamErrors(t *testing.T) {
	base := streamRuntime(t, &generator{}, runtime.Limits{Timeout: runtime.Duration(300 * time.Millisecond)})
	a := do(t, "POST", base+"/predict", "text/plain", strings.NewReader("fail"), "Accept", "text/event-stream")
	if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, "cannot say") {
		t.Errorf("failure before the first chunk: %d %s", a.status, a.body)
	}
	resp := post(t, base+"/predict", "one two fail", "Accept", "text/event-stream")
	events := readEvents(t, resp.Body, nil)
	resp.Body.Close()
	if len(events) != 3 || events[2].name != "error" || !strings.Contains(events[2].data, `"status":422`) {
		t.Errorf("failure midway: %q", events)
	}
	began := time.Now()
	resp = post(t, base+"/predict", "one hang", "Accept", "text/event-stream")
	events = readEvents(t, resp.Body, nil)
	resp.Body.Close()
	if len(events) != 2 || events[1].name != "error" || !strings.Contains(events[1].data, `"status":504`) {
		t.Errorf("deadline midway: %q", events)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("the deadline's error event came after %s", took)
	}
	// Without SSE, a failure midway leaves the body incomplete.
	resp = post(t, base+"/predict", `{"stream": true, "x": " fail "}`, "Accept", "text/plain")
	_, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Error("chunked stream that failed midway read as complete")
	}
}

// echoWhole does not stream: asked for SSE, it answers one event.
type echoWhole struct{}

func (echoWhole) Predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	return functions.Text(200, "whole "+string(req.Body)), nil
}

func TestStreamFromAPredictorThatDoesNot(t *testing.T) {
	base := streamRuntime(t, echoWhole{}, runtime.Limits{})
	resp := post(t, base+"/predict", "x", "Accept", "text/event-stream")
	events := readEvents(t, resp.Body, nil)
	resp.Body.Close()
	if len(events) != 2 || events[0] != (event{"output", "whole x"}) || events[1].name != "done" {
		t.Errorf("events %q", events)
	}
}

// TestStreamCancellation: 50 callers start long streams and go away; the
// predictions' contexts end, every slot is free again within a short
// bound, a new request is served at once, the cancellations are counted,
// and the goroutines return to their number before (but for the idle
// prediction workers the runtime keeps for reuse).
func TestStreamCancellation(t *testing.T) {
	g := &generator{}
	base := streamRuntime(t, g, runtime.Limits{MaxConcurrency: 50, Timeout: runtime.Duration(time.Minute)})
	const n = 50
	round := func() {
		tr := &http.Transport{MaxConnsPerHost: n}
		c := &http.Client{Transport: tr}
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				body := "start slow " + strings.Repeat(fmt.Sprintf("w%d ", i), 1000)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/predict", strings.NewReader(body))
				req.Header.Set("Accept", "text/event-stream")
				resp, err := c.Do(req)
				if err != nil {
					t.Errorf("stream %d: %v", i, err)
					return
				}
				// Read the first event, then hang up.
				r := bufio.NewReader(resp.Body)
				if _, err := r.ReadString('\n'); err != nil {
					t.Errorf("stream %d: %v", i, err)
				}
				cancel()
				resp.Body.Close()
			})
		}
		wg.Wait()
		tr.CloseIdleConnections()
		done := make(chan struct{})
		go func() { g.running.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("predictions still running 5s after their callers left")
		}
		deadline := time.Now().Add(5 * time.Second)
		for scrapeURL(t, base, "cortex_requests_in_flight") != 0 {
			if time.Now().After(deadline) {
				t.Fatal("slots still held after the predictions returned")
			}
			time.Sleep(10 * time.Millisecond)
		}
		a := do(t, "POST", base+"/predict", "text/plain", strings.NewReader("next"))
		if a.status != 200 || a.body != "next " {
			t.Errorf("request after the cancellations: %d %q", a.status, a.body)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	before := goroutinesBesideWorkers()
	round()
	if got := scrapeURL(t, base, "cortex_predictions_cancelled_total"); got != n {
		t.Errorf("cancellations counted: %v, want %d", got, n)
	}
	http.DefaultClient.CloseIdleConnections()
	for deadline := time.Now().Add(5 * time.Second); goroutinesBesideWorkers() > before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("goroutines besides the idle prediction workers: %d after the cancelled streams, %d before them", goroutinesBesideWorkers(), before)
			break
		}
	}
}

// goroutinesBesideWorkers counts the goroutines that are not the
// runtime's idle prediction workers, which it keeps (as many as the most
// predictions that ever ran at once) to reuse their stacks.
func goroutinesBesideWorkers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:goruntime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "(*workers).loop") {
			n++
		}
	}
	return n
}
