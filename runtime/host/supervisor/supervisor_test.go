//go:build unix

package supervisor_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/host/supervisor"
)

// The test binary is also the function the tests supervise: with
// $SUPERVISOR_TEST_CHILD set, TestMain runs child(os.Args[1]) instead of
// the tests.
const childEnv = "SUPERVISOR_TEST_CHILD"

// raceQuick keeps a child built with -race from sleeping a second before
// it exits (the race runtime's atexit_sleep_ms), which every Stop would
// wait for.
const raceQuick = "GORACE=atexit_sleep_ms=0"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		child(os.Args[1])
		return
	}
	os.Exit(m.Run())
}

// child is a stand-in for a function binary.
//
//	serve   an HTTP server on $CORTEX_HOST:$PORT: /readyz answers 200 once
//	        $READY_AFTER has passed (never with $NEVER_READY), /env the
//	        environment it got (?all=1: every variable), /exit?code=N exits; it says hello on stdout
//	        and stderr, and on SIGTERM says "draining" and exits 0 (unless
//	        $IGNORE_TERM is set). With $GRANDCHILD it first starts a
//	        grandchild that ignores SIGTERM and prints "grandchild PID"
//	        ($GRANDCHILD=pipe: the grandchild also holds the output pipe).
//	fail    writes 12 numbered lines to stderr and exits 3.
//	exit    exits with status $EXIT_CODE.
//	sleep   ignores SIGTERM and sleeps a minute.
func child(mode string) {
	switch mode {
	case "fail":
		for i := 1; i <= 12; i++ {
			fmt.Fprintf(os.Stderr, "line %d\n", i)
		}
		os.Exit(3)
	case "exit":
		code, _ := strconv.Atoi(os.Getenv("EXIT_CODE"))
		os.Exit(code)
	case "sleep":
		signal.Ignore(syscall.SIGTERM)
		time.Sleep(time.Minute)
		os.Exit(0)
	case "serve":
		serve()
	}
	fmt.Fprintln(os.Stderr, "unknown mode", mode)
	os.Exit(2)
}

func serve() {
	if g := os.Getenv("GRANDCHILD"); g != "" {
		exe, _ := os.Executable()
		cmd := exec.Command(exe, "sleep")
		if g == "pipe" {
			cmd.Stdout = os.Stdout
		}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("grandchild", cmd.Process.Pid)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fmt.Println("hello stdout")
	fmt.Fprintln(os.Stderr, "hello stderr")
	readyAfter, _ := time.ParseDuration(os.Getenv("READY_AFTER"))
	readyAt := time.Now().Add(readyAfter)
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if os.Getenv("NEVER_READY") != "" || time.Now().Before(readyAt) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("all") == "1" {
			_ = json.NewEncoder(w).Encode(os.Environ())
			return
		}
		wd, _ := os.Getwd()
		_ = json.NewEncoder(w).Encode(map[string]string{
			"PORT": os.Getenv("PORT"), "CORTEX_HOST": os.Getenv("CORTEX_HOST"), "EXTRA": os.Getenv("EXTRA"), "wd": wd})
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		os.Exit(code)
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("CORTEX_HOST"), os.Getenv("PORT")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() { _ = http.Serve(ln, mux) }()
	for range term {
		fmt.Println("draining")
		if os.Getenv("IGNORE_TERM") == "" {
			os.Exit(0)
		}
	}
}

// start supervises the test binary as a child in mode, with env, its
// output prefixed "[t] " into logs. Cleanup kills whatever is left.
func start(t *testing.T, mode string, logs *testutil.SyncBuffer, env ...string) *supervisor.Process {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := supervisor.Config{
		Name:    "t",
		Command: []string{exe, mode},
		Env:     append([]string{childEnv + "=1", raceQuick}, env...),
		Prefix:  "[t] ",
	}
	if logs != nil {
		c.Output = supervisor.NewOutput(logs)
	}
	p, err := supervisor.Start(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill("test over")
		<-p.Done()
	})
	return p
}

func done(p *supervisor.Process) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

