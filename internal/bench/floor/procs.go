//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cortexfn/cortex/internal/bench/load"
)

// child is a process this program started.
type child struct {
	name   string
	cmd    *exec.Cmd
	out    *tail
	exited chan struct{}
}

// procs starts children and stops them all in the end: nothing this
// program starts outlives it (and the kernel kills them if it dies; see
// load.DieWithParent).
type procs struct {
	mu   sync.Mutex
	live []*child
	all  []int // every pid started, to check none is left
}

// start starts cmd as a child called name; its output goes to a tail.
func (p *procs) start(name string, cmd *exec.Cmd) (*child, error) {
	c := &child{name: name, cmd: cmd, out: &tail{}, exited: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = c.out
	}
	cmd.Stderr = c.out
	load.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); close(c.exited) }()
	p.mu.Lock()
	p.live = append(p.live, c)
	p.all = append(p.all, cmd.Process.Pid)
	p.mu.Unlock()
	return c, nil
}

// stop ends c: SIGTERM (cortex serve drains its functions on it), then
// SIGKILL after grace.
func (p *procs) stop(c *child, grace time.Duration) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	p.mu.Lock()
	p.live = slices.DeleteFunc(p.live, func(l *child) bool { return l == c })
	p.mu.Unlock()
}

// stopAll stops every child still running, at once.
func (p *procs) stopAll() {
	p.mu.Lock()
	live := slices.Clone(p.live)
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range live {
		wg.Go(func() { p.stop(c, 30*time.Second) })
	}
	wg.Wait()
}

// noneLeft reports any process this program started that still exists.
func (p *procs) noneLeft() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var left []int
	for _, pid := range p.all {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			left = append(left, pid)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("processes still running: %v", left)
	}
	return nil
}

// failed wraps err with what c last wrote, and says so if it had exited.
func (c *child) failed(err error) error {
	select {
	case <-c.exited:
		err = fmt.Errorf("%w (%s exited: %v)", err, c.name, c.cmd.ProcessState)
	default:
	}
	return fmt.Errorf("%s: %w\n--- its output, last lines:\n%s", c.name, err, c.out.String())
}

// tail keeps the last 8 KiB written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - 8<<10; over > 0 {
		t.buf = slices.Delete(t.buf, 0, over)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// isolated is what a function process must not inherit: where to find its
// config and ONNX Runtime, its carrier. It finds all of that beside its
// executable, as in an image (internal/parity does the same).
var isolated = []string{"CORTEX_CONFIG", "CORTEX_ONNXRUNTIME_LIB", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_RUNTIME_API",
	"AWS_LAMBDA_FUNCTION_NAME", "K_SERVICE", "PORT", "CORTEX_HOST", "LD_LIBRARY_PATH", "GOMAXPROCS"}

// environ is the environment of the servers under test, with extra added.
func environ(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(isolated, k) {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// post sends body to url and returns the status and the answer.
func post(ctx context.Context, c *http.Client, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// firstAnswer posts body to url every millisecond until a 200 comes back,
// checks it and returns it: a server's readiness, and the end of a cold
// start. It fails when c exits or after timeout.
func firstAnswer(ctx context.Context, c *child, url string, timeout time.Duration) ([]byte, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		status, answer, err := post(ctx, client, url)
		if err == nil && status == http.StatusOK {
			if err := checkSetosa(answer); err != nil {
				return nil, c.failed(fmt.Errorf("a wrong first answer: %w", err))
			}
			return answer, nil
		}
		if err == nil {
			err = fmt.Errorf("status %d: %s", status, strings.TrimSpace(string(answer)))
		}
		select {
		case <-c.exited:
			return nil, c.failed(fmt.Errorf("exited before answering: %w", err))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, c.failed(fmt.Errorf("no 200 from %s within %s: %w", url, timeout, err))
		}
	}
}

// served is a cortex serve process.
type served struct {
	*child
	base   string // http://127.0.0.1:port, the front
	front  string // the function's infer URL through the front
	direct string // its infer URL on its own port; "" without --ports
}

// serve starts cortex serve on dir with its front on a free port, and
// with the function on a port of its own when ports is set. It returns
// once the front has said where the function is (after the build); the
// function is then at zero processes.
func (b *bench) serve(ctx context.Context, name string, ports bool, extra ...string) (*served, error) {
	args := []string{"serve", b.dir, "--addr", "127.0.0.1:0", "-o", "json", "--status-every", "0"}
	direct := ""
	if ports {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		args = append(args, "--ports", "iris="+strconv.Itoa(port))
		direct = "http://127.0.0.1:" + strconv.Itoa(port) + inferPath
	}
	cmd := exec.Command(b.cortex, append(args, extra...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c, err := b.procs.start(name, cmd)
	if err != nil {
		return nil, err
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			// {"name", "url"}; with --ports, url is the function's own
			// port and front_url its route on the front.
			var line struct {
				Name     string `json:"name"`
				URL      string `json:"url"`
				FrontURL string `json:"front_url"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Name == "iris" && line.URL != "" {
				u := line.URL
				if line.FrontURL != "" {
					u = line.FrontURL
				}
				select {
				case urls <- u:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var fnURL string
	select {
	case fnURL = <-urls:
	case <-c.exited:
		return nil, c.failed(errors.New("cortex serve exited before serving iris"))
	case <-time.After(5 * time.Minute): // a build from an empty cache
		return nil, c.failed(errors.New("cortex serve gave no URL for iris within 5 minutes"))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s := &served{child: c, front: strings.TrimSuffix(fnURL, "/") + inferPath, direct: direct}
	if i := strings.Index(fnURL[len("http://"):], "/"); strings.HasPrefix(fnURL, "http://") && i >= 0 {
		s.base = fnURL[:len("http://")+i]
	} else {
		return nil, c.failed(fmt.Errorf("cortex serve printed %q, not an http:// URL with a path", fnURL))
	}
	return s, nil
}

// hostStatus is what /-/status says of the function.
type hostStatus struct {
	State      string `json:"state"`
	Processes  []any  `json:"processes"`
	InFlight   int    `json:"in_flight"`
	ColdStarts int    `json:"cold_starts"`
}

func (s *served) status(ctx context.Context) (hostStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/-/status", nil)
	if err != nil {
		return hostStatus{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return hostStatus{}, err
	}
	defer resp.Body.Close()
	var st struct {
		Functions []struct {
			Name string `json:"name"`
			hostStatus
		} `json:"functions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return hostStatus{}, fmt.Errorf("decoding /-/status: %w", err)
	}
	for _, f := range st.Functions {
		if f.Name == "iris" {
			return f.hostStatus, nil
		}
	}
	return hostStatus{}, errors.New("/-/status does not list iris")
}

// idle waits until the function has scaled to zero and returns its
// status then.
func (s *served) idle(ctx context.Context, timeout time.Duration) (hostStatus, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := s.status(ctx)
		if err != nil {
			return st, s.failed(err)
		}
		if len(st.Processes) == 0 && st.InFlight == 0 {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, s.failed(fmt.Errorf("iris did not scale to zero within %s: %+v", timeout, st))
		}
		select {
		case <-s.exited:
			return st, s.failed(errors.New("cortex serve exited"))
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// hasPorts tells whether this cortex serve can give a function a port of
// its own (--ports, the warm path of issue 17).
func hasPorts(cortex string) (bool, error) {
	out, err := exec.Command(cortex, "serve", "--help").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("%s serve --help: %w\n%s", cortex, err, out)
	}
	return strings.Contains(string(out), "--ports"), nil
}
