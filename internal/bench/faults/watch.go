package main

import (
	"github.com/cortexfn/cortex/internal/bench/load"

	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cortexfn/cortex/runtime/host"
)

// pollResult is what a poller saw.
type pollResult struct {
	n        int
	kinds    map[string]int // answers by kind
	failures int
	max      time.Duration
	example  string // the first failure
	// maxProcs, maxQueued: the most processes and queued requests /-/status
	// showed (status poller only).
	maxProcs, maxQueued int
}

type poller struct {
	done chan struct{}
	res  chan pollResult
}

func (p *poller) stop() pollResult { close(p.done); return <-p.res }

// classifier names an answer (or a transport error) and says whether it is
// acceptable.
type classifier func(r *pollResult, status int, header http.Header, body []byte, err error) (kind string, ok bool)

// poll GETs url every interval on a connection of its own until stopped.
func poll(url string, every time.Duration, classify classifier) *poller {
	p := &poller{done: make(chan struct{}), res: make(chan pollResult, 1)}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1}}
	go func() {
		r := pollResult{kinds: map[string]int{}}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				client.CloseIdleConnections()
				p.res <- r
				return
			case <-t.C:
			}
			t0 := time.Now()
			var (
				status int
				header http.Header
				body   []byte
			)
			resp, err := client.Get(url)
			if err == nil {
				status, header = resp.StatusCode, resp.Header
				body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
			}
			r.max = max(r.max, time.Since(t0))
			r.n++
			kind, ok := classify(&r, status, header, body, err)
			r.kinds[kind]++
			if !ok {
				r.failures++
				if r.example == "" {
					r.example = fmt.Sprintf("%s: %s", kind, firstLine(body, err))
				}
			}
		}
	}()
	return p
}

// classifyHealth judges the function's /healthz through the front. It is
// forwarded like any request, so it waits for a slot in the host's queue
// and is refused, with Retry-After, when the queue is full; a process
// being replaced answers it 503 itself. Both are answers; a transport
// error, a 502 or any other status is not.
func classifyHealth(_ *pollResult, status int, header http.Header, body []byte, err error) (string, bool) {
	switch {
	case err != nil:
		return "transport error", false
	case status == http.StatusOK:
		return "200", true
	case status == http.StatusServiceUnavailable && header.Get("Retry-After") != "":
		return "503 + Retry-After: " + refusal(body), true
	case status == http.StatusServiceUnavailable && strings.Contains(string(body), "must be replaced"):
		return "503: the process must be replaced", true
	}
	return fmt.Sprintf("%d", status), false
}

// classifyStatus judges the host's own /-/status, which must answer 200
// with the function's status every time.
func classifyStatus(r *pollResult, status int, _ http.Header, body []byte, err error) (string, bool) {
	if err != nil {
		return "transport error", false
	}
	if status != http.StatusOK {
		return fmt.Sprintf("%d", status), false
	}
	s, err := decodeStatus(body)
	if err != nil {
		return "unreadable", false
	}
	r.maxProcs = max(r.maxProcs, len(s.Processes))
	r.maxQueued = max(r.maxQueued, s.Queued)
	return "200", true
}

func decodeStatus(b []byte) (host.FunctionStatus, error) {
	var all struct {
		Functions []host.FunctionStatus `json:"functions"`
	}
	if err := json.Unmarshal(b, &all); err != nil {
		return host.FunctionStatus{}, err
	}
	for _, f := range all.Functions {
		if f.Name == fnName {
			return f, nil
		}
	}
	return host.FunctionStatus{}, fmt.Errorf("no function %q in /-/status", fnName)
}