func TestStartWaitReadyStop(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	dir := t.TempDir()
	exe, _ := os.Executable()
	p, err := supervisor.Start(supervisor.Config{
		Name:    "t",
		Command: []string{exe, "serve"},
		Dir:     dir,
		// PORT and CORTEX_HOST are the supervisor's: these must lose.
		Env:    []string{childEnv + "=1", raceQuick, "READY_AFTER=200ms", "EXTRA=1", "PORT=1", "CORTEX_HOST=0.0.0.0"},
		Output: supervisor.NewOutput(logs),
		Prefix: "[t] ",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill("")
	if pgid, err := syscall.Getpgid(p.PID()); err != nil || pgid != p.PID() {
		t.Errorf("process group of %d: %d (%v), want its own", p.PID(), pgid, err)
	}
	took, err := p.WaitReady(context.Background(), 30*time.Second)
	if err != nil {
		t.Fatalf("WaitReady: %v\n%s", err, logs)
	}
	if took < 200*time.Millisecond {
		t.Errorf("ready after %s, before the child said it was (200ms)", took)
	}

	resp, err := http.Get(p.URL() + "/env")
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]string
	err = json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(p.Addr())
	want := map[string]string{"PORT": port, "CORTEX_HOST": "127.0.0.1", "EXTRA": "1", "wd": dir}
	for k, w := range want {
		if got := env[k]; got != w {
			t.Errorf("child's %s = %q, want %q", k, got, w)
		}
	}
	if got, want := p.URL(), "http://127.0.0.1:"+port; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}

	if err := p.Stop(10 * time.Second); err != nil {
		t.Errorf("Stop of a process that drains on SIGTERM: %v", err)
	}
	if !done(p) {
		t.Error("Stop returned before the process was reaped")
	}
	if got, want := p.ExitReason(), "exited (exit status 0)"; got != want {
		t.Errorf("ExitReason = %q, want %q", got, want)
	}
	for _, line := range []string{"[t] hello stdout\n", "[t] hello stderr\n", "[t] draining\n"} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, logs)
		}
	}
}

