package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/cortexfn/cortex/cmd/cortex/internal/batch"
	"github.com/cortexfn/cortex/cmd/cortex/internal/client"
	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime/host"
)

// batchOptions are cortex batch's flags.
type batchOptions struct {
	input, output, path, format string
	concurrency, retries, batch int
	timeout                     time.Duration
	headers                     []string
	quiet                       bool
}

func batchCmd() *cobra.Command {
	var o batchOptions
	cmd := &cobra.Command{
		Use:   "batch FUNCTION --input FILE.jsonl|DIR --output DIR",
		Short: "Run a function over a file of inputs, with retries, in order, resumable",
		Long: "Batch sends every input to a function's predict route and writes the answers in input order:\n" +
			"each line of a JSONL file (blank lines skipped), or each file of a directory (by name; the\n" +
			"file's bytes are the body, its extension gives the Content-Type), is one request body.\n\n" +
			"FUNCTION is a function directory (batch serves it on a loopback port, as cortex serve does,\n" +
			"for the job), a URL (its predict route is URL/predict unless the URL names a route:\n" +
			".../predict, .../infer or ...:predict), or the name of a function that cortex serve at\n" +
			"--serve-addr runs or that cortex deploy deployed (as cortex predict NAME finds it).\n\n" +
			"OUTPUT/outputs.jsonl gets one line a successful input, {\"index\", \"line\" or \"file\",\n" +
			"\"status\", \"output\"} (the answer as JSON; \"output_text\" or \"output_base64\" and\n" +
			"\"content_type\" when it is not JSON); OUTPUT/failures.jsonl one line a failed one, with\n" +
			"\"status\" (0: no answer) and \"error\". A line that is not JSON is a failure, never sent.\n" +
			"429, 502, 503, 504 and connection errors are retried (--retries, exponential backoff with\n" +
			"jitter, after Retry-After when given); other statuses are the input's failure.\n\n" +
			"Stopped (Ctrl-C, a kill, a crash), the same command resumes the job from OUTPUT: what was\n" +
			"done is not sent again, and the files end as an uninterrupted run writes them. Another input\n" +
			"or other parameters in the same OUTPUT are refused.\n\n" +
			"--batch N packs up to N consecutive Open Inference Protocol rows into one request and splits\n" +
			"the answer back into one line a row: many times faster for small rows.\n\n" +
			"Exit status: 0 when every input succeeded, 1 when any failed (see failures.jsonl) or the\n" +
			"job could not run, 130 when interrupted (run it again to resume). See docs/batch.md.",
		Example: "  cortex batch samples/iris --input rows.jsonl --output out/\n" +
			"  cortex batch samples/iris --input rows.jsonl --output out/ --batch 64 -o json\n" +
			"  cortex batch ocr --input scans/ --output ocr-out/ --concurrency 4   # cortex serve runs ocr\n" +
			"  cortex batch http://127.0.0.1:8080/iris --input rows.jsonl --output out/",
		Args: cobra.ExactArgs(1),
	}
	resolve := addResolveFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(o.format); err != nil {
			return err
		}
		switch {
		case o.input == "":
			return errors.New("--input is required: a JSONL file or a directory of inputs")
		case o.output == "":
			return errors.New("--output is required: the job's directory (outputs.jsonl, failures.jsonl, its state)")
		case o.concurrency < 1:
			return fmt.Errorf("--concurrency %d: want 1 or more", o.concurrency)
		case o.retries < 0:
			return fmt.Errorf("--retries %d: want 0 or more", o.retries)
		case o.batch < 1:
			return fmt.Errorf("--batch %d: want 1 (each input alone) or more", o.batch)
		}
		return runBatch(cmd, args[0], o, resolve)
	}
	f := cmd.Flags()
	f.StringVarP(&o.input, "input", "i", "", "a JSONL file (one request body a line) or a directory (one body a file)")
	// --output is the job's directory here; -o stays the format, as in
	// every other command.
	f.StringVar(&o.output, "output", "", "the job's directory: outputs.jsonl, failures.jsonl and the state that resumes it")
	f.StringVarP(&o.format, "format", "o", "text", "text or json (the totals on stdout at the end)")
	f.StringVar(&o.path, "path", "/predict", "the route, for a directory, a name, or a URL that names none")
	f.IntVarP(&o.concurrency, "concurrency", "c", batch.DefaultConcurrency, "requests in flight at most")
	f.IntVar(&o.retries, "retries", batch.DefaultRetries, "more attempts for 429, 502, 503, 504 and connection errors")
	f.IntVar(&o.batch, "batch", 1, "pack up to N Open Inference Protocol rows into one request")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "bound on one attempt (0: none)")
	f.StringArrayVarP(&o.headers, "header", "H", nil, "header Key:value sent with every request (repeatable)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress and no summary on stderr")
	return cmd
}

