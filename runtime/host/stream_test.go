package host_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/runtime/host"
)

// TestStreamThroughTheHost: a streamed prediction reaches the caller event
// by event through the front's proxy and on the function's own port (the
// first event arrives while the predictor waits for the test to have read
// it: nothing buffers it), and a caller that hangs up mid-stream cancels
// the prediction in the process, through the proxy too.
func TestStreamThroughTheHost(t *testing.T) {
	fn, own := directFunction(t, "echo", host.Autoscaling{})
	e := start(t, []host.Function{fn}, fastReports)
	for _, base := range []string{e.srv.URL + "/echo", own} {
		gate := filepath.Join(t.TempDir(), "gate")
		req, _ := http.NewRequest(http.MethodPost, base+"/predict?chunks=3&gate="+gate, strings.NewReader("x"))
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		var first []string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: before the first event ended: %v", base, err)
			}
			if line == "\n" {
				break
			}
			first = append(first, line)
		}
		if err := os.WriteFile(gate, nil, 0o600); err != nil { // the predictor goes on only now
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(br)
		resp.Body.Close()
		if strings.Join(first, "") != "event: output\ndata: chunk 0\n" || !strings.HasSuffix(string(rest), "event: done\ndata: {\"status\":\"succeeded\"}\n\n") ||
			!strings.Contains(string(rest), "data: chunk 2") {
			t.Errorf("%s: first event %q, then %q", base, first, rest)
		}
	}

	// Every stream ends whole: the proxy never cuts one short.
	for i := range 100 {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/echo/predict?chunks=3", strings.NewReader(`{"prompt": "x"}`))
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !strings.HasSuffix(string(b), "event: done\ndata: {\"status\":\"succeeded\"}\n\n") {
			t.Fatalf("stream %d through the front: %v %q", i, err, b)
		}
	}

	for _, base := range []string{e.srv.URL + "/echo", own} {
		before := strings.Count(e.logs.String(), "stream cancelled")
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/predict?chunks=3&hold=1", strings.NewReader("x"))
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
		eventually(t, 5*time.Second, base+": the hang-up did not cancel the prediction", func() bool {
			return strings.Count(e.logs.String(), "stream cancelled") > before
		})
	}
}
