// Package local runs one function on this machine, as `cortex serve` and
// `cortex test` do: load its spec, build its binary, write its runtime
// config, start the process, forward its logs and wait until it is ready.
package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cortexfn/cortex/packager/build"
	"github.com/cortexfn/cortex/packager/spec"
)

// Options says what to run and how.
type Options struct {
	// Dir is the function directory.
	Dir string
	// Host is the address to listen on; default 127.0.0.1.
	Host string
	// Port to listen on; 0 picks a free one.
	Port int
	// Progress receives build progress; Logs the function's log lines,
	// each prefixed with its name. Nil discards.
	Progress, Logs io.Writer
	// ReadyTimeout bounds how long the function may take to become ready
	// (model loading included); default 2 minutes.
	ReadyTimeout time.Duration
	// CacheDir is passed to build.Options.
	CacheDir string
}

// Function is a running function process.
type Function struct {
	Name string
	// URL is the function's base URL, for example http://127.0.0.1:8080.
	URL string
	// Spec is the function's spec.
	Spec *spec.Spec

	cmd     *exec.Cmd
	tmp     string
	done    chan struct{}
	waitErr error
	logs    sync.WaitGroup
}

// Start builds and starts the function in o.Dir and returns once it is
// ready. When it fails to become ready, the process is stopped and the
// error says why (its last log lines went to o.Logs).
func Start(ctx context.Context, o Options) (*Function, error) {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logs == nil {
		o.Logs = io.Discard
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 2 * time.Minute
	}
	tmp, err := os.MkdirTemp("", "cortex-")
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(tmp, "config.json")
	l, err := build.Prepare(ctx, o.Dir, cfg, o.CacheDir, o.Progress)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	s, bin := l.Spec, l.Binary
	port := o.Port
	if port == 0 {
		if port, err = freePort(o.Host); err != nil {
			os.RemoveAll(tmp)
			return nil, err
		}
	}

	f := &Function{
		Name: s.Name,
		URL:  "http://" + net.JoinHostPort(urlHost(o.Host), strconv.Itoa(port)),
		Spec: s,
		tmp:  tmp,
		done: make(chan struct{}),
	}
	cmd := exec.Command(bin.Path)
	cmd.Dir = s.Dir
	cmd.Env = append(append(os.Environ(), l.Env...), "PORT="+strconv.Itoa(port), "CORTEX_HOST="+o.Host, "CORTEX_CONFIG="+cfg)
	// Its own process group: a Ctrl-C in the terminal reaches only the CLI,
	// which forwards SIGTERM so the function drains.
	cmd.SysProcAttr = sysProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("starting %s: %w", s.Name, err)
	}
	f.cmd = cmd
	f.logs.Add(1)
	go func() {
		defer f.logs.Done()
		prefixLines(o.Logs, s.Name+" | ", stdout)
	}()
	go func() {
		f.logs.Wait() // Wait closes the pipe; read it to the end first.
		f.waitErr = cmd.Wait()
		close(f.done)
	}()

	if err := f.waitReady(ctx, o.ReadyTimeout); err != nil {
		f.Stop(5 * time.Second)
		return nil, err
	}
	return f, nil
}

func (f *Function) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.URL+"/readyz", nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-f.done:
			return fmt.Errorf("%s exited before it was ready: %v", f.Name, f.exitErr())
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s was not ready within %s (GET %s/readyz)", f.Name, timeout, f.URL)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (f *Function) exitErr() error {
	if f.waitErr == nil {
		return errors.New("exit status 0")
	}
	return f.waitErr
}

// Done is closed when the process has exited.
func (f *Function) Done() <-chan struct{} { return f.done }

// Err is the process's exit error once Done is closed.
func (f *Function) Err() error {
	<-f.done
	return f.waitErr
}

// Stop sends SIGTERM, waits up to grace for the function to drain and
// exit, then kills it. It removes the function's temporary files. It
// returns nil when the function exited cleanly.
func (f *Function) Stop(grace time.Duration) error {
	defer os.RemoveAll(f.tmp)
	select {
	case <-f.done:
		return f.waitErr
	default:
	}
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
		return f.waitErr
	case <-time.After(grace):
		_ = f.cmd.Process.Kill()
		<-f.done
		return fmt.Errorf("%s did not exit within %s of SIGTERM; killed it", f.Name, grace)
	}
}

func prefixLines(w io.Writer, prefix string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fmt.Fprintf(w, "%s%s\n", prefix, sc.Bytes())
	}
	_, _ = io.Copy(io.Discard, r)
}

func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// urlHost is the host to put in a URL for a listen address.
func urlHost(host string) string {
	switch host {
	case "", "0.0.0.0", "::":
		return "localhost"
	}
	return host
}