// runBatch finds the function, runs the job and reports it.
func runBatch(cmd *cobra.Command, fn string, o batchOptions, resolve func(context.Context, string, io.Writer) (string, *http.Client, error)) error {
	ctx, stdout := cmd.Context(), cmd.OutOrStdout()
	// The function's log lines (a function served here) and the progress
	// share stderr: one write at a time.
	stderr := &lockedWriter{w: cmd.ErrOrStderr()}
	header, err := client.ParseHeader(o.headers)
	if err != nil {
		return err
	}
	bo := batch.Options{
		Input: o.input, Output: o.output, Header: header,
		Concurrency: o.concurrency, Retries: o.retries, Batch: o.batch, Timeout: o.timeout,
		Params: map[string]string{"function": fn, "path": o.path, "headers": headersDigest(header)},
	}
	if !o.quiet {
		bo.Progress, bo.Terminal = stderr, isTerminal(cmd.ErrOrStderr())
	}
	pathGiven := cmd.Flags().Changed("path")
	switch {
	case strings.HasPrefix(fn, "http://") || strings.HasPrefix(fn, "https://"):
		if bo.URL, err = routeURL(fn, o.path, pathGiven); err != nil {
			return err
		}
	case isFunctionDir(fn):
		// The job is the directory's, however it is named.
		if abs, err := filepath.Abs(fn); err == nil {
			bo.Params["function"] = abs
		}
		// A missing input is found before the function is built and
		// started for nothing (batch.Run would find it after).
		if _, err := os.Stat(o.input); err != nil {
			return fmt.Errorf("--input: %w", err)
		}
		var build io.Writer = stderr
		if o.quiet {
			build = io.Discard
		}
		base, stop, err := serveForBatch(ctx, fn, build, stderr)
		if err != nil {
			return err
		}
		defer stop()
		if bo.URL, err = client.URL(base, o.path, nil); err != nil {
			return err
		}
	case strings.ContainsRune(fn, os.PathSeparator) || isDir(fn):
		return fmt.Errorf("%s: no %s there: FUNCTION is a function directory, a URL (http://...) or a function's name", fn, spec.FileName)
	default:
		base, hc, err := resolve(ctx, fn, stderr)
		if err != nil {
			return err
		}
		if bo.URL, err = client.URL(base, o.path, nil); err != nil {
			return err
		}
		serveAddr, _ := cmd.Flags().GetString("serve-addr")
		if u, err := url.Parse(base); err == nil && u.Host == serveAddr {
			// cortex serve: this package's client keeps a connection per
			// request in flight, where serveClient's keeps net/http's two.
			if tok := os.Getenv(host.TokenEnv); tok != "" && header.Get("Authorization") == "" {
				header.Set("Authorization", "Bearer "+tok)
			}
		} else if hc != http.DefaultClient {
			bo.Client = hc // a deployed function's, signing its requests
		}
	}

	tot, err := batch.Run(ctx, bo)
	if o.format == "json" && (err == nil || errors.Is(err, batch.ErrIncomplete)) {
		if werr := writeJSON(stdout, tot); werr != nil && err == nil {
			err = werr
		}
	}
	if errors.Is(err, batch.ErrIncomplete) {
		fmt.Fprintf(stderr, "stopped with %d of %d inputs done: run the same command again to resume\n", tot.Succeeded+tot.Failed, tot.Total)
		return err
	}
	if err != nil {
		return err
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "%d inputs: %d succeeded, %d failed", tot.Total, tot.Succeeded, tot.Failed)
		if tot.SkippedDone > 0 {
			fmt.Fprintf(stderr, " (%d done by an earlier run)", tot.SkippedDone)
		}
		fmt.Fprintf(stderr, "; this run %.1fs, %.0f inputs/s, %d retries", tot.Seconds, tot.ItemsPerSecond, tot.Retries)
		if tot.Unpacked > 0 {
			fmt.Fprintf(stderr, ", %d rows sent alone (not OIP rows that pack, or refused packed)", tot.Unpacked)
		}
		fmt.Fprintf(stderr, "\noutputs: %s\nfailures: %s\n", tot.Output, tot.Failures)
	}
	if tot.Failed > 0 {
		return exitError{fmt.Sprintf("%d of %d inputs failed", tot.Failed, tot.Total)}
	}
	return nil
}

