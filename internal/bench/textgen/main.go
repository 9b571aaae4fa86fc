// Command textgen measures streamed generation through `cortex serve`
// against the model alone (issue 18): time to the first token and tokens
// per second of the textgen sample, in one process tree. Each round runs
// one unmeasured generation of every path, then -n measured ones of each,
// interleaved (one of each path in turn, the order turning), so that the
// machine's other load falls on every path alike.
//
//   - model alone: lm.Open on the sample's model in this process and
//     Generate, greedy, the fixed prompt, -tokens tokens; no HTTP. Its
//     time to first token is Result.FirstStep (the prompt's step and the
//     first token's choice); the time to the first emitted piece is shown
//     beside it.
//   - served: `cortex serve samples/textgen --ports textgen=0` (the CLI
//     builds the function), warm, the same generation asked for as
//     server-sent events (Accept: text/event-stream) on the function's own
//     port and through the shared front. The client is net/http reading
//     the events as they arrive; the time to first token is from sending
//     the request to the first "output" event that carries text.
//
// Tokens per second are the decoding rate: (tokens - 1) over the time from
// the first piece to the last, on both sides, so the prompt's step is not
// in it (the whole-call rate is shown too). The streamed text must equal
// the model alone's (greedy decoding is deterministic). A generation that
// fails (a failed request, an error event, a stream cut before its done
// event) or gives another text is counted and replaced, so the figures
// stay comparable, and makes the program exit non-zero in the end, as do
// more than -n failures in one block; a missed target does not.
//
// Targets (issue 18): served tokens/s >= 0.9 of the model alone's; the
// first-token overhead, served time to first token minus the model's own
// first step, <= 2 ms. The per-token overhead of the SSE path is the
// served time per token minus the model alone's.
//
//	go run ./internal/bench/textgen [-cortex bin/cortex] [-rounds 5] [-tokens 64] [-n 12] [-json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"
	"time"

	"github.com/cortexfn/cortex/internal/bench/load"
	"github.com/cortexfn/cortex/samples/textgen/lm"
)

// function is the sample's name (its cortex.yaml), for --ports.
const function = "textgen"

// maxTokens is the predictor's bound on max_tokens (predictor.MaxTokensLimit).
const maxTokens = 512

type config struct {
	cortex  string
	build   bool // build cortex from this tree first
	dir     string
	prompt  string
	tokens  int
	rounds  int
	n       int
	jsonOut bool
	timeout time.Duration
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("textgen: ")
	// ONNX Runtime's load lines (the model's every input) would bury the
	// progress lines.
	slog.SetLogLoggerLevel(slog.LevelWarn)
	var c config
	flag.StringVar(&c.cortex, "cortex", "bin/cortex", "the cortex CLI; when not given, built first with go build -o bin/cortex ./cmd/cortex")
	flag.StringVar(&c.dir, "dir", "samples/textgen", "the textgen function directory (its model in model/: make models)")
	flag.StringVar(&c.prompt, "prompt", "And God said unto Moses,", "the prompt")
	flag.IntVar(&c.tokens, "tokens", 64, "max_tokens of each generation")
	flag.IntVar(&c.rounds, "rounds", 5, "rounds; each runs every path -n times, interleaved")
	flag.IntVar(&c.n, "n", 12, "measured generations per path per round")
	flag.BoolVar(&c.jsonOut, "json", false, "print the report as JSON")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	flag.Parse()
	c.build = true
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "cortex" {
			c.build = false
		}
	})
	if c.rounds < 1 || c.n < 1 {
		log.Fatal("-rounds and -n must be positive")
	}
	if c.tokens < 2 || c.tokens > maxTokens {
		log.Fatalf("-tokens %d: want 2 to %d (a rate needs two tokens; the predictor takes at most %d)", c.tokens, maxTokens, maxTokens)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	rep, err := run(ctx, c)
	cancel()
	stop()
	if rep != nil {
		rep.LoadEnd = load.LoadAverage()
		if c.jsonOut {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			if err := enc.Encode(rep); err != nil {
				log.Fatal(err)
			}
		} else {
			rep.writeText(os.Stdout)
		}
	}
	if err != nil {
		log.Fatal(err)
	}
}