// TestInherit: Inherit picks what the process gets of the caller's
// environment; Env, PORT and CORTEX_HOST are set whatever it says.
func TestInherit(t *testing.T) {
	t.Setenv("SUPERVISOR_TEST_KEPT", "kept")
	t.Setenv("SUPERVISOR_TEST_SECRET", "hunter2")
	exe, _ := os.Executable()
	p, err := supervisor.Start(supervisor.Config{
		Command: []string{exe, "serve"},
		Env:     []string{childEnv + "=1", raceQuick, "EXTRA=1"},
		Inherit: func(name string) bool { return name == "SUPERVISOR_TEST_KEPT" },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { p.Kill(""); <-p.Done() }()
	if _, err := p.WaitReady(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(p.URL() + "/env?all=1")
	if err != nil {
		t.Fatal(err)
	}
	var environ []string
	err = json.NewDecoder(resp.Body).Decode(&environ)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		got[name] = true
	}
	for _, name := range []string{"SUPERVISOR_TEST_KEPT", "EXTRA", "PORT", "CORTEX_HOST", childEnv} {
		if !got[name] {
			t.Errorf("the child lacks $%s: %q", name, environ)
		}
	}
	for _, name := range []string{"SUPERVISOR_TEST_SECRET", "PATH", "HOME"} {
		if got[name] {
			t.Errorf("the child has $%s, which Inherit refused: %q", name, environ)
		}
	}
}

func TestWaitReady(t *testing.T) {
	tests := []struct {
		name     string
		mode     string
		env      []string
		timeout  time.Duration
		cancelIn time.Duration // cancel the context after this long
		check    func(t *testing.T, p *supervisor.Process, err error, took time.Duration)
	}{
		{
			name: "timeout", mode: "serve", env: []string{"NEVER_READY=1"}, timeout: 300 * time.Millisecond,
			check: func(t *testing.T, p *supervisor.Process, err error, took time.Duration) {
				var nr *supervisor.NotReadyError
				if !errors.As(err, &nr) || nr.Timeout != 300*time.Millisecond || nr.URL != p.URL()+"/readyz" {
					t.Fatalf("err = %#v, want a NotReadyError for 300ms and %s/readyz", err, p.URL())
				}
				if want := "not ready within 300ms (GET " + p.URL() + "/readyz)"; err.Error() != want {
					t.Errorf("err = %q, want %q", err, want)
				}
				if took < 300*time.Millisecond || took > 10*time.Second {
					t.Errorf("gave up after %s, want 300ms", took)
				}
				if done(p) {
					t.Error("WaitReady stopped the process; the caller decides that")
				}
			},
		},
		{
			name: "exit before ready", mode: "fail", timeout: 30 * time.Second,
			check: func(t *testing.T, p *supervisor.Process, err error, _ time.Duration) {
				if !errors.Is(err, supervisor.ErrExited) {
					t.Fatalf("err = %v, want ErrExited", err)
				}
				var ee *exec.ExitError
				if !errors.As(p.Err(), &ee) || ee.ExitCode() != 3 {
					t.Errorf("Err = %v, want exit status 3", p.Err())
				}
				if got, want := p.ExitReason(), "exited (exit status 3)"; got != want {
					t.Errorf("ExitReason = %q, want %q", got, want)
				}
				var last []string
				for i := 3; i <= 12; i++ {
					last = append(last, fmt.Sprintf("line %d", i))
				}
				if got, want := p.StderrTail(), strings.Join(last, "\n"); got != want {
					t.Errorf("StderrTail = %q, want the last 10 lines %q", got, want)
				}
			},
		},
		{
			name: "context cancelled (Ctrl-C)", mode: "serve", env: []string{"NEVER_READY=1"}, timeout: 30 * time.Second, cancelIn: 200 * time.Millisecond,
			check: func(t *testing.T, p *supervisor.Process, err error, took time.Duration) {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want context.Canceled", err)
				}
				if took > 10*time.Second {
					t.Errorf("returned %s after the cancel", took)
				}
				if done(p) {
					t.Error("WaitReady stopped the process; the caller decides that")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, tt.mode, nil, tt.env...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelIn > 0 {
				time.AfterFunc(tt.cancelIn, cancel)
			}
			began := time.Now()
			_, err := p.WaitReady(ctx, tt.timeout)
			tt.check(t, p, err, time.Since(began))
		})
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	p := start(t, "serve", logs, "IGNORE_TERM=1")
	if _, err := p.WaitReady(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	err := p.Stop(300 * time.Millisecond)
	took := time.Since(began)
	if err == nil || err.Error() != "t did not exit within 300ms of SIGTERM; killed it" {
		t.Errorf("Stop = %v, want it to say the process was killed after the grace period", err)
	}
	if took < 300*time.Millisecond {
		t.Errorf("killed after %s, before the grace period (300ms)", took)
	}
	if !strings.Contains(logs.String(), "[t] draining") {
		t.Errorf("the process never got SIGTERM:\n%s", logs)
	}
	if got, want := p.ExitReason(), "was killed: did not exit within 300ms of SIGTERM"; got != want {
		t.Errorf("ExitReason = %q, want %q", got, want)
	}
	if p.Err() == nil {
		t.Error("Err = nil for a killed process")
	}
}

// The whole process group goes: at Stop, and when the process exits by
// itself leaving a grandchild behind, even one that holds the output pipe.
func TestProcessGroupIsKilled(t *testing.T) {
	tests := []struct {
		name       string
		grandchild string
		end        func(p *supervisor.Process) error
	}{
		{"stop", "1", func(p *supervisor.Process) error { return p.Stop(10 * time.Second) }},
		{"stop, grandchild holds the pipe", "pipe", func(p *supervisor.Process) error { _ = p.Stop(10 * time.Second); return nil }},
		{"exits by itself", "1", func(p *supervisor.Process) error {
			_, _ = http.Get(p.URL() + "/exit?code=0")
			<-p.Done()
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := &testutil.SyncBuffer{}
			p := start(t, "serve", logs, "GRANDCHILD="+tt.grandchild)
			if _, err := p.WaitReady(context.Background(), 30*time.Second); err != nil {
				t.Fatal(err)
			}
			var pid int
			sc := bufio.NewScanner(strings.NewReader(logs.String()))
			for sc.Scan() {
				if _, err := fmt.Sscanf(sc.Text(), "[t] grandchild %d", &pid); err == nil {
					break
				}
			}
			if pid == 0 {
				t.Fatalf("no grandchild PID in the output:\n%s", logs)
			}
			began := time.Now()
			if err := tt.end(p); err != nil {
				t.Errorf("end: %v", err)
			}
			if took := time.Since(began); took > 8*time.Second {
				t.Errorf("the process took %s to end", took)
			}
			// The grandchild is not ours to reap: once killed it may stay
			// a zombie until init collects it, so look at its state, not
			// only its existence.
			for deadline := time.Now().Add(10 * time.Second); !gone(pid); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("grandchild %d still runs after the process ended", pid)
				}
			}
		})
	}
}

// gone reports whether pid no longer runs: it does not exist, or (where
// /proc tells) it is a zombie.
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false // no /proc, or it just went: the next look tells
	}
	// pid (comm) state ...
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

func TestExitedToBeReplaced(t *testing.T) {
	tests := []struct {
		name       string
		mode       string
		env        []string
		kill       string
		want       bool
		wantReason string
	}{
		{"exit status 75", "exit", []string{"EXIT_CODE=75"}, "", true, "exited (exit status 75)"},
		{"another status", "exit", []string{"EXIT_CODE=3"}, "", false, "exited (exit status 3)"},
		{"killed", "sleep", nil, "hung", false, "was killed: hung"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, tt.mode, nil, tt.env...)
			if p.ExitedToBeReplaced() || p.ExitReason() != "" && !done(p) {
				t.Error("a running process reports how it ended")
			}
			if tt.kill != "" {
				p.Kill(tt.kill)
			}
			<-p.Done()
			if got := p.ExitedToBeReplaced(); got != tt.want {
				t.Errorf("ExitedToBeReplaced = %v, want %v", got, tt.want)
			}
			if got := p.ExitReason(); got != tt.wantReason {
				t.Errorf("ExitReason = %q, want %q", got, tt.wantReason)
			}
		})
	}
}

