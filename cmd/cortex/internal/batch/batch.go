package batch

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Options says what a job runs and how.
type Options struct {
	// Input is a JSONL file (one request body a line; blank lines are
	// skipped) or a directory (one body a file, by name).
	Input string
	// Output is the job's directory: outputs.jsonl, failures.jsonl and the
	// state that lets it resume.
	Output string
	// URL is the function's predict route, where each body is POSTed.
	URL string
	// Client sends the requests; nil means a client of this package's
	// own, keeping Concurrency connections alive.
	Client *http.Client
	// Header is sent with every request (Content-Type is the input's).
	Header http.Header
	// Concurrency bounds the requests in flight; 0 means DefaultConcurrency.
	Concurrency int
	// Retries is how many more attempts a transient failure gets; 0 means
	// none. DefaultRetries is the CLI's.
	Retries int
	// Batch, above 1, packs up to Batch consecutive OIP rows into one
	// request (see pack); 0 or 1 sends each input alone.
	Batch int
	// Timeout bounds one attempt; 0 means none.
	Timeout time.Duration
	// BackoffBase is the first retry's backoff (without Retry-After);
	// 0 means 200 ms.
	BackoffBase time.Duration
	// Params are the parameters besides the input that make a job this
	// job (the function, the route): a run with other values does not
	// resume it. Batch is added.
	Params map[string]string
	// Progress receives the progress; nil discards it. Terminal makes it
	// one line rewritten in place, else a line every ProgressEvery
	// (default 10 s).
	Progress      io.Writer
	Terminal      bool
	ProgressEvery time.Duration
	// Window bounds the items read but not committed (in flight, or done
	// and waiting for an earlier one); 0 means 4 x Concurrency x Batch,
	// at least 256.
	Window int
}

// Defaults of the CLI.
const (
	DefaultConcurrency = 16
	DefaultRetries     = 5
)

// syncEvery is how often committed results are made durable: a crash
// loses at most this much work, and the fsyncs cost nothing measurable.
const syncEvery = 500 * time.Millisecond

// Totals is what a job did, as `cortex batch -o json` prints it.
type Totals struct {
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// SkippedDone are the items earlier runs of the job committed.
	SkippedDone int `json:"skipped_done"`
	// Seconds and ItemsPerSecond are this run's.
	Seconds        float64 `json:"seconds"`
	ItemsPerSecond float64 `json:"items_per_second"`
	Output         string  `json:"output"`
	Failures       string  `json:"failures"`
	// Retries are the attempts this run made again; Unpacked the rows
	// --batch sent alone (they did not pack, or their packed request
	// failed).
	Retries  int64 `json:"retries"`
	Unpacked int64 `json:"unpacked,omitempty"`
}

// ErrIncomplete is wrapped by Run's error when the job stopped before
// every item was committed (ctx ended): running it again resumes it.
var ErrIncomplete = errors.New("batch: the job stopped before it was done")

type engine struct {
	o        Options
	client   *http.Client
	retries  atomic.Int64
	unpacked atomic.Int64
	// The OIP skeletons packed rows and their answers share (see pack).
	requests  skeletons[oipRequest]
	responses skeletons[oipResponse]
}

// result is one item's line for outputs.jsonl or failures.jsonl.
type result struct {
	index  int
	line   []byte
	failed bool
}

// Run runs the job, or resumes it when o.Output holds it. It returns the
// totals and, when it stops before the end, an error: ctx's end (the
// committed results are kept for the next run) or what went wrong with
// the input or the output directory. Inputs that fail are not errors;
// Totals.Failed counts them.
func Run(ctx context.Context, o Options) (Totals, error) {
	start := time.Now()
	o.Concurrency = cmp.Or(o.Concurrency, DefaultConcurrency)
	o.Batch = max(o.Batch, 1)
	o.BackoffBase = cmp.Or(o.BackoffBase, 200*time.Millisecond)
	o.ProgressEvery = cmp.Or(o.ProgressEvery, 10*time.Second)
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Window == 0 {
		o.Window = max(4*o.Concurrency*o.Batch, 256)
	}
	o.Window = max(o.Window, 2*o.Batch, o.Concurrency)
	// A job's garbage is its rows' short-lived buffers, and what it keeps
	// is bounded by the window: collecting a quarter as often costs little
	// memory and a tenth of a small-row job's CPU.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	e := &engine{o: o, client: o.Client}
	if e.client == nil {
		e.client = NewClient(o.Concurrency, loopback(o.URL))
	}

	in, err := openInput(o.Input)
	if err != nil {
		return Totals{}, err
	}
	kind := "jsonl"
	if in.dir {
		kind = "dir"
	}
	params := map[string]string{"batch": strconv.Itoa(o.Batch)}
	for k, v := range o.Params {
		params[k] = v
	}
	j, err := openJournal(o.Output, identity{Version: jobVersion, Kind: kind, InputDigest: in.digest, Items: in.total, Params: params}, o.Input)
	if err != nil {
		return Totals{}, err
	}
	defer j.closeFiles()
	tot := Totals{
		Total:       in.total,
		SkippedDone: j.synced.next,
		Output:      filepath.Join(o.Output, OutputsFile),
		Failures:    filepath.Join(o.Output, FailuresFile),
	}
	done := func() Totals {
		tot.Succeeded, tot.Failed = j.at.succeeded, j.at.failed
		tot.Seconds = time.Since(start).Seconds()
		if tot.Seconds > 0 {
			tot.ItemsPerSecond = float64(j.at.next-tot.SkippedDone) / tot.Seconds
		}
		tot.Retries, tot.Unpacked = e.retries.Load(), e.unpacked.Load()
		return tot
	}
	if j.job.Complete {
		for _, p := range []string{tot.Output, tot.Failures} {
			if _, err := os.Stat(p); err != nil {
				return done(), fmt.Errorf("the job in %s is complete but %w: remove %s to run it again", o.Output, err, filepath.Join(o.Output, StateDir))
			}
		}
		j.at = j.synced
		return done(), nil
	}
	if j.synced.next < in.total {
		if err := e.run(ctx, in, j); err != nil {
			return done(), err
		}
	}
	if err := j.finish(); err != nil {
		return done(), fmt.Errorf("writing the results: %w", err)
	}
	return done(), nil
}

