package host_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/runtime/host"
)

// TestBodyCutShortIs400: a caller whose body stops before its
// Content-Length and who then closes its side for writing (as a client
// that dies mid-upload does) gets the 400 the function itself answers. It
// used to get an empty 200: the proxy's error handler took the cancelled
// context for a caller that had gone and wrote nothing, and net/http
// answers 200 for a handler that writes nothing.
func TestBodyCutShortIs400(t *testing.T) {
	e := start(t, []host.Function{function("echo", host.Autoscaling{})})
	warm := e.post(t, "/echo/predict", "warm")
	if warm.status != http.StatusOK {
		t.Fatalf("warm-up: %d %s", warm.status, warm.body)
	}
	u, err := url.Parse(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "POST /echo/predict HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nten bytes.", u.Host)
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Errorf("request %d: no answer: %v", i, err)
			c.Close()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.Close()
		var v struct{ Error string }
		if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(b, &v) != nil || !strings.Contains(v.Error, "reading the request body") {
			t.Errorf("request %d: %d %q, want 400 reading the request body", i, resp.StatusCode, b)
		}
	}
	if a := e.post(t, "/echo/predict", "after"); a.status != http.StatusOK || a.pid != warm.pid {
		t.Errorf("request after: %d from pid %d, want 200 from %d (%s)", a.status, a.pid, warm.pid, a.body)
	}
	if s := e.status(t, "echo"); s.Crashes != 0 {
		t.Errorf("crashes: %d, want 0", s.Crashes)
	}
}

// TestRequestMeetingExitReplaceIs503: a request that is with a process when
// it exits with status 75 (runtime.ExitReplace) gets 503 with Retry-After,
// not a 502 that blames the process. The runtime exits so after a drain, and
// the host forwards to it until it learns, from a probe or from the exit,
// that the process is going: a request handed over in that gap meets the
// exit (internal/bench/faults saw a few per runaway episode). The test
// function exits at once, with a request in flight, to stand for that.
func TestRequestMeetingExitReplaceIs503(t *testing.T) {
	e := start(t, []host.Function{function("echo", host.Autoscaling{})}, host.WithRestartBackoff(time.Minute, time.Minute))
	warm := e.post(t, "/echo/predict", "warm")
	if warm.status != http.StatusOK {
		t.Fatalf("warm-up: %d %s", warm.status, warm.body)
	}
	slow := make(chan answer, 1)
	go func() { slow <- e.post(t, "/echo/predict?sleep=5s", "slow") }()
	eventually(t, 10*time.Second, "the slow request did not reach the process", func() bool {
		return strings.Contains(e.logs.String(), "sleeping 5s")
	})
	if a := e.post(t, "/echo/predict?replace=1", "last"); a.status != http.StatusOK || a.pid != warm.pid {
		t.Fatalf("the request that has it exit: %d from pid %d, want 200 from %d (%s)", a.status, a.pid, warm.pid, a.body)
	}
	a := <-slow
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !strings.Contains(a.err, "exited to be replaced") {
		t.Errorf("request in flight at the exit: %d, Retry-After %q, %s; want 503 with Retry-After, exited to be replaced",
			a.status, a.header.Get("Retry-After"), a.body)
	}
	if next := e.post(t, "/echo/predict", "next"); next.status != http.StatusOK || next.pid == warm.pid {
		t.Errorf("request after: %d from pid %d, want 200 from a new process (%s)", next.status, next.pid, next.body)
	}
	if s := e.status(t, "echo"); s.Crashes != 0 || s.Replaced != 1 {
		t.Errorf("crashes %d, replaced %d; want 0 and 1", s.Crashes, s.Replaced)
	}
}
