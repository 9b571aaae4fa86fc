package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
)

// runawayEnv makes the test binary a function process: TestMain serves the
// runaway predictor with runtime.Main, as a generated main does.
const runawayEnv = "CORTEX_TEST_RUNAWAY_FUNCTION"

func TestMain(m *testing.M) {
	if os.Getenv(runawayEnv) != "" {
		runtime.Main(runaway{})
		return
	}
	os.Exit(m.Run())
}

var spins atomic.Int64

// runaway is a Go predictor with a bug: ?spin=1 loops forever, ignoring
// its context, as a prediction stuck in a loop or in a cgo call does.
// ?block=1 is a well-behaved prediction that takes as long as the test
// wants: it returns when the test closes the process's stdin.
type runaway struct{}

func (runaway) Predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	switch {
	case req.Query.Get("spin") == "1":
		for i := int64(0); ; i++ {
			spins.Store(i)
		}
	case req.Query.Get("block") == "1":
		_, _ = io.Copy(io.Discard, os.Stdin)
	}
	return functions.Text(http.StatusOK, "done"), nil
}

// TestOverrunReplacesProcess: Go cannot stop a goroutine, so a prediction
// that loops forever is stopped by replacing its process. Its caller gets
// 504 at the deadline; once it has overrun its deadline by
// limits.overrun_grace the function reports itself unhealthy (/healthz
// and /readyz 503), refuses new requests with 503 and Retry-After, lets
// the other in-flight predictions finish, and exits with ExitReplace so
// that its supervisor starts a new one.
func TestOverrunReplacesProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a function process for several seconds")
	}
	dir := t.TempDir()
	// The timeout is longer than the grace, so a prediction admitted just
	// after the runaway's 504 is still within its own deadline when the
	// runaway's grace ends: it is the in-flight work the process drains.
	// Both are long enough to leave seconds for each step on a busy
	// machine.
	cfg := filepath.Join(dir, "function.json")
	if err := os.WriteFile(cfg, []byte(`{"name": "runaway", "limits": {"timeout": "6s", "overrun_grace": "3s"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), runawayEnv+"=1", "CORTEX_CONFIG="+cfg, "CORTEX_HOST=127.0.0.1", "PORT=0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := watchLog(t, cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{}) // closed once waitErr is set
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("function log:\n%s", logs.text())
		}
	})

	var addr string
	waitFor(t, func() bool {
		for _, l := range logs.lines() {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "listening" {
				addr = rec.Addr
				return true
			}
		}
		return false
	})
	base := "http://" + addr
	waitFor(t, func() bool { a, err := try("GET", base+"/readyz", nil); return err == nil && a.status == 200 })

	if a := do(t, "POST", base+"/predict?spin=1", "text/plain", strings.NewReader("x")); a.status != http.StatusGatewayTimeout {
		t.Fatalf("runaway prediction: %d %s, want 504 at the deadline", a.status, a.body)
	}
	blocked := make(chan answer, 1)
	go func() {
		a, err := try("POST", base+"/predict?block=1", strings.NewReader("x"))
		if err != nil {
			a.body = err.Error()
		}
		blocked <- a
	}()
	waitFor(t, func() bool { return scrapeURL(t, base, "cortex_requests_in_flight") == 2 })
	// The runaway runs on past its deadline, and the function says so.
	waitFor(t, func() bool { return scrapeURL(t, base, "cortex_overrunning_predictions") == 1 })

	waitFor(t, func() bool { a, err := try("GET", base+"/healthz", nil); return err == nil && a.status == 503 })
	if a := do(t, "GET", base+"/healthz", "", nil); !strings.Contains(a.body, "overrun_grace") {
		t.Errorf("/healthz says %s; want the reason, naming limits.overrun_grace", a.body)
	}
	if a := do(t, "GET", base+"/readyz", "", nil); a.status != 503 {
		t.Errorf("/readyz once unhealthy: %d, want 503", a.status)
	}
	if a := do(t, "POST", base+"/predict", "text/plain", strings.NewReader("x")); a.status != 503 || a.header.Get("Retry-After") == "" {
		t.Errorf("new prediction once unhealthy: %d (Retry-After %q) %s, want 503 with Retry-After", a.status, a.header.Get("Retry-After"), a.body)
	}
	select {
	case <-exited:
		t.Fatalf("the process exited (%v) with a prediction in flight", waitErr)
	default:
	}

	_ = stdin.Close() // the in-flight prediction finishes
	if a := <-blocked; a.status != 200 || a.body != "done" {
		t.Errorf("in-flight prediction: %d %s, want 200 done", a.status, a.body)
	}
	select {
	case <-exited:
		var ee *exec.ExitError
		if !errors.As(waitErr, &ee) || ee.ExitCode() != runtime.ExitReplace {
			t.Errorf("exit: %v, want exit status %d", waitErr, runtime.ExitReplace)
		}
	case <-time.After(time.Minute):
		t.Fatal("the process did not exit within a minute of its last prediction")
	}
	if !strings.Contains(logs.text(), "overran its deadline") {
		t.Error("the log does not say why the process exits")
	}
}

// try sends one request; for use outside the test's goroutine.
func try(method, url string, body io.Reader) (answer, error) {
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		return answer{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}, err
}

// scrapeURL reads one gauge or counter without labels from base/metrics;
// -1 when it is missing.
func scrapeURL(t *testing.T, base, name string) float64 {
	t.Helper()
	a := do(t, "GET", base+"/metrics", "", nil)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(a.body))
	if err != nil {
		t.Fatal(err)
	}
	f, ok := fams[name]
	if !ok || len(f.GetMetric()) == 0 {
		return -1
	}
	m := f.GetMetric()[0]
	if m.GetGauge() != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}

// processLog keeps a process's stderr.
type processLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// watchLog sends cmd's stderr to a processLog; cmd.Wait returns once all
// of it is kept.
func watchLog(t *testing.T, cmd *exec.Cmd) *processLog {
	t.Helper()
	l := &processLog{}
	cmd.Stderr = l
	return l
}

func (l *processLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *processLog) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *processLog) lines() []string { return strings.Split(l.text(), "\n") }
