package wasm_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime/wasm"
)

// The guests that attack the process itself (its memory, its scheduler)
// run in a child process: this test binary again, running
// TestHostileChild with $CORTEX_WASM_HOSTILE naming the scenario. A guest
// that kills or wedges its process then fails its test, not the test
// binary, and the child's peak RSS (VmHWM, reset once the module is
// loaded) is what the guest cost.

const hostileEnv = "CORTEX_WASM_HOSTILE"

// hostileLimit is the memory limit of the hostile scenarios (wasm.memory:
// 64Mi, as in the report that found them), and hostileOverhead what the
// process may grow past it: the Go heap's slack, a stack grown to its
// share by doubling, and the instances' own structures.
const (
	hostileLimitPages = 1024 // 64 MiB
	hostileLimit      = hostileLimitPages * 65536
	hostileOverhead   = 32 << 20
)

// callResult is one call's outcome, as the child reports it.
type callResult struct {
	Status  int    `json:"status"` // 200 for success
	Message string `json:"message,omitempty"`
	Output  []byte `json:"output,omitempty"`
	Trap    bool   `json:"trap,omitempty"` // wraps ErrTrap
	Served  bool   `json:"served"`         // the module answered an ordinary request right after
}

type hostileReport struct {
	Calls    []callResult       `json:"calls"`
	PeakMiB  float64            `json:"peak_mib"` // VmHWM growth over the scenario
	Stats    wasm.Stats         `json:"stats"`
	Measures map[string]float64 `json:"measures,omitempty"`
}

var hostileScenarios = map[string]func(t *testing.T, r *hostileReport){
	"tables": func(t *testing.T, r *hostileReport) {
		m := loadRaw(t, tableGuest(), wasm.Options{Instances: 1, MemoryLimitPages: hostileLimitPages})
		for _, n := range []uint32{1 << 26, 1 << 26, 1 << 26, 0xfffffff0} {
			r.call(m, hostile('g', n))
		}
		r.call(m, hostile('G', 1))
		r.Stats = m.Stats()
	},
	"stack": func(t *testing.T, r *hostileReport) {
		m := loadRaw(t, recursionGuest(), wasm.Options{Instances: 1, MemoryLimitPages: hostileLimitPages})
		r.call(m, hostile('r', 0xffffffff)) // runaway
		r.call(m, hostile('r', 6000))       // deep, within the stack's share
		r.Stats = m.Stats()
	},
	"stack-go": func(t *testing.T, r *hostileReport) {
		m := newModule(t, "misbehave", wasm.Options{Instances: 1, MemoryLimitPages: hostileLimitPages, Logger: quiet(t)})
		resetPeak()
		r.call(m, []byte("recurse:10000000"))
		r.Stats = m.Stats()
	},
	"stack-multi-value": func(t *testing.T, r *hostileReport) {
		m := loadRaw(t, multiValueFrameGuest(), wasm.Options{Instances: 1, MemoryLimitPages: hostileLimitPages})
		r.call(m, hostile('m', 1_000_000))
		r.Stats = m.Stats()
	},
	"loops": func(t *testing.T, r *hostileReport) {
		loops, _ := strconv.Atoi(os.Getenv("LOOPS"))
		r.Measures = uninterruptibleLoops(t, loops, busyGuests[os.Getenv("GUEST")], &r.Calls)
	},
	"recursion-deadline": func(t *testing.T, r *hostileReport) {
		m := loadRaw(t, binaryRecursionGuest(), wasm.Options{Instances: 1, MemoryLimitPages: hostileLimitPages})
		start := time.Now()
		r.callWithin(m, hostile('b', 60), 200*time.Millisecond) // 2^61 calls
		r.Measures = map[string]float64{"call_ms": float64(time.Since(start).Milliseconds())}
		r.Stats = m.Stats()
	},
}

// TestHostileChild runs one scenario when this binary is a hostile
// scenario's child, and prints its report.
func TestHostileChild(t *testing.T) {
	name := os.Getenv(hostileEnv)
	if name == "" {
		t.Skip("runs only as the child of a hostile-guest test")
	}
	var r hostileReport
	hostileScenarios[name](t, &r)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("\nHOSTILE-REPORT %s\n", b)
}

// runHostile runs scenario name in a child process and returns its report;
// the child dying or hanging (for 3 minutes) fails the test.
func runHostile(t *testing.T, name string, env ...string) hostileReport {
	t.Helper()
	return runHostileWithin(t, name, 3*time.Minute, env...)
}

