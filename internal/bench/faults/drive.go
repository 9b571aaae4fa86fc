package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cortexfn/cortex/internal/bench/load"
)

// body is a prediction request with the answer it must get.
type body struct {
	text   string
	id     string
	sum    float64
	digest string
}

// newBodies makes the requests the clients send in turn, and computes
// their answers here, independently of the function's code.
func newBodies(rounds int) []body {
	out := make([]body, 64)
	for i := range out {
		id := fmt.Sprintf("req-%02d", i)
		values := make([]float64, 16)
		var sum float64
		for k := range values {
			values[k] = float64(i) + float64(k)*0.25
			sum += values[k] * values[k]
		}
		d := sha256.Sum256([]byte(id))
		for range rounds - 1 {
			d = sha256.Sum256(d[:])
		}
		b, _ := json.Marshal(map[string]any{"id": id, "values": values, "rounds": rounds})
		out[i] = body{text: string(b), id: id, sum: sum, digest: hex.EncodeToString(d[:])}
	}
	return out
}

// check checks an answer to b and returns the process that gave it.
func (b body) check(got []byte) (pid int, err error) {
	var out struct {
		ID     string  `json:"id"`
		Sum    float64 `json:"sum"`
		Digest string  `json:"digest"`
		PID    int     `json:"pid"`
	}
	if err := json.Unmarshal(got, &out); err != nil {
		return 0, err
	}
	if out.ID != b.id || out.Digest != b.digest || math.Abs(out.Sum-b.sum) > 1e-9*math.Abs(b.sum) {
		return out.PID, fmt.Errorf("want id %s, sum %g, digest %s", b.id, b.sum, b.digest)
	}
	return out.PID, nil
}

// warmUp sends one request and waits for its correct answer: the first
// process's cold start.
func warmUp(ctx context.Context, base string, bodies []body) error {
	client := &http.Client{Timeout: time.Minute}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/"+fnName+"/predict", strings.NewReader(bodies[0].text))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", errNotReady, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%w: %v", errNotReady, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %d %s", errNotReady, resp.StatusCode, b)
	}
	if _, err := bodies[0].check(b); err != nil {
		return fmt.Errorf("%w: %v: %s", errNotReady, err, b)
	}
	return nil
}

// Classes of requests.
const (
	classAccepted  = "accepted"
	classRunaway   = "runaway"
	classOversized = "oversized chunked body"
	classTruncated = "truncated JSON body"
	classCut       = "body cut short"
	classSlow      = "slow headers"
)

var classes = []string{classAccepted, classRunaway, classOversized, classTruncated, classCut, classSlow}

// tally counts the answers of one class of requests by kind.
type tally struct {
	mu      sync.Mutex
	kinds   map[string]int64
	n       int64
	failed  int64
	example string
}

func (t *tally) add(kind string, ok bool, detail string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n++
	t.kinds[kind]++
	if !ok {
		t.failed++
		if t.example == "" {
			t.example = kind + ": " + detail
		}
	}
}

func (t *tally) count(kind string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.kinds[kind]
}

// loadResult is what every client saw.
type loadResult struct {
	clients  int
	elapsed  time.Duration
	accepted load.Result // the correct 200s, with their latencies
	tallies  map[string]*tally
	servedBy sync.Map // pid -> *atomic.Int64: correct answers per process

	slow             sync.WaitGroup
	slowSlots        chan struct{}
	slowOpen         atomic.Int64 // slow-headers clients under way
	slowMu           sync.Mutex
	slowMin, slowMax time.Duration // how long the front took to end a slow-headers client
}

func (l *loadResult) waitSlow() { l.slow.Wait() }

// maxSlow bounds the slow-headers clients at once; a client that draws
// one more waits for a slot.
const maxSlow = 4096

func newLoadResult(clients int) *loadResult {
	res := &loadResult{clients: clients, tallies: map[string]*tally{}, slowSlots: make(chan struct{}, maxSlow)}
	for _, c := range classes {
		res.tallies[c] = &tally{kinds: map[string]int64{}}
	}
	return res
}

// drive has 2 x capacity clients send requests to the function through
// the front for s.dur, without backing off. Request n (counted over all
// clients) is hostile when n is a multiple of s.hostileEvery, the kind
// rotating; of the others, prediction m runs away when m is a multiple of
// s.runawayEvery. Slow-headers clients run on their own goroutines, so that
// a client held for ten seconds does not stop sending.
func drive(ctx context.Context, res *loadResult, base string, bodies []body, s settings) {
	clients := res.clients
	u, _ := url.Parse(base)
	addr := u.Host
	predict := base + "/" + fnName + "/predict"
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients},
	}
	defer client.CloseIdleConnections()
	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		lats        []time.Duration
		requests    atomic.Int64
		predictions atomic.Int64
		cutoff      = time.Now().Add(s.dur)
	)
	start := time.Now()
	for range clients {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 8192)
			for time.Now().Before(cutoff) && ctx.Err() == nil {
				n := requests.Add(1)
				if n%int64(s.hostileEvery) == 0 {
					res.hostile(client, addr, predict, bodies[n%int64(len(bodies))], n/int64(s.hostileEvery), s.maxBody)
					continue
				}
				m := predictions.Add(1)
				b := bodies[m%int64(len(bodies))]
				if m%int64(s.runawayEvery) == 0 {
					res.runaway(client, predict+"?runaway=1", b)
					continue
				}
				if took, ok := res.accept(client, predict, b); ok {
					lat = append(lat, took)
				}
			}
			mu.Lock()
			lats = append(lats, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.accepted = load.Merge([]load.Result{{N: len(lats), Elapsed: res.elapsed, Lat: lats}})
}