func fetchStatus(base string) (host.FunctionStatus, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(base + "/-/status")
	if err != nil {
		return host.FunctionStatus{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return host.FunctionStatus{}, err
	}
	return decodeStatus(b)
}

// procCounts are a function process's own counts, from its /metrics.
type procCounts struct {
	answers504    int64 // cortex_requests_total{code="504"}
	queueTimeouts int64 // cortex_requests_rejected_total{reason="queue_timeout"}: 504s that never ran
	maxOverrun    int64 // the most cortex_overrunning_predictions seen
}

type scraper struct {
	done chan struct{}
	res  chan map[int]procCounts
}

func (s *scraper) stop() map[int]procCounts { close(s.done); return <-s.res }

// scrapeProcesses reads, every interval, the /metrics of every process
// /-/status lists, straight from the process (a scrape is not counted as a
// request). The counts kept for a process are the last read before it
// exited: a lower bound.
func scrapeProcesses(base string, every time.Duration) *scraper {
	s := &scraper{done: make(chan struct{}), res: make(chan map[int]procCounts, 1)}
	client := &http.Client{Timeout: 500 * time.Millisecond}
	get := func(url string) []byte {
		resp, err := client.Get(url)
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK {
			return nil
		}
		return b
	}
	go func() {
		out := map[int]procCounts{}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				client.CloseIdleConnections()
				s.res <- out
				return
			case <-t.C:
			}
			st, err := decodeStatus(get(base + "/-/status"))
			if err != nil {
				continue
			}
			for _, p := range st.Processes {
				b := get("http://" + p.Addr + "/metrics")
				if b == nil {
					continue
				}
				c := out[p.PID]
				c.answers504 = max(c.answers504, metric(b, "cortex_requests_total{", `code="504"`))
				c.queueTimeouts = max(c.queueTimeouts, metric(b, "cortex_requests_rejected_total{", `reason="queue_timeout"`))
				c.maxOverrun = max(c.maxOverrun, metric(b, "cortex_overrunning_predictions", ""))
				out[p.PID] = c
			}
		}
	}()
	return s
}

// metric is the value of the first sample in a Prometheus text exposition
// whose line starts with prefix and contains label; 0 when there is none.
func metric(b []byte, prefix, label string) int64 {
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, prefix) || !strings.Contains(line, label) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0
		}
		return int64(v)
	}
	return 0
}

// refusal names who refused a request with 503, from the error's text.
func refusal(body []byte) string {
	s := string(body)
	switch {
	case strings.Contains(s, "is at capacity") && strings.Contains(s, "max_scale"):
		return "host at capacity"
	case strings.Contains(s, "function is at capacity"):
		return "process at capacity"
	case strings.Contains(s, "exited to be replaced"):
		return "host: the process exited to be replaced"
	case strings.Contains(s, "being replaced"), strings.Contains(s, "must be replaced"):
		return "process being replaced"
	case strings.Contains(s, "shutting down"):
		return "process shutting down"
	case strings.Contains(s, "starting"):
		return "process starting"
	}
	return "other"
}

func firstLine(body []byte, err error) string {
	if err != nil {
		return err.Error()
	}
	s, _, _ := strings.Cut(string(body), "\n")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// Roles of the processes whose resident set is sampled.
const (
	roleHost     = "host"
	roleFunction = "function"
)

// rssSample is a process's resident set at a time.
type rssSample struct {
	at   time.Time
	pid  int
	role string
	rss  int64 // bytes
}

// gaugeSample is a count at a time.
type gaugeSample struct {
	at time.Time
	n  int64
}

// samples is what the sampler read.
type samples struct {
	rss  []rssSample
	slow []gaugeSample // slow-headers connections open
}

// rssSampler reads the resident set of a changing set of processes.
type rssSampler struct {
	mu   sync.Mutex
	pids map[int]string // pid -> role

	done chan struct{}
	res  chan samples
}

func (s *rssSampler) add(pid int, role string) { s.mu.Lock(); s.pids[pid] = role; s.mu.Unlock() }
func (s *rssSampler) remove(pid int)           { s.mu.Lock(); delete(s.pids, pid); s.mu.Unlock() }

func (s *rssSampler) stop() samples { close(s.done); return <-s.res }

// sampleRSS reads VmRSS from /proc/PID/status of every process added,
// and the count slow gives, every interval until stopped. A process that
// is gone is skipped.
func sampleRSS(every time.Duration, slow func() int64) *rssSampler {
	s := &rssSampler{pids: map[int]string{}, done: make(chan struct{}), res: make(chan samples, 1)}
	go func() {
		var out samples
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.mu.Lock()
			pids := make(map[int]string, len(s.pids))
			for k, v := range s.pids {
				pids[k] = v
			}
			s.mu.Unlock()
			now := time.Now()
			for pid, role := range pids {
				if v, err := load.VMRSS(pid); err == nil {
					out.rss = append(out.rss, rssSample{at: now, pid: pid, role: role, rss: v})
				}
			}
			out.slow = append(out.slow, gaugeSample{now, slow()})
			select {
			case <-s.done:
				s.res <- out
				return
			case <-t.C:
			}
		}
	}()
	return s
}
