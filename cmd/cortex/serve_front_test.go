package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/runtime/host"
)

// brokenServe serves one function that does not build (its model is
// missing), so the front server runs without a build: what these tests
// look at is the front server's, not the function's.
func brokenServe(t *testing.T, o serveOptions) *serveRun {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "iris")
	copyFunctionDir(t, "../../samples/iris", dir)
	if err := os.RemoveAll(filepath.Join(dir, "model")); err != nil {
		t.Fatal(err)
	}
	o.watch = true // else a lone function that does not build ends serve
	return startServe(t, []string{dir}, o, 1)
}

// hostGet sends GET path to the front server under the Host header h.
func hostGet(t *testing.T, s *serveRun, h, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = h
	resp, err := watchClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", path, h, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeAnswersOnlyItsOwnHosts: after DNS rebinding a web page's
// requests carry the page's own name in Host; serve refuses them with 421
// and a JSON error that names the fix, and answers localhost, the address
// it listens on, function.localhost names and --allowed-host names.
func TestServeAnswersOnlyItsOwnHosts(t *testing.T) {
	s := brokenServe(t, serveOptions{allowedHosts: []string{"ml.example.com", "*.corp.example"}})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.base, "http://"))
	for _, h := range []string{"localhost:" + port, "127.0.0.1:" + port, "ml.example.com:" + port, "box.corp.example"} {
		if code, body := hostGet(t, s, h, host.StatusPath); code != http.StatusOK || !strings.Contains(body, `"functions"`) {
			t.Errorf("GET %s, Host %s: %d %s, want 200 with the status", host.StatusPath, h, code, body)
		}
	}
	// A function's .localhost name passes the check (the function itself
	// cannot run: 503 with its build error).
	if code, body := hostGet(t, s, "iris.localhost:"+port, "/predict"); code != http.StatusServiceUnavailable || !strings.Contains(body, "cannot run") {
		t.Errorf("Host iris.localhost: %d %s, want the function's own 503", code, body)
	}
	for _, path := range []string{host.StatusPath, "/iris/predict", "/metrics"} {
		code, body := hostGet(t, s, "attacker.example:"+port, path)
		var v struct{ Error string }
		if code != http.StatusMisdirectedRequest || json.Unmarshal([]byte(body), &v) != nil ||
			!strings.Contains(v.Error, "--allowed-host attacker.example") || strings.Contains(body, "iris") {
			t.Errorf("GET %s, Host attacker.example: %d %s, want 421 with a JSON error naming --allowed-host and nothing of the functions", path, code, body)
		}
	}
}

// TestServeClosesIdleConnections: a keep-alive connection that carries no
// request is closed after the idle timeout.
func TestServeClosesIdleConnections(t *testing.T) {
	const idle = 300 * time.Millisecond
	c := dial(t, brokenServe(t, serveOptions{idleTimeout: idle}))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", host.StatusPath)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	idleSince := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("reading the idle connection: %v, want EOF when serve closes it", err)
	}
	if took := time.Since(idleSince); took > idle+3*time.Second {
		t.Errorf("the idle connection was closed after %s, want about %s", took.Round(time.Millisecond), idle)
	}
}

// TestServeBoundsSlowBodies: a request to one of the host's own routes
// whose body stops coming is cut off at the read timeout and its
// connection closed. (A function's route has the function's bound
// instead: runtime/host's TestSlowBodyFreesTheSlot.)
func TestServeBoundsSlowBodies(t *testing.T) {
	const read = 500 * time.Millisecond
	c := dial(t, brokenServe(t, serveOptions{readTimeout: read}))
	began := time.Now()
	fmt.Fprintf(c, "POST /nope HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nthe first bytes, and no more")
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("reading until serve closes the connection: %v", err)
	}
	if took := time.Since(began); took > read+3*time.Second {
		t.Errorf("the connection with a stalled body was closed after %s, want about %s", took.Round(time.Millisecond), read)
	}
}

// dial opens a connection to s's front server, closed when the test ends.
func dial(t *testing.T, s *serveRun) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestServeWarnsOffLoopback: listening where other machines can reach it
// prints a warning that names the exposure; loopback prints none.
func TestServeWarnsOffLoopback(t *testing.T) {
	s := brokenServe(t, serveOptions{addr: "0.0.0.0:0"})
	logs := s.stderr.String()
	for _, want := range []string{"warning: cortex serve listens on every network interface (", "call every function", "no authentication", "--addr 127.0.0.1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("serve on 0.0.0.0: stderr lacks %q:\n%s", want, logs)
		}
	}
	local := brokenServe(t, serveOptions{})
	if logs := local.stderr.String(); strings.Contains(logs, "warning: cortex serve listens") {
		t.Errorf("serve on 127.0.0.1 warns:\n%s", logs)
	}
	for _, tt := range []struct {
		addr *net.TCPAddr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.168.1.5"), Port: 8080}, "listens on 192.168.1.5:8080, not only"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, "every network interface ([::]:8080)"},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8080}, ""},
	} {
		if got := exposure(tt.addr, false); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("exposure(%s) = %q, want it to contain %q", tt.addr, got, tt.want)
		}
	}
	withToken := exposure(&net.TCPAddr{IP: net.IPv4zero, Port: 8080}, true)
	for _, want := range []string{"requires the token", "in clear", "TLS"} {
		if !strings.Contains(withToken, want) {
			t.Errorf("exposure with a token = %q, want it to say %q", withToken, want)
		}
	}
	if strings.Contains(withToken, "no authentication") {
		t.Errorf("exposure with a token = %q, says there is no authentication", withToken)
	}
}

