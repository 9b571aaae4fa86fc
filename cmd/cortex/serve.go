package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cortexfn/cortex/packager/build"
	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime/host"
)

// serveOptions are cortex serve's flags.
type serveOptions struct {
	addr           string
	scaleDownAfter time.Duration
	statusEvery    time.Duration
}

func serveCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve DIR [DIR...]",
		Short: "Serve functions on this machine with scale-to-zero, until Ctrl-C",
		Long: "Serve builds each function and serves them all behind one front server: /{function}/...\n" +
			"(or Host: {function}.localhost) reaches the function's processes. Functions start at zero\n" +
			"processes: the first request starts one and is held until it is ready; more start when\n" +
			"in-flight requests pass autoscaling.target_concurrency; idle ones stop after the\n" +
			"autoscaler's window, down to zero unless autoscaling.min_scale says otherwise.\n" +
			"A DIR without a cortex.yaml is taken as a directory of functions.\n\n" +
			"GET /-/status returns every function's state as JSON; /metrics has the host's metrics.",
		Example: "  cortex serve samples/iris\n" +
			"  cortex serve samples --addr 127.0.0.1:9000\n" +
			"  cortex serve samples/iris --scale-down-after 5s",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return serveFunctions(cmd.Context(), args, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address of the front server (host:port; port 0 picks a free one)")
	f.DurationVar(&o.scaleDownAfter, "scale-down-after", 0, "stop idle processes after this long, overriding autoscaling.window and scale_down_delay (0: use cortex.yaml)")
	f.DurationVar(&o.statusEvery, "status-every", time.Second, "how often to check for and print status changes (0: never)")
	return cmd
}

// functionDirs expands the arguments: a directory with a cortex.yaml is a
// function; one without is a directory of functions.
func functionDirs(args []string) ([]string, error) {
	var dirs []string
	for _, a := range args {
		if _, err := os.Stat(filepath.Join(a, spec.FileName)); err == nil {
			dirs = append(dirs, a)
			continue
		}
		found, err := filepath.Glob(filepath.Join(a, "*", spec.FileName))
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s has no %s and no function directories under it", a, spec.FileName)
		}
		for _, y := range found {
			dirs = append(dirs, filepath.Dir(y))
		}
	}
	return dirs, nil
}

// hostFunction builds the function in dir and describes it for the host.
func hostFunction(ctx context.Context, dir, configDir string, o serveOptions, progress io.Writer) (host.Function, error) {
	fnDir, err := os.MkdirTemp(configDir, "fn-")
	if err != nil {
		return host.Function{}, err
	}
	cfg := filepath.Join(fnDir, "config.json")
	l, err := build.Prepare(ctx, dir, cfg, "", progress)
	if err != nil {
		return host.Function{}, err
	}
	s, bin, rc := l.Spec, l.Binary, l.Config
	a := s.Autoscaling
	scale := host.Autoscaling{
		MinScale:          a.MinScale,
		MaxScale:          a.MaxScale,
		TargetConcurrency: a.TargetConcurrency,
		ScaleDownDelay:    a.ScaleDownDelay,
		StableWindow:      a.Window,
	}
	if o.scaleDownAfter > 0 {
		scale.StableWindow, scale.ScaleDownDelay = o.scaleDownAfter, 0
	}
	return host.Function{
		Name:     s.Name,
		Command:  []string{bin.Path},
		Env:      []string{"CORTEX_CONFIG=" + cfg, "CORTEX_HOST=127.0.0.1"},
		Dir:      s.Dir,
		Scale:    scale,
		MaxQueue: rc.Limits.WithDefaults().MaxQueue,
	}, nil
}

// serveFunctions builds the functions, serves them until ctx ends, then
// drains every process. The functions' URLs go to stdout; progress, status
// and the processes' logs to stderr.
func serveFunctions(ctx context.Context, args []string, o serveOptions, stdout, stderr io.Writer) error {
	dirs, err := functionDirs(args)
	if err != nil {
		return err
	}
	configDir, err := os.MkdirTemp("", "cortex-serve-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(configDir)
	fns := make([]host.Function, 0, len(dirs))
	for _, d := range dirs {
		fn, err := hostFunction(ctx, d, configDir, o, stderr)
		if err != nil {
			return err
		}
		fns = append(fns, fn)
	}
	h, err := host.New(fns,
		host.WithLogWriter(stderr),
		host.WithLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		_ = h.Shutdown(context.Background())
		return fmt.Errorf("listening on %s: %w", o.addr, err)
	}
	base := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	for _, fn := range fns {
		fmt.Fprintf(stdout, "%s/%s/\n", base, fn.Name)
	}
	fmt.Fprintf(stderr, "serving %d function(s) at %s, each at zero processes until its first request: POST %s/%s/predict (status: %s/-/status; Ctrl-C to stop)\n",
		len(fns), base, base, fns[0].Name, base)

	status := newStatusPrinter(stderr)
	var tick <-chan time.Time
	if o.statusEvery > 0 {
		t := time.NewTicker(o.statusEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			status.print(h.Status())
		case err := <-served:
			_ = h.Shutdown(context.Background())
			return fmt.Errorf("serving: %w", err)
		case <-ctx.Done():
			fmt.Fprintln(stderr, "stopping: draining every function")
			dctx, cancel := context.WithTimeout(context.Background(), host.DefaultDrainTimeout+5*time.Second)
			defer cancel()
			err := errors.Join(srv.Shutdown(dctx), h.Shutdown(dctx))
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			return err
		}
	}
}

// statusPrinter prints a function's status line when it changes.
type statusPrinter struct {
	w    io.Writer
	last map[string]string
}

func newStatusPrinter(w io.Writer) *statusPrinter {
	return &statusPrinter{w: w, last: map[string]string{}}
}

func (p *statusPrinter) print(all []host.FunctionStatus) {
	for _, s := range all {
		line := statusLine(s)
		if p.last[s.Name] != line {
			p.last[s.Name] = line
			fmt.Fprintf(p.w, "status %s\n", line)
		}
	}
}

func statusLine(s host.FunctionStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d process(es) (%d ready, %d starting, %d draining), %d in flight, %d queued, %d cold start(s)",
		s.Name, len(s.Processes), s.Ready, s.Starting, s.Draining, s.InFlight, s.Queued, s.ColdStarts)
	if s.ColdStarts > 0 {
		fmt.Fprintf(&b, ", last cold start %s", s.LastColdStart.Round(time.Millisecond))
	}
	if s.LastError != "" {
		fmt.Fprintf(&b, ", last error: %s", s.LastError)
	}
	return b.String()
}