// run measures every path, in rounds, and returns what it measured even
// when a path failed (with the error).
func run(ctx context.Context, c config) (*report, error) {
	modelDir := filepath.Join(c.dir, "model")
	if _, err := os.Stat(filepath.Join(modelDir, lm.ModelFile)); err != nil {
		return nil, fmt.Errorf("the textgen model is missing: run `make models` (scripts/fetch-textgen-model.sh) from the repository root: %w", err)
	}
	if c.build {
		progress("building the CLI: go build -o %s ./cmd/cortex", c.cortex)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", c.cortex, "./cmd/cortex")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build -o %s ./cmd/cortex: %w\n%s", c.cortex, err, out)
		}
	} else if _, err := os.Stat(c.cortex); err != nil {
		return nil, fmt.Errorf("the CLI: %w (build it: go build -o bin/cortex ./cmd/cortex, and run from the repository root)", err)
	}
	rep := &report{
		Command:    strings.TrimSpace("go run ./internal/bench/textgen " + strings.Join(os.Args[1:], " ")),
		Model:      "the textgen sample's model: a small GPT-2-architecture model trained here (samples/textgen/README.md, \"The model\")",
		Prompt:     c.prompt,
		MaxTokens:  c.tokens,
		Rounds:     c.rounds,
		N:          c.n,
		GOMAXPROCS: goruntime.GOMAXPROCS(0),
		LoadStart:  load.LoadAverage(),
	}
	if out, err := exec.Command(c.cortex, "version").Output(); err == nil {
		rep.Cortex = strings.TrimSpace(string(out))
	}

	progress("loading the model alone from %s", modelDir)
	m, err := lm.Open(ctx, modelDir, lm.Config{})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	rep.Provider = m.Provider()
	alone := &modelAlone{m: m, prompt: c.prompt, opts: lm.Options{MaxTokens: c.tokens}}

	progress("starting %s serve %s --ports %s=0 (it builds the function)", c.cortex, c.dir, function)
	srv, err := serve(ctx, c.cortex, c.dir)
	if err != nil {
		return rep, err
	}
	defer srv.stop()
	cl := newClient(c.prompt, c.tokens)
	paths := []path{
		{name: pathAlone, gen: alone.generate},
		{name: pathOwn, gen: func(ctx context.Context) (sample, string, error) { return cl.generate(ctx, srv.own+"predict") }},
		{name: pathFront, gen: func(ctx context.Context) (sample, string, error) { return cl.generate(ctx, srv.front+"predict") }},
	}
	for i := range paths {
		paths[i].rounds = make([][]sample, c.rounds)
	}

	// The text every path must produce: the model alone's, greedy.
	_, want, err := alone.generate(ctx)
	if err != nil {
		return rep, fmt.Errorf("model alone: %w", err)
	}
	rep.Text = want
	// Warm the function: the first request starts its process (through the
	// host, which holds it); the own port is then the process's.
	progress("warming %s (its first request starts a process)", function)
	for i := range paths[1:] {
		p := &paths[1+i]
		var err error
		for range 3 {
			if _, _, err = p.gen(ctx); err == nil {
				break
			}
			p.failures = append(p.failures, "warming: "+err.Error())
		}
		if err != nil {
			rep.collect(paths)
			return rep, srv.failed(fmt.Errorf("warming %s: %w", p.name, err))
		}
	}

	for r := range c.rounds {
		if err := runRound(ctx, paths, r, c.n, want, cl); err != nil {
			if !errors.As(err, new(*textError)) {
				err = srv.failed(err)
			}
			rep.collect(paths)
			return rep, err
		}
		progress("round %d/%d: %s", r+1, c.rounds, roundLine(paths, r))
	}
	rep.collect(paths)
	if n := len(rep.Failures); n > 0 {
		return rep, fmt.Errorf("%d generation(s) failed or gave another text than the model alone (see the report)", n)
	}
	return rep, nil
}