// ExitReplace must be the status the runtime exits with; the supervisor
// does not import the runtime, so this test holds the two together.
func TestExitReplaceIsTheRuntimes(t *testing.T) {
	if supervisor.ExitReplace != runtime.ExitReplace {
		t.Errorf("supervisor.ExitReplace = %d, runtime.ExitReplace = %d", supervisor.ExitReplace, runtime.ExitReplace)
	}
}

func TestProbe(t *testing.T) {
	p := start(t, "serve", nil)
	if _, err := p.WaitReady(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	probe := func(path string) [2]bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		answered, ok := p.Probe(ctx, path)
		return [2]bool{answered, ok}
	}
	if got, want := probe("/healthz"), [2]bool{true, true}; got != want {
		t.Errorf("Probe(/healthz) answered, ok = %v, want %v", got, want)
	}
	if got, want := probe("/nothing-here"), [2]bool{true, false}; got != want {
		t.Errorf("Probe(/nothing-here) answered, ok = %v, want %v (a 404)", got, want)
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got, want := probe("/healthz"), [2]bool{false, false}; got != want {
		t.Errorf("Probe of a stopped process answered, ok = %v, want %v", got, want)
	}
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name string
		c    supervisor.Config
	}{
		{"no command", supervisor.Config{}},
		{"empty command", supervisor.Config{Command: []string{""}}},
		{"no such binary", supervisor.Config{Command: []string{"/nonexistent/cortex-fn"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := supervisor.Start(tt.c); err == nil {
				p.Kill("")
				t.Error("Start succeeded")
			}
		})
	}
}