// TestServeToken: with --token the front refuses requests without it (the
// CLI's client sends it), serves the front page's shell to anyone, never
// prints the token, and a front page left open does not hold up Ctrl-C.
func TestServeToken(t *testing.T) {
	const token = "tok-5e6f7a8b9c0d"
	s := brokenServe(t, serveOptions{token: token})
	code, body := hostGet(t, s, "localhost", host.StatusPath)
	if code != http.StatusUnauthorized || strings.Contains(body, "iris") {
		t.Errorf("GET %s without the token: %d %s, want 401 naming no function", host.StatusPath, code, body)
	}
	if code, body := hostGet(t, s, "localhost", "/"); code != http.StatusOK || !strings.Contains(body, "<table") {
		t.Errorf("GET / without the token: %d %.100s, want the front page's shell", code, body)
	}
	addr := strings.TrimPrefix(s.base, "http://")
	if m, err := host.FetchStatus(context.Background(), host.TokenClient(addr, token), s.base); err != nil || m["iris"].Name != "iris" {
		t.Errorf("FetchStatus with the token: %v, %v", m, err)
	}
	// cortex predict NAME finds it with $CORTEX_SERVE_TOKEN, and says so
	// without.
	t.Setenv(host.TokenEnv, "")
	var hint strings.Builder
	if servesLocally(context.Background(), addr, "iris", &hint) {
		t.Error("servesLocally without the token: true")
	}
	if !strings.Contains(hint.String(), host.TokenEnv) || strings.Contains(hint.String(), token) {
		t.Errorf("servesLocally without the token printed %q, want a hint naming $%s", hint.String(), host.TokenEnv)
	}
	t.Setenv(host.TokenEnv, token)
	if !servesLocally(context.Background(), addr, "iris", io.Discard) {
		t.Error("servesLocally with $CORTEX_SERVE_TOKEN: false")
	}
	if code, _ := hostGet(t, s, "localhost", host.StatusPath); code != http.StatusUnauthorized {
		t.Errorf("a plain client sent the token: %d", code)
	}
	req, _ := http.NewRequest(http.MethodGet, s.base+host.EventsPath, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := watchClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s with the token: %v %v", host.EventsPath, resp, err)
	}
	defer resp.Body.Close()
	began := time.Now()
	s.stop(t)
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("serve took %s to stop with an event stream open, want it to end the stream", took.Round(time.Millisecond))
	}
	logs := s.stderr.String()
	if !strings.Contains(logs, "requires a bearer token") || strings.Contains(logs, token) {
		t.Errorf("stderr should say a token is required and never show it:\n%s", logs)
	}
}

// TestServePortsNamesTheFunctions: --ports for a function that is not
// served is refused, naming the ones that are.
func TestServePortsNamesTheFunctions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "iris")
	copyFunctionDir(t, "../../samples/iris", dir)
	if err := os.RemoveAll(filepath.Join(dir, "model")); err != nil {
		t.Fatal(err)
	}
	err := serveFunctions(context.Background(), []string{dir}, serveOptions{addr: "127.0.0.1:0", watch: true, ports: map[string]int{"irs": 0}}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `--ports irs=0: no function "irs" is served; functions: iris`) {
		t.Errorf("serve --ports irs=0: %v, want an error naming the served functions", err)
	}
}

// TestFitOnHost: cortex serve starts no more processes of a function than
// its compute.cpu fits in the machine's CPUs, as a node fits pods, and
// keeps min_scale.
func TestFitOnHost(t *testing.T) {
	for _, tc := range []struct {
		name     string
		a        host.Autoscaling
		milli    int64
		ncpu     int
		want     int
		narrowed bool
	}{
		{"iris on 2 cores", host.Autoscaling{MaxScale: 4}, 1000, 2, 2, true},
		{"half a core each", host.Autoscaling{MaxScale: 4}, 500, 2, 4, false},
		{"fits already", host.Autoscaling{MaxScale: 2}, 1000, 8, 8, false},
		{"default max_scale", host.Autoscaling{}, 1000, 4, 4, true},
		{"more than the machine", host.Autoscaling{MaxScale: 3}, 4000, 2, 1, true},
		{"min_scale kept", host.Autoscaling{MinScale: 3, MaxScale: 5}, 1000, 2, 3, true},
		{"no cpu asked", host.Autoscaling{MaxScale: 4}, 0, 2, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, narrowed := fitOnHost(tc.a, tc.milli, tc.ncpu)
			if narrowed != tc.narrowed || (narrowed && got != tc.want) {
				t.Errorf("fitOnHost(%+v, %dm, %d CPUs) = %d, %v; want %d, %v", tc.a, tc.milli, tc.ncpu, got, narrowed, tc.want, tc.narrowed)
			}
		})
	}
}