// The paths, as the report names them.
const (
	pathAlone = "model alone (in process, no HTTP)"
	pathOwn   = "cortex serve, own port (SSE)"
	pathFront = "cortex serve, front (SSE)"
)

// path is one way of running the generation and what it measured, by round.
type path struct {
	name     string
	gen      func(context.Context) (sample, string, error)
	rounds   [][]sample
	failures []string // every generation that failed or gave another text
}

// runRound runs round r: one unmeasured generation of each path (a warm
// connection, ONNX Runtime's threads awake), then n measured ones of each,
// interleaved (one of each path in turn, the order turning every time), so
// that the machine's other load, which comes and goes within seconds here,
// falls on every path alike. Each text is checked against want. A
// generation that fails or gives another text is recorded in the path's
// failures and run again; more than n failures of a path in a round end
// the run.
func runRound(ctx context.Context, paths []path, r, n int, want string, cl *client) error {
	// A connection the host accepted while the function was cold may be
	// closed under us; start the round on fresh ones.
	cl.hc.CloseIdleConnections()
	failed := make([]int, len(paths))
	fail := func(k int, err error) error {
		p := &paths[k]
		p.failures = append(p.failures, err.Error())
		if failed[k]++; failed[k] > n || ctx.Err() != nil {
			return fmt.Errorf("%s: %d of its generations failed in round %d, the last: %w", p.name, failed[k], r+1, err)
		}
		return nil
	}
	for k := range paths {
		for {
			_, _, err := paths[k].gen(ctx)
			if err == nil {
				break
			}
			if err := fail(k, err); err != nil {
				return err
			}
		}
	}
	for i := range n {
		for j := range paths {
			k := (j + i + r*n) % len(paths)
			p := &paths[k]
			for {
				s, text, err := p.gen(ctx)
				if err == nil && text != want {
					err = &textError{path: p.name, got: text, want: want}
				}
				if err == nil {
					p.rounds[r] = append(p.rounds[r], s)
					break
				}
				if err := fail(k, err); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// textError: a path generated another text than the model alone, greedy.
type textError struct {
	path, got, want string
}

func (e *textError) Error() string {
	return fmt.Sprintf("%s generated another text than the model alone (greedy decoding must give the same):\n got: %q\nwant: %q", e.path, e.got, e.want)
}

// sample is one generation's timings.
type sample struct {
	// TTFT: the call (model alone) or sending the request (served) to the
	// first piece of text.
	TTFT time.Duration
	// FirstStep: the model's own time to first token (model alone only).
	FirstStep time.Duration
	// Decode: the first piece of text to the last; Tokens-1 steps.
	Decode time.Duration
	// Whole: the call, or the request to the stream's end.
	Whole  time.Duration
	Tokens int
}

// modelAlone is the baseline: lm's Generate in this process.
type modelAlone struct {
	m      *lm.Model
	prompt string
	opts   lm.Options
}

func (a *modelAlone) generate(ctx context.Context) (sample, string, error) {
	var first, last time.Time
	var text strings.Builder
	start := time.Now()
	res, err := a.m.Generate(ctx, a.prompt, a.opts, func(piece string) error {
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		last = now
		text.WriteString(piece)
		return nil
	})
	whole := time.Since(start)
	if err != nil {
		return sample{}, "", err
	}
	if res.Tokens < 2 || first.IsZero() {
		return sample{}, "", fmt.Errorf("generated %d tokens (%s); a rate needs two", res.Tokens, res.FinishReason)
	}
	if text.String() != res.Text {
		return sample{}, "", errors.New("the emitted pieces do not add up to the result's text")
	}
	return sample{TTFT: first.Sub(start), FirstStep: res.FirstStep, Decode: last.Sub(first), Whole: whole, Tokens: res.Tokens}, res.Text, nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