func post(client *http.Client, url, body string) (int, http.Header, []byte, error) {
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// refused names a clean refusal: 503 with Retry-After, and who refused.
func refused(status int, h http.Header, b []byte) (string, bool) {
	if status == http.StatusServiceUnavailable && h.Get("Retry-After") != "" {
		return "503 + Retry-After: " + refusal(b), true
	}
	return "", false
}

// accept sends an ordinary prediction: it must answer 200 with the right
// body, or be refused cleanly.
func (l *loadResult) accept(client *http.Client, url string, b body) (time.Duration, bool) {
	t := l.tallies[classAccepted]
	t0 := time.Now()
	status, h, got, err := post(client, url, b.text)
	took := time.Since(t0)
	switch {
	case err != nil:
		t.add("transport error", false, err.Error())
	case status == http.StatusOK:
		pid, err := b.check(got)
		if err != nil {
			t.add("200, wrong answer", false, fmt.Sprintf("%v: %s", err, got))
			return 0, false
		}
		t.add("200, correct", true, "")
		v, _ := l.servedBy.LoadOrStore(pid, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		return took, true
	default:
		if kind, ok := refused(status, h, got); ok {
			t.add(kind, true, "")
		} else {
			t.add(fmt.Sprint(status), false, firstLine(got, nil))
		}
	}
	return 0, false
}

// runaway sends a prediction that runs away: its caller must get 504 at
// limits.timeout, unless it is refused before it runs.
func (l *loadResult) runaway(client *http.Client, url string, b body) {
	t := l.tallies[classRunaway]
	status, h, got, err := post(client, url, b.text)
	switch {
	case err != nil:
		t.add("transport error", false, err.Error())
	case status == http.StatusGatewayTimeout:
		t.add("504", true, "")
	default:
		if kind, ok := refused(status, h, got); ok {
			t.add(kind, true, "")
		} else {
			t.add(fmt.Sprint(status), false, firstLine(got, nil))
		}
	}
}

// hostile sends the k-th hostile request, of the kind whose turn it is.
// Each must be refused with its 4xx (or cleanly, 503 with Retry-After,
// when the function is at capacity before its body is looked at).
func (l *loadResult) hostile(client *http.Client, addr, url string, b body, k int64, maxBody int64) {
	switch k % 3 {
	case 0:
		a := oversized(addr, 4*maxBody)
		l.judge(classOversized, http.StatusRequestEntityTooLarge, a)
	case 1:
		// The truncated bodies alternate: JSON cut in half with its
		// Content-Length, and a body that stops short of its
		// Content-Length as the client closes its side.
		if k/3%2 == 0 {
			status, h, got, err := post(client, url, b.text[:len(b.text)/2])
			l.judge(classTruncated, http.StatusBadRequest, answer{status: status, retryAfter: h.Get("Retry-After"), body: got, err: err})
		} else {
			l.judge(classCut, http.StatusBadRequest, cutShort(addr, b.text))
		}
	case 2:
		l.slowSlots <- struct{}{}
		l.slowOpen.Add(1)
		l.slow.Go(func() {
			defer func() { l.slowOpen.Add(-1); <-l.slowSlots }()
			r := slowHeaders(addr)
			if r.ok {
				l.slowMu.Lock()
				if l.slowMin == 0 || r.took < l.slowMin {
					l.slowMin = r.took
				}
				l.slowMax = max(l.slowMax, r.took)
				l.slowMu.Unlock()
			}
			l.tallies[classSlow].add(r.kind, r.ok, r.took.String())
		})
	}
}

// judge records a hostile request's answer: want, or a clean refusal.
func (l *loadResult) judge(class string, want int, a answer) {
	t := l.tallies[class]
	switch {
	case a.err != nil:
		t.add("no answer", false, a.err.Error())
	case a.status == want:
		t.add(fmt.Sprint(want), true, "")
	case a.status == http.StatusServiceUnavailable && a.retryAfter != "":
		t.add("503 + Retry-After: "+refusal(a.body), true, "")
	default:
		t.add(fmt.Sprint(a.status), false, firstLine(a.body, nil))
	}
}