// runHostileWithin is runHostile with the time the child may take.
func runHostileWithin(t *testing.T, name string, timeout time.Duration, env ...string) hostileReport {
	t.Helper()
	if goruntime.GOOS != "linux" {
		t.Skip("measures RSS through /proc")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHostileChild$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), hostileEnv+"="+name), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var r hostileReport
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	found := false
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "HOSTILE-REPORT "); ok {
			found = json.Unmarshal([]byte(rest), &r) == nil
		}
	}
	if err != nil || !found {
		out := stdout.String() + stderr.String()
		t.Fatalf("the process running scenario %s did not survive (%v):\n%s", name, err, tail(out, 3000))
	}
	return r
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// loadRaw loads an assembled guest, quietly, and resets the peak RSS.
func loadRaw(t *testing.T, g rawGuest, opts wasm.Options) *wasm.Module {
	t.Helper()
	opts.Logger = quiet(t)
	m, err := wasm.New(context.Background(), g.write(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	// What compiling freed goes back to the OS: the guest's allocations
	// would reuse it without adding to the RSS.
	debug.FreeOSMemory()
	resetPeak()
	return m
}

// call makes one hostile call, then an ordinary one, and records both and
// the peak RSS so far.
func (r *hostileReport) call(m *wasm.Module, in []byte) { r.callWithin(m, in, time.Minute) }

// callWithin is call with the hostile call's deadline.
func (r *hostileReport) callWithin(m *wasm.Module, in []byte, deadline time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	out, err := m.Preprocess(ctx, in)
	cancel()
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := callResult{Status: 200, Output: out, Trap: errors.Is(err, wasm.ErrTrap)}
	var fe *functions.Error
	if errors.As(err, &fe) {
		c.Status, c.Message = fe.Status, fe.Message
	} else if err != nil {
		c.Status, c.Message = 0, err.Error()
	}
	// Raw guests echo "e..."; the Go guest misbehave echoes "echo:...".
	probe := "e" + strconv.Itoa(len(r.Calls))
	for _, in := range []string{probe, "echo:" + probe} {
		if got, err := m.Preprocess(ctx, []byte(in)); err == nil && string(got) == probe {
			c.Served = true
		}
	}
	r.Calls = append(r.Calls, c)
	r.PeakMiB = float64(peakRSS()) / (1 << 20)
}

var rssBase uint64

// resetPeak resets the process's peak RSS to its current RSS and
// remembers that as the base the peak is measured from.
func resetPeak() {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	rssBase = procStatus("VmRSS")
}

// peakRSS is the growth of the peak RSS over the base.
func peakRSS() uint64 {
	if hwm := procStatus("VmHWM"); hwm > rssBase {
		return hwm - rssBase
	}
	return 0
}

func procStatus(field string) uint64 {
	b, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func wantPeak(t *testing.T, r hostileReport) {
	t.Helper()
	t.Logf("peak RSS growth %.1f MiB (limit 64 MiB + %d MiB overhead)", r.PeakMiB, hostileOverhead>>20)
	if r.PeakMiB*(1<<20) > hostileLimit+hostileOverhead {
		t.Errorf("the process grew by %.0f MiB under a memory limit of 64 MiB", r.PeakMiB)
	}
}

func wantServedAfter(t *testing.T, calls []callResult) {
	t.Helper()
	for i, c := range calls {
		if !c.Served {
			t.Errorf("call %d: the next request was not served", i)
		}
	}
}

// TestHostileTables: a guest that grows a table by 2^26 elements (512 MiB
// of host memory in wazero) three times and then by 0xfffffff0 (which
// killed the process) gets -1 from table.grow: a table without a maximum
// cannot grow. The guest then fails its calls with its 422 as it likes,
// and keeps its instance, which holds nothing more than before.
func TestHostileTables(t *testing.T) {
	r := runHostile(t, "tables")
	for i, c := range r.Calls[:4] {
		if c.Status != 422 || c.Message != "table grown" {
			t.Errorf("grow %d: got %d %q, want the guest's 422 \"table grown\"", i, c.Status, c.Message)
		}
	}
	if got := r.Calls[4]; got.Status != 200 || len(got.Output) != 4 || int32(binary.LittleEndian.Uint32(got.Output)) != -1 {
		t.Errorf("table.grow(1) on a table without a maximum: got %d %x, want -1", got.Status, got.Output)
	}
	wantServedAfter(t, r.Calls)
	wantPeak(t, r)
}

// TestHostileStack: runaway recursion traps at the stack's share of the
// memory limit (1/16: 4 MiB of 64 MiB) with a 500 that says so, before
// wazero's own ceiling (~100 MB of stack, which took the process from 54
// to 459 MB); a deep recursion that succeeds within it has its instance
// replaced, as the stack never shrinks.
func TestHostileStack(t *testing.T) {
	r := runHostile(t, "stack")
	const msg = "wasm stage preprocess trapped: stack overflow (its call stack is limited to 4 MiB, 1/16 of its memory limit)"
	if c := r.Calls[0]; c.Status != 500 || !c.Trap || c.Message != msg {
		t.Errorf("runaway recursion: got %d %q (trap %v), want 500 %q", c.Status, c.Message, c.Trap, msg)
	}
	if c := r.Calls[1]; c.Status != 200 || binary.LittleEndian.Uint32(c.Output) != 6000 {
		t.Errorf("recursion 6000 deep: got %d %q %x, want 200 and 6000", c.Status, c.Message, c.Output)
	}
	if got := r.Stats.Discards[wasm.DiscardStackLimit]; got != 1 {
		t.Errorf("got %d stack_limit discards, want 1", got)
	}
	if got := r.Stats.Discards[wasm.DiscardRecycle]; got != 1 {
		t.Errorf("got %d recycle discards, want 1 (the instance whose stack grew deep)", got)
	}
	wantServedAfter(t, r.Calls)
	wantPeak(t, r)

	t.Run("go guest", func(t *testing.T) {
		r := runHostile(t, "stack-go")
		if c := r.Calls[0]; c.Status != 500 || !strings.HasPrefix(c.Message, "wasm stage preprocess trapped: stack overflow (its call stack is limited to 4 MiB") {
			t.Errorf("recursion 10^7 deep: got %d %q, want a 500 stack overflow", c.Status, c.Message)
		}
		wantServedAfter(t, r.Calls)
		wantPeak(t, r)
	})

	// Frames far larger than their instructions: each call of a function
	// returning 1000 values makes 1000 values (the estimate counted one),
	// and f keeps 100 calls' worth across its recursive call. Its frames
	// were ~40 times their estimate, so the stack grew to wazero's own
	// ceiling before the limit noticed.
	t.Run("multi-value calls", func(t *testing.T) {
		r := runHostile(t, "stack-multi-value")
		if c := r.Calls[0]; c.Status != 500 || !c.Trap || c.Message != msg {
			t.Errorf("runaway recursion with 100000 values a frame: got %d %q (trap %v), want 500 %q", c.Status, c.Message, c.Trap, msg)
		}
		if got := r.Stats.Discards[wasm.DiscardStackLimit]; got != 1 {
			t.Errorf("got %d stack_limit discards, want 1", got)
		}
		wantServedAfter(t, r.Calls)
		wantPeak(t, r)
	})
}

// TestHostileUninterruptibleLoops: guests looping in uninterruptible
// stages (no termination checks, so native code the Go scheduler cannot
// preempt) on GOMAXPROCS=2 must leave the process answering: with two
// loops no P was left for anything else; with one, the next GC's
// stop-the-world waited for the loop and stopped every goroutine. The
// health check here is an HTTP round trip in the same process, every 10
// ms, while a goroutine allocates as request handling does; the worst gap
// between two answered checks must stay under 750 ms and half the loops'
// time (it was all of it).
func TestHostileUninterruptibleLoops(t *testing.T) {
	testUninterruptible(t, "")
}

// testUninterruptible runs the scenario of TestHostileUninterruptibleLoops
// with busyGuests[guest].
func testUninterruptible(t *testing.T, guest string) {
	for _, loops := range []int{2, 1} {
		t.Run(fmt.Sprintf("%d loops", loops), func(t *testing.T) {
			r := runHostile(t, "loops", "GOMAXPROCS=2", "LOOPS="+strconv.Itoa(loops), "GUEST="+guest)
			t.Logf("loops %.0f ms, longest gap between health checks %.0f ms", r.Measures["loop_ms"], r.Measures["health_gap_ms"])
			for i, c := range r.Calls {
				if c.Status != 200 {
					t.Errorf("loop %d: got %d %q, want it to finish", i, c.Status, c.Message)
				}
			}
			wantServedAfter(t, r.Calls)
			loop := r.Measures["loop_ms"]
			if loop < 1500 {
				t.Fatalf("the loops took %.0f ms, too short to show a stall", loop)
			}
			if worst := r.Measures["health_gap_ms"]; worst > min(750, loop/2) {
				t.Errorf("no health check was answered for %.0f ms while the loops ran (%.0f ms)", worst, r.Measures["loop_ms"])
			}
		})
	}
}

// busyGuest is a guest that computes for as long as its input says, and
// the input that keeps it busy for about 3 s (measured on m).
type busyGuest struct {
	guest rawGuest
	input func(t *testing.T, m *wasm.Module) []byte
}

// busyGuests are what the uninterruptible scenarios run, by $GUEST: a loop
// that calls nothing, or recursion without a loop.
var busyGuests = map[string]busyGuest{
	"": {loopGuest(), func(t *testing.T, m *wasm.Module) []byte {
		took := fastest(t, m, hostile('l', 50_000_000))
		return hostile('l', uint32(min(3*float64(time.Second)/float64(took)*50e6, 4e9)))
	}},
	"recursion": {binaryRecursionGuest(), func(t *testing.T, m *wasm.Module) []byte {
		const n = 22 // 2^23 calls
		took := fastest(t, m, hostile('b', n))
		// f(n+1) takes twice as long as f(n): round up, so that the call
		// takes 3 to 6 s at the calibration's speed.
		more := math.Ceil(math.Log2(3 * float64(time.Second) / float64(took)))
		return hostile('b', uint32(n+max(more, 0)))
	}},
}

// fastest is the shortest of three runs of in on m: the speed the machine
// can reach. A busy machine (other tests, other builds) only slows a run,
// so one slowed calibration run made the real call, on a machine that had
// become idle, too short to show a stall.
func fastest(t *testing.T, m *wasm.Module, in []byte) time.Duration {
	best := time.Duration(math.MaxInt64)
	for range 3 {
		start := time.Now()
		if _, err := m.Preprocess(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	return best
}

// TestHostileRecursionWithoutLoops: a guest that recurses without a loop,
// f(n){ if n { f(n-1); f(n-1) } }, makes 2^n calls at a depth of n, so
// the stack limit never stops it, and wazero left native code only at loop
// headers (its termination checks, the yields) and to grow the stack: an
// interruptible call ignored its deadline and ran for good (n = 60), and
// an uninterruptible one stalled the process like a loop. Every function
// entry now has what a loop header has.
func TestHostileRecursionWithoutLoops(t *testing.T) {
	t.Run("interruptible", func(t *testing.T) {
		r := runHostileWithin(t, "recursion-deadline", 30*time.Second)
		t.Logf("the call took %.0f ms under a 200 ms deadline", r.Measures["call_ms"])
		if c := r.Calls[0]; c.Status != 504 || !strings.HasPrefix(c.Message, "wasm stage preprocess timed out") {
			t.Errorf("2^61 calls under a 200 ms deadline: got %d %q, want 504 timed out", c.Status, c.Message)
		}
		if got := r.Stats.Discards[wasm.DiscardDeadline]; got != 1 {
			t.Errorf("got %d deadline discards, want 1", got)
		}
		wantServedAfter(t, r.Calls)
	})
	t.Run("uninterruptible", func(t *testing.T) { testUninterruptible(t, "recursion") })
}

// uninterruptibleLoops runs loops uninterruptible calls of ~3s of g at
// once and health checks beside them; it returns the calls' time and the
// longest gap between health checks.
func uninterruptibleLoops(t *testing.T, loops int, g busyGuest, calls *[]callResult) map[string]float64 {
	m := loadRaw(t, g.guest, wasm.Options{Instances: loops, Uninterruptible: true, MemoryLimitPages: hostileLimitPages})
	ctx := context.Background()
	in := g.input(t, m)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	stop := make(chan struct{})
	var allocs sync.WaitGroup
	allocs.Go(func() { // request handling allocates; this makes the GC run
		var keep [][]byte
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			keep = append(keep, make([]byte, 256<<10))
			if len(keep) > 16 {
				keep = keep[:0]
			}
		}
	})

	results := make([]callResult, loops)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range loops {
		wg.Go(func() {
			_, err := m.Preprocess(ctx, in)
			results[i] = callResult{Status: functions.StatusOf(err)}
			if err == nil {
				results[i].Status = 200
			} else {
				results[i].Message = err.Error()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// The worst gap between two answered health checks: a stalled process
	// stalls the checker too, so timing one round trip would miss it.
	var worst time.Duration
	client := &http.Client{Timeout: time.Minute}
	last := time.Now()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-time.After(10 * time.Millisecond):
		}
		if resp, err := client.Get(srv.URL); err == nil {
			resp.Body.Close()
		}
		worst = max(worst, time.Since(last))
		last = time.Now()
	}
	loopTime := time.Since(t0)
	close(stop)
	allocs.Wait()
	for i := range results {
		probe := "e" + strconv.Itoa(i)
		got, err := m.Preprocess(ctx, []byte(probe))
		results[i].Served = err == nil && string(got) == probe
	}
	*calls = results
	return map[string]float64{
		"loop_ms":       float64(loopTime.Milliseconds()),
		"health_gap_ms": float64(worst.Milliseconds()),
	}
}

// TestHostileLogs: one call writing 20000 lines of 4 KiB (80 MiB) through
// cortex.log, then calls within their own share but over the module's
// share of a second. What is over the limits is dropped and counted, and
// one line says how much.
func TestHostileLogs(t *testing.T) {
	var logs countingWriter
	m, err := wasm.New(context.Background(), logGuest().write(t), wasm.Options{
		Instances: 1,
		Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.SetLogClock(func() time.Time { return now })

	flood := binary.LittleEndian.AppendUint32(hostile('L', 20000), 4096)
	if _, err := m.Preprocess(context.Background(), flood); err != nil {
		t.Fatal(err)
	}
	// 64 KiB a call: 16 lines of 4 KiB.
	if got := logs.lines("msg=xxxx"); got != 16 {
		t.Errorf("the flood wrote %d lines, want 16 (64 KiB)", got)
	}
	if logs.n > 128<<10 {
		t.Errorf("the flood wrote %d bytes of log, want at most 128 KiB", logs.n)
	}
	s := m.Stats()
	if s.LogDropped != 20000-16 || s.LogDroppedBytes != (20000-16)*4096 {
		t.Errorf("got %d lines (%d bytes) dropped, want %d (%d bytes)", s.LogDropped, s.LogDroppedBytes, 20000-16, (20000-16)*4096)
	}
	if got := logs.lines("dropped_lines=19984 dropped_bytes=81854464"); got != 1 {
		t.Errorf("got %d lines saying how much was dropped, want 1:\n%s", got, tail(logs.text(), 2000))
	}

	// A new second: 20 calls of 100 one-byte lines, 1000 over the second's
	// 1000. The first call that drops writes the summary; the rest of the
	// second's drops wait for the next one (here: Close).
	now = now.Add(2 * time.Second)
	for range 20 {
		if _, err := m.Preprocess(context.Background(), binary.LittleEndian.AppendUint32(hostile('L', 100), 1)); err != nil {
			t.Fatal(err)
		}
	}
	if got := logs.lines("msg=x "); got != 1000 {
		t.Errorf("got %d one-byte lines in one second, want 1000", got)
	}
	if got := m.Stats().LogDropped - s.LogDropped; got != 1000 {
		t.Errorf("got %d more lines dropped, want 1000", got)
	}
	if out, err := m.Preprocess(context.Background(), []byte("e-served")); err != nil || string(out) != "e-served" {
		t.Errorf("after the floods: got %q, %v", out, err)
	}
	m.Close(context.Background())
	if a, b := logs.lines("dropped_lines=100 "), logs.lines("dropped_lines=900 "); a != 1 || b != 1 {
		t.Errorf("got summaries of 100 and 900 dropped lines %d and %d times, want once each:\n%s", a, b, tail(logs.text(), 2000))
	}
}

// loadLogged loads an assembled guest whose logs are under test.
func loadLogged(t *testing.T, g rawGuest, logs *countingWriter) *wasm.Module {
	t.Helper()
	m, err := wasm.New(context.Background(), g.write(t), wasm.Options{Instances: 1, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// TestLogSummaryDue: the summary of dropped lines is written by the first
// call to end once one is due, whoever dropped them: a call suppressed in
// the second of an earlier summary, or the instantiation (its _initialize
// is limited by the module's share of a second). It used to wait for a
// call that dropped lines itself, or for Close.
func TestLogSummaryDue(t *testing.T) {
	t.Run("suppressed call", func(t *testing.T) {
		var logs countingWriter
		m := loadLogged(t, logGuest(), &logs)
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		m.SetLogClock(func() time.Time { return now })
		over := binary.LittleEndian.AppendUint32(hostile('L', 150), 1) // 50 over a call's 100 lines
		for range 2 {
			if _, err := m.Preprocess(context.Background(), over); err != nil {
				t.Fatal(err)
			}
		}
		if got := logs.lines("dropped_lines=50 "); got != 1 {
			t.Fatalf("got %d summaries after two calls in one second, want 1 (the second is not due):\n%s", got, logs.text())
		}
		now = now.Add(2 * time.Second)
		if out, err := m.Preprocess(context.Background(), []byte("e-quiet")); err != nil || string(out) != "e-quiet" {
			t.Fatalf("got %q, %v", out, err)
		}
		if got := logs.lines("dropped_lines=50 "); got != 2 {
			t.Errorf("got %d summaries once the second call's was due, want 2:\n%s", got, logs.text())
		}
	})
	t.Run("instantiation", func(t *testing.T) {
		var logs countingWriter
		// 2500 lines: at least 500 over the share of a second, even if
		// _initialize runs across the turn of one.
		m := loadLogged(t, initLogGuest(2500), &logs)
		dropped := m.Stats().LogDropped
		if dropped < 500 {
			t.Fatalf("_initialize had %d lines dropped, want at least 500", dropped)
		}
		if got := logs.lines(fmt.Sprintf("dropped_lines=%d ", dropped)); got != 1 {
			t.Errorf("got %d summaries of %d lines dropped by _initialize after New, want 1:\n%s", got, dropped, tail(logs.text(), 2000))
		}
	})
}

// countingWriter counts what a logger writes and keeps the lines that are
// not guest messages of 4 KiB.
type countingWriter struct {
	mu   sync.Mutex
	n    int
	kept []string
	big  int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n += len(p)
	if bytes.Contains(p, []byte("msg=xxxxxxxx")) {
		w.big++
	} else {
		w.kept = append(w.kept, string(p))
	}
	return len(p), nil
}

func (w *countingWriter) lines(substr string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if substr == "msg=xxxx" {
		return w.big
	}
	n := 0
	for _, l := range w.kept {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func (w *countingWriter) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.kept, "")
}

// TestFrameEstimate: the frame estimate counts every value a function can
// hold, not one an instruction: a call makes as many as its callee
// returns, and a block of a type index as many as its type has parameters
// and results. multiValueFrameGuest's f holds 100000 values (800 KB) that
// its 200 instructions made by calls; its variant makes them by blocks
// that return 1000 values each.
func TestFrameEstimate(t *testing.T) {
	const want = 100 * 1000 * 8
	calls := multiValueFrameGuest()
	blocks := multiValueFrameGuest()
	blocks.funcs[0].code = cat(
		bytes.Repeat([]byte{0x02, 0x04, 0x00, 0x0b}, 100), // block (type 4: () -> 1000 i32) unreachable end
		bytes.Repeat([]byte{0x10, 0x07}, 100),             // call h
		[]byte{0x41, 0x00},
	)
	for name, g := range map[string]rawGuest{"calls": calls, "blocks": blocks} {
		costs, err := wasm.FrameEstimates(g.bytes())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f := costs[3]; f < want { // defined functions: cortex_abi_v1, alloc, preprocess, f
			t.Errorf("%s: f's frame estimate is %d bytes, want at least the %d its values take", name, f, want)
		}
	}
	// Both are modules wazero takes.
	for _, g := range []rawGuest{calls, blocks} {
		loadRaw(t, g, wasm.Options{Instances: 1})
	}
}

// TestBoundKeepsResults: the rewrite wraps every function body in a block
// and turns return into a branch to it. A function with two results that
// leaves by return, by a branch to its own label and by its end must
// answer as before.
func TestBoundKeepsResults(t *testing.T) {
	m := loadRaw(t, multiValueGuest(), wasm.Options{Instances: 1})
	for _, tt := range []struct{ n, want uint32 }{{0, 15}, {1, 3}, {5, 10}} {
		out, err := m.Preprocess(context.Background(), hostile('r', tt.n))
		if err != nil || len(out) != 4 || binary.LittleEndian.Uint32(out) != tt.want {
			t.Errorf("f(%d): got %x, %v; want a + b = %d", tt.n, out, err, tt.want)
		}
	}
}
