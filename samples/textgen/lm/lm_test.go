package lm_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cortexfn/cortex/samples/textgen/lm"
)

// modelDir is where scripts/fetch-textgen-model.sh (make models) links the
// model; TEXTGEN_MODEL_DIR overrides it.
func modelDir() string {
	if d := os.Getenv("TEXTGEN_MODEL_DIR"); d != "" {
		return d
	}
	return filepath.Join("..", "model")
}

var (
	loadOnce sync.Once
	loaded   *lm.Model
	loadErr  error
)

// model loads the model once for all tests; a missing model fails the test
// with what to run.
func model(t testing.TB) *lm.Model {
	t.Helper()
	loadOnce.Do(func() {
		dir := modelDir()
		if _, err := os.Stat(filepath.Join(dir, lm.ModelFile)); err != nil {
			loadErr = errors.New("the textgen model is missing: run `make models` (scripts/fetch-textgen-model.sh) first: " + err.Error())
			return
		}
		loaded, loadErr = lm.Open(context.Background(), dir, lm.Config{})
	})
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

func seed(v uint64) *uint64 { return &v }

const prompt = "And God said unto Moses,"

// TestCacheMatchesFullRecompute checks the KV cache: the logits of each
// step with the cache are those of running the whole sequence again
// without it.
func TestCacheMatchesFullRecompute(t *testing.T) {
	m := model(t)
	ctx := context.Background()
	ids := m.Tokenizer().Encode(prompt)
	c := m.NewCache()
	next := ids
	seq := append([]int(nil), ids...)
	for step := range 4 {
		cached, err := m.Forward(ctx, next, c)
		if err != nil {
			t.Fatal(err)
		}
		full, err := m.Forward(ctx, seq, m.NewCache())
		if err != nil {
			t.Fatal(err)
		}
		if len(cached) != len(full) {
			t.Fatalf("step %d: %d logits with the cache, %d without", step, len(cached), len(full))
		}
		worst, at := 0.0, 0
		for i := range full {
			if d := math.Abs(float64(cached[i] - full[i])); d > worst {
				worst, at = d, i
			}
		}
		// float32 sums in another order: a few ulps of logits around 10.
		if worst > 1e-3 {
			t.Fatalf("step %d (%d positions): logit %d is %v with the cache and %v without (|diff| %g)", step, len(seq), at, cached[at], full[at], worst)
		}
		t.Logf("step %d: %d positions, largest |diff| %.2g", step, len(seq), worst)
		id := argmax(full)
		next = []int{id}
		seq = append(seq, id)
	}
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func generate(t *testing.T, opts lm.Options) (lm.Result, string) {
	t.Helper()
	var got strings.Builder
	res, err := model(t).Generate(context.Background(), prompt, opts, func(s string) error {
		if s == "" {
			t.Error("emit called with empty text")
		}
		got.WriteString(s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != res.Text {
		t.Fatalf("the emitted pieces add up to %q; Result.Text is %q", got.String(), res.Text)
	}
	return res, got.String()
}

func TestGreedyIsDeterministic(t *testing.T) {
	a, _ := generate(t, lm.Options{MaxTokens: 8})
	b, _ := generate(t, lm.Options{MaxTokens: 8})
	if a.Text != b.Text || a.Text == "" {
		t.Fatalf("greedy runs differ or are empty: %q, %q", a.Text, b.Text)
	}
	t.Logf("%q -> %q (%d tokens, %s, first step %v, per step %v)", prompt, a.Text, a.Tokens, a.FinishReason, a.FirstStep, a.PerStep)
}

func TestSeedReproducible(t *testing.T) {
	opts := func(s uint64) lm.Options {
		return lm.Options{MaxTokens: 8, Temperature: 1, TopK: 40, TopP: 0.95, Seed: seed(s)}
	}
	a, _ := generate(t, opts(7))
	b, _ := generate(t, opts(7))
	if a.Text != b.Text || a.Seed != 7 {
		t.Fatalf("seed 7 gave %q then %q (seed %d)", a.Text, b.Text, a.Seed)
	}
	differs := false
	for s := uint64(8); s < 12 && !differs; s++ {
		c, _ := generate(t, opts(s))
		differs = c.Text != a.Text
	}
	if !differs {
		t.Fatalf("seeds 7 to 11 all gave %q: the seed does not reach the sampler", a.Text)
	}
}

func TestMaxTokens(t *testing.T) {
	for _, n := range []int{1, 3} {
		res, _ := generate(t, lm.Options{MaxTokens: n})
		if res.Tokens > n || (res.FinishReason == lm.FinishLength && res.Tokens != n) {
			t.Errorf("max_tokens %d: %d tokens, finish %q", n, res.Tokens, res.FinishReason)
		}
	}
}

// TestStop stops greedy generation at a piece of the text it generates
// without a stop: the text ends just before it, and nothing of the stop
// string was emitted.
func TestStop(t *testing.T) {
	full, _ := generate(t, lm.Options{MaxTokens: 10})
	var stop string
	switch words := strings.Fields(full.Text); {
	case len(words) >= 3 && strings.Contains(full.Text, " "+words[2]):
		stop = " " + words[2]
	case len(full.Text) >= 4:
		stop = full.Text[len(full.Text)/2 : len(full.Text)/2+2]
	default:
		t.Fatalf("greedy text %q is too short to pick a stop string from", full.Text)
	}
	want := full.Text[:strings.Index(full.Text, stop)]
	res, emitted := generate(t, lm.Options{MaxTokens: 10, Stop: []string{"never in the text", stop}})
	if res.Text != want || res.FinishReason != lm.FinishStop {
		t.Fatalf("stop %q: got %q (%s); want %q (stop)", stop, res.Text, res.FinishReason, want)
	}
	if strings.Contains(emitted, stop) {
		t.Fatalf("the stop string %q was emitted: %q", stop, emitted)
	}
}

func TestCancelMidGeneration(t *testing.T) {
	m := model(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pieces := 0
	start := time.Now()
	res, err := m.Generate(ctx, prompt, lm.Options{MaxTokens: 200}, func(string) error {
		pieces++
		if pieces == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	if res.FinishReason != lm.FinishCancelled || res.Tokens > 4 {
		t.Fatalf("finish %q after %d tokens; want cancelled right after the second piece", res.FinishReason, res.Tokens)
	}
	t.Logf("cancelled after %d tokens, %v", res.Tokens, time.Since(start))

	if _, err := m.Generate(ctx, prompt, lm.Options{}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("with a done context: err = %v; want context.Canceled", err)
	}
}

func TestEmitError(t *testing.T) {
	boom := errors.New("client gone")
	_, err := model(t).Generate(context.Background(), prompt, lm.Options{MaxTokens: 5}, func(string) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v; want the emit error", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts lm.Options
	}{
		{"negative max_tokens", lm.Options{MaxTokens: -1}},
		{"negative temperature", lm.Options{Temperature: -0.5}},
		{"top_p above 1", lm.Options{TopP: 1.5}},
		{"negative top_k", lm.Options{TopK: -1}},
		{"empty stop", lm.Options{Stop: []string{""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := model(t).Generate(context.Background(), prompt, tc.opts, nil)
			if !errors.Is(err, lm.ErrInvalid) {
				t.Fatalf("err = %v; want lm.ErrInvalid", err)
			}
		})
	}
	long := strings.Repeat("and ", model(t).ContextLength())
	if _, err := model(t).Generate(context.Background(), long, lm.Options{}, nil); !errors.Is(err, lm.ErrInvalid) {
		t.Fatalf("a prompt longer than the context: err = %v; want lm.ErrInvalid", err)
	}
}