// routeURL is the predict route of a function at u: u itself when it
// names a route (…/predict, …/infer, …:predict) and --path was not
// given, else u joined with path as cortex predict --url joins them.
func routeURL(u, path string, pathGiven bool) (string, error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("invalid URL %q: %w", u, err)
	}
	p := strings.TrimSuffix(parsed.Path, "/")
	if !pathGiven && (strings.HasSuffix(p, "/predict") || strings.HasSuffix(p, "/infer") || strings.HasSuffix(p, ":predict")) {
		if parsed.Scheme != "http" && parsed.Scheme != "https" {
			return "", fmt.Errorf("invalid URL %q: it must start with http:// or https://", u)
		}
		return strings.TrimSuffix(u, "/"), nil
	}
	return client.URL(u, path, nil)
}

func isFunctionDir(p string) bool {
	_, err := os.Stat(filepath.Join(p, spec.FileName))
	return err == nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// headersDigest identifies the headers of a job without keeping their
// values (a token) in its state.
func headersDigest(h http.Header) string {
	if len(h) == 0 {
		return ""
	}
	s := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(h)) {
		fmt.Fprintf(s, "%s: %q\n", k, h[k])
	}
	return hex.EncodeToString(s.Sum(nil))[:16]
}

// isTerminal reports whether w is a terminal (a character device), where
// progress is one line rewritten in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// serveForBatch serves the function in dir for the job as cortex serve
// does (its build, the host with scale-from-zero and its autoscaling, the
// front's timeouts and Host check) on a loopback port, and returns its
// base URL and what stops it. The build's progress goes to progress, the
// function's logs and the host's warnings to stderr.
func serveForBatch(ctx context.Context, dir string, progress, stderr io.Writer) (string, func(), error) {
	configDir, err := os.MkdirTemp("", "cortex-batch-")
	if err != nil {
		return "", nil, err
	}
	fail := func(err error) (string, func(), error) {
		os.RemoveAll(configDir)
		return "", nil, err
	}
	fn, err := hostFunction(ctx, dir, configDir, serveOptions{}, progress)
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	so := serveOptions{addr: ln.Addr().String()}
	allowed, err := allowedHosts(ln.Addr(), so)
	if err != nil {
		ln.Close()
		return fail(err)
	}
	h, err := host.New([]host.Function{fn},
		host.WithAllowedHosts(allowed),
		host.WithLogWriter(stderr),
		host.WithLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		ln.Close()
		return fail(err)
	}
	srv := frontServer(h, allowed, so)
	go srv.Serve(ln)
	stop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), host.DefaultDrainTimeout+5*time.Second)
		defer cancel()
		_ = srv.Shutdown(dctx)
		_ = h.Shutdown(dctx)
		os.RemoveAll(configDir)
	}
	return "http://" + ln.Addr().String() + "/" + fn.Name, stop, nil
}
