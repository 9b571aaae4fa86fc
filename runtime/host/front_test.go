package host_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/runtime/host"
)

// TestSlowBodyFreesTheSlot sends the headers of a request and then its
// body a byte at a time. Once a process has the request, the body has the
// function's Timeout plus the request grace to arrive: then the caller
// gets 408, its connection is closed and the process's slot is free for
// the next request.
func TestSlowBodyFreesTheSlot(t *testing.T) {
	fn := function("echo", host.Autoscaling{TargetConcurrency: 1, MaxScale: 1})
	fn.Timeout = 400 * time.Millisecond
	const grace = 400 * time.Millisecond
	const bound = 800 * time.Millisecond // Timeout + grace
	e := start(t, []host.Function{fn}, host.WithRequestGrace(grace))
	if a := e.post(t, "/echo/", "warm"); a.status != http.StatusOK {
		t.Fatalf("warm-up: %d %s", a.status, a.body)
	}

	u, _ := url.Parse(e.srv.URL)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	began := time.Now()
	fmt.Fprintf(c, "POST /echo/predict HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n", u.Host)
	go func() {
		for range 1000 {
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to the slow body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(began)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "did not arrive within") {
		t.Errorf("slow body: %d %s, want 408 saying the body did not arrive in time", resp.StatusCode, body)
	}
	if took < bound || took > bound+5*time.Second {
		t.Errorf("slow body answered after %s, want soon after the bound of %s", took.Round(time.Millisecond), bound)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("the 408 has no X-Request-Id")
	}
	// The connection is closed: the rest of the body will never be read.
	if _, err := br.ReadByte(); err == nil {
		t.Error("the connection is still open after the 408")
	}
	eventually(t, 5*time.Second, "the slot was not freed", func() bool { return e.status(t, "echo").InFlight == 0 })
	if a := e.post(t, "/echo/", "next"); a.status != http.StatusOK {
		t.Errorf("request after the slow body: %d %s, want 200 from the freed slot", a.status, a.body)
	}
}

// TestFrontTimeoutsDoNotCutPredictions serves through a front server whose
// own read and write timeouts (for the host's short answers) are far
// shorter than a prediction: a prediction, with a body or without, and a
// request held through a cold start still get their answers.
func TestFrontTimeoutsDoNotCutPredictions(t *testing.T) {
	const short = 300 * time.Millisecond
	e := startFront(t, []host.Function{function("echo", host.Autoscaling{}, "FN_INIT_DELAY=800ms")}, func(s *http.Server) {
		s.ReadTimeout, s.WriteTimeout = short, short
	})
	// A body larger than the socket buffers: most of it is read only
	// once the process is ready.
	big := strings.Repeat("x", 4<<20)
	if a := e.post(t, "/echo/?sleep=10ms", big); a.status != http.StatusOK || a.echo != big {
		t.Errorf("request held through an 800ms cold start: %d %.200s, want 200 echoing its 4 MiB body", a.status, a.body)
	}
	if a := e.post(t, "/echo/?sleep=1s", "slow"); a.status != http.StatusOK || a.echo != "slow" {
		t.Errorf("1s prediction with a body: %d %s, want 200", a.status, a.body)
	}
	resp, err := e.c.Post(e.srv.URL+"/echo/?sleep=1s", "text/plain", nil)
	if err != nil {
		t.Fatalf("1s prediction without a body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("1s prediction without a body: %d, want 200", resp.StatusCode)
	}
}

// TestProcessThatDoesNotAnswerGets504: a process that neither answers nor
// fails within its function's Timeout plus the grace costs its caller a
// 504, not a wait as long as the process likes.
func TestProcessThatDoesNotAnswerGets504(t *testing.T) {
	fn := function("mute", host.Autoscaling{}, "FN_SICKENS=1")
	fn.Timeout = 200 * time.Millisecond
	e := start(t, []host.Function{fn}, host.WithRequestGrace(300*time.Millisecond))
	if a := e.post(t, "/mute/", "warm"); a.status != http.StatusOK {
		t.Fatalf("warm-up: %d %s", a.status, a.body)
	}
	began := time.Now()
	a := e.post(t, "/mute/?sleep=2s", "x")
	if took := time.Since(began); a.status != http.StatusGatewayTimeout || !strings.Contains(a.err, "did not answer within 500ms") || took > 5*time.Second {
		t.Errorf("request to a process that does not answer: %d %s after %s, want 504 after 500ms", a.status, a.body, took.Round(time.Millisecond))
	}
}

// TestProcessEnvironment: a function process gets the host's PATH, locale
// and the like, and its own Env, but none of the rest of the host's
// environment: no cloud credentials.
func TestProcessEnvironment(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	t.Setenv("GITHUB_TOKEN", "ghp_example")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("LC_TIME", "C")
	t.Setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
	t.Setenv("HTTPS_PROXY", "http://proxy.internal:3128")
	e := start(t, []host.Function{function("echo", host.Autoscaling{}, "FN_VERSION=7")})
	resp, err := e.c.Post(e.srv.URL+"/echo/?env=1", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ Env []string }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%d, %v", resp.StatusCode, err)
	}
	names := map[string]string{}
	for _, kv := range v.Env {
		name, value, _ := strings.Cut(kv, "=")
		names[name] = value
	}
	for _, name := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN"} {
		if _, ok := names[name]; ok {
			t.Errorf("the function process has $%s from the host's environment", name)
		}
	}
	for name, want := range map[string]string{"LANG": "C.UTF-8", "LC_TIME": "C", "FN_VERSION": "7",
		"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "HTTPS_PROXY": "http://proxy.internal:3128", "CORTEX_LOG_LEVEL": "warn", "CORTEX_HOST": "127.0.0.1"} {
		if got, ok := names[name]; !ok || got != want {
			t.Errorf("the function process's $%s = %q (set: %t), want %q", name, got, ok, want)
		}
	}
	for _, name := range []string{"PATH", "PORT"} {
		if _, ok := names[name]; !ok {
			t.Errorf("the function process has no $%s: %q", name, slices.Sorted(maps.Keys(names)))
		}
	}
}
