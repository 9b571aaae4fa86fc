package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echo answers {"got": BODY, "ct": CONTENT-TYPE} after a random delay of
// up to maxDelay, so that answers come back out of order.
func echo(maxDelay time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if maxDelay > 0 {
			time.Sleep(rand.N(maxDelay))
		}
		w.Header().Set("Content-Type", "application/json")
		v := map[string]any{"ct": r.Header.Get("Content-Type")}
		if json.Valid(b) {
			v["got"] = json.RawMessage(b)
		} else {
			v["got_bytes"] = len(b)
		}
		json.NewEncoder(w).Encode(v)
	}
}

func writeLines(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readLines(t *testing.T, p string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("a line that is not JSON: %v: %s", err, l)
		}
		out = append(out, m)
	}
	return out
}

func TestOrderAndMalformedLine(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		echo(5*time.Millisecond)(w, r)
	}))
	defer srv.Close()
	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf(`{"n": %d}`, i))
	}
	lines[41] = `{"n": 41,` // line 43 below: one blank line before it
	lines = append(lines[:10], append([]string{"   "}, lines[10:]...)...)
	out := t.TempDir()
	tot, err := Run(context.Background(), Options{Input: writeLines(t, lines...), Output: out, URL: srv.URL, Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	if tot.Total != 200 || tot.Succeeded != 199 || tot.Failed != 1 {
		t.Errorf("totals %+v, want 200 = 199 + 1 failed", tot)
	}
	if got.Load() != 199 {
		t.Errorf("the function got %d requests, want 199: the malformed line is never sent", got.Load())
	}
	outs := readLines(t, filepath.Join(out, OutputsFile))
	for k, o := range outs {
		i := k
		if k >= 41 {
			i++ // the failed one
		}
		line := i + 1
		if i >= 10 {
			line++ // the blank line
		}
		n := o["output"].(map[string]any)["got"].(map[string]any)["n"]
		if o["index"] != float64(i) || o["line"] != float64(line) || n != float64(i) || o["status"] != float64(200) {
			t.Fatalf("outputs line %d: %v, want index %d, line %d, the answer to n=%d", k, o, i, line, i)
		}
	}
	fails := readLines(t, filepath.Join(out, FailuresFile))
	if len(fails) != 1 || fails[0]["index"] != float64(41) || fails[0]["line"] != float64(43) || fails[0]["status"] != float64(0) ||
		!strings.Contains(fails[0]["error"].(string), "not valid JSON") {
		t.Errorf("failures: %v, want index 41 at line 43 with status 0 and a JSON error", fails)
	}
	if _, err := os.Stat(filepath.Join(out, StateDir, OutputsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the partial results are still in the state directory: %v", err)
	}
}

func TestRetriesHonourRetryAfter(t *testing.T) {
	var mu sync.Mutex
	attempts := map[string]int{}
	var firstAt, retryAt time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		attempts[string(b)]++
		n := attempts[string(b)]
		mu.Unlock()
		if string(b) == `{"flaky":true}` {
			switch n {
			case 1:
				firstAt = time.Now()
				w.Header().Set("Retry-After", "1")
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			case 2:
				retryAt = time.Now()
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
		}
		if string(b) == `{"bad":true}` {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			io.WriteString(w, `{"error":"$.bad: unknown field"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	out := t.TempDir()
	tot, err := Run(context.Background(), Options{
		Input:  writeLines(t, `{"a":1}`, `{"flaky":true}`, `{"bad":true}`),
		Output: out, URL: srv.URL, Retries: 3, BackoffBase: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if attempts[`{"flaky":true}`] != 3 {
		t.Errorf("the flaky input was sent %d times, want 3 (two failures, then delivered)", attempts[`{"flaky":true}`])
	}
	if d := retryAt.Sub(firstAt); d < time.Second {
		t.Errorf("retried %v after a 503 with Retry-After: 1, want 1s or more", d)
	}
	if attempts[`{"bad":true}`] != 1 {
		t.Errorf("a 422 was sent %d times, want once: it is the input's failure, not a transient one", attempts[`{"bad":true}`])
	}
	if tot.Succeeded != 2 || tot.Failed != 1 || tot.Retries != 2 {
		t.Errorf("totals %+v, want 2 succeeded, 1 failed, 2 retries", tot)
	}
	fails := readLines(t, filepath.Join(out, FailuresFile))
	if len(fails) != 1 || fails[0]["index"] != float64(2) || fails[0]["status"] != float64(422) || fails[0]["error"] != "$.bad: unknown field" {
		t.Errorf("failures %v, want index 2 with 422 and the function's error", fails)
	}
}

func TestRetriesGiveUp(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer srv.Close()
	out := t.TempDir()
	tot, err := Run(context.Background(), Options{Input: writeLines(t, `{}`), Output: out, URL: srv.URL, Retries: 2, BackoffBase: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if n.Load() != 3 || tot.Failed != 1 {
		t.Errorf("%d attempts and %d failed, want 3 attempts (--retries 2) and the input failed", n.Load(), tot.Failed)
	}
	fails := readLines(t, filepath.Join(out, FailuresFile))
	if fails[0]["status"] != float64(502) || fails[0]["error"] != "bad gateway" {
		t.Errorf("failure %v, want 502 with the answer's text", fails[0])
	}
}

func TestConnectionErrorIsRetried(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close() // no answer at all
			return
		}
		echo(0)(w, r)
	}))
	defer srv.Close()
	out := t.TempDir()
	tot, err := Run(context.Background(), Options{Input: writeLines(t, `{"x":1}`), Output: out, URL: srv.URL, Retries: 2, BackoffBase: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if tot.Succeeded != 1 || n.Load() != 2 {
		t.Errorf("totals %+v after %d attempts, want delivered on the second", tot, n.Load())
	}
}

func TestDirectoryInput(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.Header.Get("Content-Type") {
		case "image/png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(append([]byte{0x89}, b...))
		case "text/plain; charset=utf-8":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write(bytes.ToUpper(b))
		default:
			r.Body = io.NopCloser(bytes.NewReader(b))
			echo(0)(w, r)
		}
	}))
	defer srv.Close()
	in := t.TempDir()
	for name, body := range map[string]string{"b.png": "PNG", "a.json": `{"k": 1}`, "c.txt": "hello", ".hidden": "x"} {
		os.WriteFile(filepath.Join(in, name), []byte(body), 0o644)
	}
	os.Mkdir(filepath.Join(in, "sub"), 0o755)
	out := t.TempDir()
	tot, err := Run(context.Background(), Options{Input: in, Output: out, URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if tot.Total != 3 || tot.Succeeded != 3 {
		t.Fatalf("totals %+v, want the 3 files (not the dot-file, not the directory)", tot)
	}
	b, _ := os.ReadFile(filepath.Join(out, OutputsFile))
	want := `{"index":0,"file":"a.json","status":200,"output":{"ct":"application/json","got":{"k":1}}}
{"index":1,"file":"b.png","status":200,"output_base64":"iVBORw==","content_type":"image/png"}
{"index":2,"file":"c.txt","status":200,"output_text":"HELLO","content_type":"text/plain; charset=utf-8"}
`
	if string(b) != want {
		t.Errorf("outputs.jsonl:\n%s\nwant:\n%s", b, want)
	}
}

// TestResume stops a job midway, twice (its context ends), and checks
// that resuming it sends none of what was committed and ends with the
// bytes of an uninterrupted run.
func TestResume(t *testing.T) {
	var mu sync.Mutex
	sent := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		sent[string(b)]++
		mu.Unlock()
		if bytes.Contains(b, []byte(`"fail"`)) {
			http.Error(w, "refused", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		echo(10*time.Millisecond)(w, r)
	}))
	defer srv.Close()
	var lines []string
	for i := range 2000 {
		switch {
		case i%97 == 0:
			lines = append(lines, fmt.Sprintf(`{"n":%d,"fail":true}`, i))
		case i%501 == 0:
			lines = append(lines, `not json`)
		default:
			lines = append(lines, fmt.Sprintf(`{"n":%d}`, i))
		}
	}
	input := writeLines(t, lines...)
	opts := func(out string) Options {
		return Options{Input: input, Output: out, URL: srv.URL, Concurrency: 8, Params: map[string]string{"function": "echo"}}
	}
	whole := t.TempDir()
	if _, err := Run(context.Background(), opts(whole)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	clear(sent)
	mu.Unlock()

	resumed := t.TempDir()
	for _, after := range []time.Duration{300 * time.Millisecond, 400 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), after)
		_, err := Run(ctx, opts(resumed))
		cancel()
		if !errors.Is(err, ErrIncomplete) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a run stopped by its context: %v, want ErrIncomplete and the context's error", err)
		}
	}
	tot, err := Run(context.Background(), opts(resumed))
	if err != nil {
		t.Fatal(err)
	}
	if tot.SkippedDone == 0 || tot.SkippedDone >= 2000 {
		t.Errorf("the last run skipped %d done items, want some but not all", tot.SkippedDone)
	}
	for _, f := range []string{OutputsFile, FailuresFile} {
		a, _ := os.ReadFile(filepath.Join(whole, f))
		b, _ := os.ReadFile(filepath.Join(resumed, f))
		if !bytes.Equal(a, b) || len(a) == 0 {
			t.Errorf("%s after resuming (%d bytes) differs from an uninterrupted run's (%d bytes)", f, len(b), len(a))
		}
	}
	// What was committed before a stop is never sent again; what was in
	// flight may be (the window's worth, at most).
	mu.Lock()
	again := 0
	for _, n := range sent {
		again += n - 1
	}
	mu.Unlock()
	if again > 2*opts("").Concurrency*8+512 {
		t.Errorf("%d requests sent more than once across the stops: resuming redid more than what was in flight", again)
	}

	// Done: running it again sends nothing and reports the same totals.
	before := len(sent)
	tot2, err := Run(context.Background(), opts(resumed))
	if err != nil || tot2.Succeeded != tot.Succeeded || tot2.Failed != tot.Failed || tot2.SkippedDone != 2000 || len(sent) != before {
		t.Errorf("a complete job run again: %+v, %v; want its totals, all skipped, nothing sent", tot2, err)
	}
}

func TestResumeAfterTornCheckpoint(t *testing.T) {
	srv := httptest.NewServer(echo(0))
	defer srv.Close()
	input := writeLines(t, `{"a":1}`, `{"a":2}`, `{"a":3}`)
	whole, torn := t.TempDir(), t.TempDir()
	if _, err := Run(context.Background(), Options{Input: input, Output: whole, URL: srv.URL}); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of a job: one result committed and
	// checkpointed, a second written but not checkpointed, and half a
	// checkpoint line.
	state := filepath.Join(torn, StateDir)
	os.MkdirAll(state, 0o755)
	in, _ := openInput(input)
	j, err := openJournal(torn, identity{Version: jobVersion, Kind: "jsonl", InputDigest: in.digest, Items: 3, Params: map[string]string{"batch": "1"}}, input)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := os.ReadFile(filepath.Join(whole, OutputsFile))
	first := all[:bytes.IndexByte(all, '\n')+1]
	j.add(first, false)
	j.sync()
	j.add([]byte(`{"index":1,"line":2,"status":200,"output":{"half":`), false)
	j.outW.Flush()
	j.cp.Write([]byte("2 120 0 2"))
	j.closeFiles()

	tot, err := Run(context.Background(), Options{Input: input, Output: torn, URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(torn, OutputsFile))
	if !bytes.Equal(got, all) || tot.SkippedDone != 1 {
		t.Errorf("after a torn checkpoint: skipped %d, outputs\n%s\nwant 1 skipped and\n%s", tot.SkippedDone, got, all)
	}
}

func TestRefusesAnotherJob(t *testing.T) {
	srv := httptest.NewServer(echo(0))
	defer srv.Close()
	out := t.TempDir()
	if _, err := Run(context.Background(), Options{Input: writeLines(t, `{"a":1}`), Output: out, URL: srv.URL, Params: map[string]string{"function": "f"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, want string
		o          Options
	}{
		{"another input", "another input", Options{Input: writeLines(t, `{"a":2}`), Params: map[string]string{"function": "f"}}},
		{"another function", `function "f", not "g"`, Options{Input: writeLines(t, `{"a":1}`), Params: map[string]string{"function": "g"}}},
		{"another batch", `batch "1", not "8"`, Options{Input: writeLines(t, `{"a":1}`), Batch: 8, Params: map[string]string{"function": "f"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Output, tt.o.URL = out, srv.URL
			_, err := Run(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "another --output") {
				t.Errorf("got %v, want an error naming %q and the way out", err, tt.want)
			}
		})
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, OutputsFile), []byte("{}\n"), 0o644)
	if _, err := Run(context.Background(), Options{Input: writeLines(t, `{}`), Output: other, URL: srv.URL}); err == nil || !strings.Contains(err.Error(), "no job") {
		t.Errorf("an output directory with results but no job: %v, want a refusal", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"-1", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"99999", maxRetryAfter},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.v, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestProgressLines(t *testing.T) {
	srv := httptest.NewServer(echo(20 * time.Millisecond))
	defer srv.Close()
	var lines []string
	for i := range 40 {
		lines = append(lines, fmt.Sprintf(`{"n":%d}`, i))
	}
	var progress bytes.Buffer
	if _, err := Run(context.Background(), Options{Input: writeLines(t, lines...), Output: t.TempDir(), URL: srv.URL, Concurrency: 2,
		Progress: &progress, ProgressEvery: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	got := progress.String()
	if !strings.Contains(got, "/40 (") || !strings.Contains(got, "items/s") || !strings.Contains(got, "ETA") || !strings.HasSuffix(got, "40/40 (100.0%)  "+strings.Fields(got[strings.LastIndex(got, "40/40"):])[2]+" items/s  ETA -  0 failed\n") || strings.Contains(got, "\r") {
		t.Errorf("progress when not a terminal: plain lines, the last at 40/40; got:\n%s", got)
	}
	progress.Reset()
	if _, err := Run(context.Background(), Options{Input: writeLines(t, lines...), Output: t.TempDir(), URL: srv.URL, Concurrency: 2,
		Progress: &progress, Terminal: true}); err != nil {
		t.Fatal(err)
	}
	if got := progress.String(); !strings.HasPrefix(got, "\r\033[K") || !strings.HasSuffix(got, "0 failed\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("progress on a terminal: one line rewritten, ended once; got %q", got)
	}
}