// run sends every item from the journal's next one on and commits the
// results in order. Three kinds of goroutine: one reads the input and
// hands out jobs (an item, or Batch of them), Concurrency workers send
// them, and this one commits; a window of slots keeps the items between
// reading and committing bounded, so memory does not grow with the input
// however slow one item is.
func (e *engine) run(parent context.Context, in *input, j *journal) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	o := e.o
	slots := make(chan struct{}, o.Window)
	jobs := make(chan []*item, o.Concurrency)
	results := make(chan []result, 2*o.Concurrency)

	var readErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(jobs)
		var pending []*item
		readErr = in.each(j.synced.next, func(it *item) error {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			pending = append(pending, it)
			if len(pending) < o.Batch {
				return nil
			}
			select {
			case jobs <- pending:
				pending = nil
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if readErr == nil && len(pending) > 0 {
			select {
			case jobs <- pending:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil && errors.Is(readErr, ctx.Err()) {
			readErr = nil // ctx's end is reported below
		}
		if readErr != nil {
			cancel()
		}
	})
	for range o.Concurrency {
		wg.Go(func() {
			for job := range jobs {
				rs := e.do(ctx, job)
				if ctx.Err() != nil {
					return // an answer cut short is not the item's: it is sent again next time
				}
				results <- rs
			}
		})
	}
	go func() { wg.Wait(); close(results) }()

	p := newProgress(o, in.total, j.synced.next)
	syncTick := time.NewTicker(syncEvery)
	defer syncTick.Stop()
	progTick := time.NewTicker(p.every)
	defer progTick.Stop()
	ring := make([]*result, o.Window)
	var commitErr error
	commit := func(rs []result) {
		for i := range rs {
			ring[rs[i].index%o.Window] = &rs[i]
		}
		for commitErr == nil {
			r := ring[j.at.next%o.Window]
			if r == nil || r.index != j.at.next {
				return
			}
			ring[j.at.next%o.Window] = nil
			if commitErr = j.add(r.line, r.failed); commitErr != nil {
				cancel()
				return
			}
			<-slots
		}
	}
	for open := true; open; {
		select {
		case rs, ok := <-results:
			if !ok {
				open = false
				break
			}
			commit(rs)
		case <-syncTick.C:
			if err := j.sync(); err != nil && commitErr == nil {
				commitErr = err
				cancel()
			}
		case <-progTick.C:
			p.print(j.at, false)
		}
	}
	err := j.sync()
	p.print(j.at, true)
	switch {
	case commitErr != nil:
		return fmt.Errorf("writing the results: %w", commitErr)
	case err != nil:
		return fmt.Errorf("writing the results: %w", err)
	case readErr != nil:
		return readErr
	case parent.Err() != nil:
		return fmt.Errorf("%w (%d of %d done): %w", ErrIncomplete, j.at.next, in.total, parent.Err())
	case j.at.next != in.total:
		return fmt.Errorf("%w: %d of %d items committed", ErrIncomplete, j.at.next, in.total)
	}
	return nil
}

// do sends a job's items and returns their results; when ctx ends first
// what it returns is not used.
func (e *engine) do(ctx context.Context, job []*item) []result {
	rs := make([]result, 0, len(job))
	var send []*item
	for _, it := range job {
		if it.path != "" && it.body == nil {
			b, err := os.ReadFile(it.path)
			if err != nil {
				rs = append(rs, failureLine(it, 0, fmt.Sprintf("reading %s: %v", it.file, err)))
				continue
			}
			it.body = b
		}
		send = append(send, it)
	}
	// A packed row is checked as it is packed; a row sent alone, below.
	if len(send) > 1 {
		bodies := make([][]byte, len(send))
		for i, it := range send {
			bodies[i] = it.body
		}
		if p, err := pack(bodies, &e.requests); err == nil {
			a, err := e.send(ctx, p.body, "application/json")
			if err != nil {
				return nil
			}
			switch {
			case a.status >= 200 && a.status <= 299:
				status := strconv.Itoa(a.status)
				lineHead := func(dst []byte, i int) []byte {
					dst = appendWhere(dst, send[i])
					dst = append(dst, `,"status":`...)
					dst = append(dst, status...)
					return append(dst, `,"output":`...)
				}
				if lines, err := p.split(a.body, &e.responses, lineHead, "}\n"); err == nil {
					for i, it := range send {
						rs = append(rs, result{index: it.index, line: lines[i]})
					}
					return rs
				}
			case a.status == 0 || retryable(a.status):
				// Transient, and still failing after the retries: each
				// row alone would only fail as many times more.
				for _, it := range send {
					rs = append(rs, failureLine(it, a.status, a.failure()))
				}
				return rs
			}
			// A row the function refused, or an answer that does not split:
			// each row alone gets its own answer.
		}
		e.unpacked.Add(int64(len(send)))
	}
	for _, it := range send {
		if it.line > 0 && !json.Valid(it.body) {
			rs = append(rs, failureLine(it, 0, fmt.Sprintf("line %d: %v", it.line, syntaxError(it.body))))
			continue
		}
		a, err := e.send(ctx, it.body, it.ctype)
		if err != nil {
			return nil
		}
		if a.status >= 200 && a.status <= 299 {
			rs = append(rs, outputLine(it, a.status, a.ctype, a.body))
		} else {
			rs = append(rs, failureLine(it, a.status, a.failure()))
		}
		it.body = nil
	}
	return rs
}

// where writes the item's index and origin: "index", then "line" (JSONL)
// or "file" (a directory).
func where(b *bytes.Buffer, it *item) {
	b.Write(appendWhere(b.AvailableBuffer(), it))
}

func appendWhere(dst []byte, it *item) []byte {
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendInt(dst, int64(it.index), 10)
	if it.file != "" {
		var b bytes.Buffer
		writeString(&b, it.file)
		dst = append(dst, `,"file":`...)
		return append(dst, b.Bytes()...)
	}
	dst = append(dst, `,"line":`...)
	return strconv.AppendInt(dst, int64(it.line), 10)
}

// outputLine is a success's line: the answer as JSON in "output" when it
// is JSON, as text in "output_text" when it is text in UTF-8, else in
// "output_base64", with its "content_type".
func outputLine(it *item, status int, ctype string, body []byte) result {
	var b bytes.Buffer
	b.Grow(len(body) + 64)
	where(&b, it)
	b.WriteString(`,"status":`)
	b.WriteString(strconv.Itoa(status))
	n := b.Len()
	if jsonType(ctype) || ctype == "" {
		b.WriteString(`,"output":`)
		if err := json.Compact(&b, body); err == nil {
			b.WriteString("}\n")
			return result{index: it.index, line: b.Bytes()}
		}
		b.Truncate(n)
	}
	mt, _, _ := mime.ParseMediaType(ctype)
	if strings.HasPrefix(mt, "text/") && utf8.Valid(body) {
		b.WriteString(`,"output_text":`)
		writeString(&b, string(body))
	} else {
		b.WriteString(`,"output_base64":"`)
		b.WriteString(base64.StdEncoding.EncodeToString(body))
		b.WriteByte('"')
	}
	if ctype != "" {
		b.WriteString(`,"content_type":`)
		writeString(&b, ctype)
	}
	b.WriteString("}\n")
	return result{index: it.index, line: b.Bytes()}
}

func failureLine(it *item, status int, reason string) result {
	var b bytes.Buffer
	where(&b, it)
	b.WriteString(`,"status":`)
	b.WriteString(strconv.Itoa(status))
	b.WriteString(`,"error":`)
	writeString(&b, reason)
	b.WriteString("}\n")
	return result{index: it.index, line: b.Bytes(), failed: true}
}

func jsonType(ctype string) bool {
	mt, _, err := mime.ParseMediaType(ctype)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// NewClient is an HTTP client for a job of n requests at a time: it keeps
// n connections alive to the function (net/http's default keeps 2, and a
// job would open and close the others for every request). With local,
// for a function on this machine, it does not ask for gzip'd answers:
// compressing and uncompressing them costs both sides CPU and saves no
// network.
func NewClient(n int, local bool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = max(t.MaxIdleConns, 2*n)
	t.MaxIdleConnsPerHost = 2 * n
	t.DisableCompression = local
	return &http.Client{Transport: t}
}

// loopback reports whether u's host is this machine.
func loopback(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	h := p.Hostname()
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
