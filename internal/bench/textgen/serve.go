package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cortexfn/cortex/internal/bench/load"
)

// server is a `cortex serve` child.
type server struct {
	cmd    *exec.Cmd
	out    *tail
	exited chan struct{}
	own    string // the function on its own port: http://127.0.0.1:PORT/
	front  string // its route on the front: http://127.0.0.1:PORT/textgen/
}

// serve starts `cortex serve dir --ports textgen=0 -o json` with its front
// on a free loopback port, and returns once serve has said where the
// function is (after the build); the function is then at zero processes.
// Its idle processes are kept for the run (--scale-down-after), so that
// every round measures a warm function.
func serve(ctx context.Context, cortex, dir string) (*server, error) {
	cmd := exec.Command(cortex, "serve", dir, "--ports", function+"=0", "-o", "json",
		"--addr", "127.0.0.1:0", "--status-every", "0", "--scale-down-after", "1h")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, out: &tail{}, exited: make(chan struct{})}
	cmd.Stderr = s.out
	load.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s serve: %w", cortex, err)
	}
	go func() { _ = cmd.Wait(); close(s.exited) }()

	type urls struct{ own, front string }
	found := make(chan urls, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			// With --ports: {"name", "url": its own port, "front_url": its
			// route on the front}.
			var line struct {
				Name     string `json:"name"`
				URL      string `json:"url"`
				FrontURL string `json:"front_url"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Name == function && line.URL != "" {
				select {
				case found <- urls{line.URL, line.FrontURL}:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case u := <-found:
		if u.front == "" || u.front == u.own {
			s.stop()
			return nil, s.failed(fmt.Errorf("serve printed no own port for %s (url %q, front_url %q): does this CLI have --ports?", function, u.own, u.front))
		}
		s.own, s.front = slash(u.own), slash(u.front)
		return s, nil
	case <-s.exited:
		return nil, s.failed(errors.New("cortex serve exited before serving " + function))
	case <-time.After(5 * time.Minute): // a build from an empty cache
		s.stop()
		return nil, s.failed(errors.New("cortex serve gave no URL for " + function + " within 5 minutes"))
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
}

func slash(u string) string { return strings.TrimSuffix(u, "/") + "/" }

// stop ends serve: SIGTERM (it drains its functions), then SIGKILL.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// failed wraps err with what serve last wrote.
func (s *server) failed(err error) error {
	select {
	case <-s.exited:
		err = fmt.Errorf("%w (cortex serve exited: %v)", err, s.cmd.ProcessState)
	default:
	}
	return fmt.Errorf("%w\n--- cortex serve's output, last lines:\n%s", err, s.out.String())
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
