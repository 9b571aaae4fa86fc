// Package local runs one function on this machine, as `cortex test` does:
// load its spec, build its binary, write its runtime config, start the
// process, forward its logs and wait until it is ready. Starting, watching
// and stopping the process is runtime/host/supervisor's, as it is for
// `cortex serve`; what is left here is the build and the one function's
// files.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cortexfn/cortex/packager/build"
	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime/host/supervisor"
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

	proc *supervisor.Process
	tmp  string
}

// Start builds and starts the function in o.Dir and returns once it is
// ready. When it fails to become ready, the process is stopped and the
// error says why (its last log lines went to o.Logs). When ctx ends first
// (a Ctrl-C), the process is stopped and ctx's error returned.
func Start(ctx context.Context, o Options) (*Function, error) {
	if o.Progress == nil {
		o.Progress = io.Discard
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
	s := l.Spec
	proc, err := supervisor.Start(supervisor.Config{
		Name:    s.Name,
		Command: []string{l.Binary.Path},
		Dir:     s.Dir,
		Env:     append(l.Env, "CORTEX_CONFIG="+cfg),
		Host:    o.Host,
		Port:    o.Port,
		Output:  supervisor.NewOutput(o.Logs),
		Prefix:  s.Name + " | ",
	})
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("starting %s: %w", s.Name, err)
	}
	f := &Function{Name: s.Name, URL: proc.URL(), Spec: s, proc: proc, tmp: tmp}
	if _, err := proc.WaitReady(ctx, o.ReadyTimeout); err != nil {
		f.Stop(5 * time.Second)
		return nil, f.notReady(err)
	}
	return f, nil
}

// notReady says why WaitReady failed, naming the function.
func (f *Function) notReady(err error) error {
	var timeout *supervisor.NotReadyError
	switch {
	case errors.Is(err, supervisor.ErrExited):
		exit := f.proc.Err()
		if exit == nil {
			exit = errors.New("exit status 0")
		}
		return fmt.Errorf("%s exited before it was ready: %v", f.Name, exit)
	case errors.As(err, &timeout):
		return fmt.Errorf("%s was %w", f.Name, err)
	}
	return err // ctx's: the caller asked to stop
}

// Done is closed when the process has exited.
func (f *Function) Done() <-chan struct{} { return f.proc.Done() }

// Err is the process's exit error once Done is closed.
func (f *Function) Err() error {
	<-f.proc.Done()
	return f.proc.Err()
}

// Stop sends SIGTERM, waits up to grace for the function to drain and
// exit, then kills it (with its whole process group). It removes the
// function's temporary files. It returns nil when the function exited
// cleanly.
func (f *Function) Stop(grace time.Duration) error {
	defer os.RemoveAll(f.tmp)
	return f.proc.Stop(grace)
}
