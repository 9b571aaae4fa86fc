// Package lm generates text with a decoder-only language model of the
// GPT-2 family held in ONNX: the engine of the textgen sample.
//
// A model directory holds:
//
//	model.onnx   the decoder with a KV cache (names as in Hugging Face
//	             Optimum's GPT-2 exports):
//	               in:  input_ids [batch, seq]
//	                    past_key_values.{i}.key, .value [batch, heads, past, head_dim]
//	                    (and, when the model takes them, attention_mask
//	                    [batch, past+seq] and position_ids [batch, seq])
//	               out: logits [batch, seq, vocab]
//	                    present.{i}.key, .value [batch, heads, past+seq, head_dim]
//	vocab.json   the byte-level BPE vocabulary (package bpe)
//	merges.txt   its merges
//	config.json  optional: n_positions (the context, default 1024),
//	             eos_token_id (default <|endoftext|>'s id), n_head, n_embd
//
// Every tensor is float32 (token ids too, exact below 2^24) because
// runtime/onnx's Session runs float32 tensors only; see the sample's
// README for what a stock int64 export needs.
//
// Generate runs the prompt in one step, then one step per new token, each
// feeding the previous step's present key/values back as the past, so a
// token costs one forward pass over one position. It checks its context
// between steps (and ONNX Runtime stops a step in flight when the context
// ends) and returns the context's error.
package lm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cortexfn/cortex/runtime/onnx"
	"github.com/cortexfn/cortex/samples/textgen/bpe"
)

// The files a model directory holds.
const (
	ModelFile  = "model.onnx"
	VocabFile  = "vocab.json"
	MergesFile = "merges.txt"
	ConfigFile = "config.json"
)

// Why a generation ended (Result.FinishReason).
const (
	// FinishStop: a stop string appeared, or the model wrote its
	// end-of-text token.
	FinishStop = "stop"
	// FinishLength: MaxTokens were generated, or the context is full.
	FinishLength = "length"
	// FinishCancelled: the context ended (the caller left, or a deadline).
	FinishCancelled = "cancelled"
	// FinishError: the model or emit failed.
	FinishError = "error"
)

// DefaultMaxTokens is Options.MaxTokens when it is 0 (as OpenAI's
// completions).
const DefaultMaxTokens = 16

// ErrInvalid is wrapped by the errors Generate returns for bad options or
// a prompt that does not fit: the caller's fault (a 400), not the model's.
var ErrInvalid = errors.New("lm: invalid request")

// Config configures Open. The zero value runs on the CPU.
type Config struct {
	// GPU and Dir are passed to onnx.Open (functions.Config's GPU and Dir).
	GPU int
	Dir string
	// Threads is ONNX Runtime's intra-op threads; 0 means GOMAXPROCS.
	Threads int
}

// Model is a loaded language model. Generate may be called from many
// goroutines at once; each call has its own KV cache.
type Model struct {
	sess *onnx.Session
	tok  *bpe.Tokenizer

	layers         int
	heads, headDim int
	vocab          int
	context        int // most positions the model takes
	eos            int

	// Where each named input sits in Run's input order and each output in
	// its output order; -1 when absent.
	inIDs, inMask, inPos int
	inPast               []int // 2*layers: key, value per layer
	outLogits            int
	outPresent           []int
	nIn                  int
}

type modelConfig struct {
	NPositions int  `json:"n_positions"`
	NCtx       int  `json:"n_ctx"`
	EOS        *int `json:"eos_token_id"`
	NHead      int  `json:"n_head"`
	NEmbd      int  `json:"n_embd"`
}

// Open loads the model in dir.
func Open(ctx context.Context, dir string, cfg Config) (*Model, error) {
	var mc modelConfig
	switch b, err := os.ReadFile(filepath.Join(dir, ConfigFile)); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("lm: %w", err)
	default:
		if err := json.Unmarshal(b, &mc); err != nil {
			return nil, fmt.Errorf("lm: reading %s: %w", ConfigFile, err)
		}
	}
	tok, err := bpe.Load(filepath.Join(dir, VocabFile), filepath.Join(dir, MergesFile))
	if err != nil {
		return nil, fmt.Errorf("lm: %w", err)
	}
	sess, err := onnx.Open(ctx, filepath.Join(dir, ModelFile), onnx.SessionOptions{GPU: cfg.GPU, Dir: cfg.Dir, IntraOpThreads: cfg.Threads})
	if err != nil {
		return nil, fmt.Errorf("lm: opening %s: %w", ModelFile, err)
	}
	m := &Model{sess: sess, tok: tok, context: firstPositive(mc.NPositions, mc.NCtx, 1024)}
	if err := m.bind(mc); err != nil {
		sess.Close()
		return nil, err
	}
	switch {
	case mc.EOS != nil:
		m.eos = *mc.EOS
	default:
		id, ok := tok.ID(bpe.EndOfText)
		if !ok {
			id = -1
		}
		m.eos = id
	}
	if tok.VocabSize() > m.vocab && m.vocab > 0 {
		sess.Close()
		return nil, fmt.Errorf("lm: the vocabulary has %d tokens; the model's logits only %d", tok.VocabSize(), m.vocab)
	}
	return m, nil
}

func firstPositive(vs ...int) int {
	for _, v := range vs {
		if v > 0 {
			return v
		}
	}
	return 0
}

// bind finds the named inputs and outputs and the cache's shape.
func (m *Model) bind(mc modelConfig) error {
	ins, outs := m.sess.Inputs(), m.sess.Outputs()
	m.nIn = len(ins)
	m.inIDs, m.inMask, m.inPos, m.outLogits = -1, -1, -1, -1
	pastIdx := map[string]int{}
	for i, t := range ins {
		switch {
		case t.Name == "input_ids":
			m.inIDs = i
		case t.Name == "attention_mask":
			m.inMask = i
		case t.Name == "position_ids":
			m.inPos = i
		case strings.HasPrefix(t.Name, "past_key_values."):
			pastIdx[t.Name] = i
			if len(t.Shape) != 4 {
				return fmt.Errorf("lm: input %s has shape %v; want [batch, heads, past, head_dim]", t.Name, t.Shape)
			}
			if t.Shape[1] > 0 {
				m.heads = int(t.Shape[1])
			}
			if t.Shape[3] > 0 {
				m.headDim = int(t.Shape[3])
			}
		default:
			return fmt.Errorf("lm: the model has an input %q this engine does not know", t.Name)
		}
	}
	if m.inIDs < 0 {
		return errors.New("lm: the model has no input_ids input")
	}
	m.layers = len(pastIdx) / 2
	if m.layers == 0 || len(pastIdx) != 2*m.layers {
		return fmt.Errorf("lm: the model has %d past_key_values inputs; want a key and a value per layer (a model exported with its KV cache)", len(pastIdx))
	}
	if m.heads == 0 && mc.NHead > 0 {
		m.heads = mc.NHead
	}
	if m.headDim == 0 && mc.NHead > 0 && mc.NEmbd > 0 {
		m.headDim = mc.NEmbd / mc.NHead
	}
	if m.heads == 0 || m.headDim == 0 {
		return errors.New("lm: the past's heads and head size are dynamic in the model; config.json must give n_head and n_embd")
	}
	outIdx := map[string]int{}
	for i, t := range outs {
		outIdx[t.Name] = i
		if t.Name == "logits" {
			m.outLogits = i
			if len(t.Shape) == 3 && t.Shape[2] > 0 {
				m.vocab = int(t.Shape[2])
			}
		}
	}
	if m.outLogits < 0 {
		return errors.New("lm: the model has no logits output")
	}
	for l := range m.layers {
		for _, kv := range []string{"key", "value"} {
			in, ok := pastIdx[fmt.Sprintf("past_key_values.%d.%s", l, kv)]
			if !ok {
				return fmt.Errorf("lm: the model lacks input past_key_values.%d.%s", l, kv)
			}
			out, ok := outIdx[fmt.Sprintf("present.%d.%s", l, kv)]
			if !ok {
				return fmt.Errorf("lm: the model lacks output present.%d.%s", l, kv)
			}
			m.inPast = append(m.inPast, in)
			m.outPresent = append(m.outPresent, out)
		}
	}
	return nil
}

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *bpe.Tokenizer { return m.tok }

// ContextLength returns how many positions (prompt and generated tokens)
// the model takes.
func (m *Model) ContextLength() int { return m.context }

// Provider returns where the model runs: "CPU" or "CUDA".
func (m *Model) Provider() string { return m.sess.Provider() }

// Close releases the session.
func (m *Model) Close() error { return m.sess.Close() }

// Options controls one generation. The zero value generates
// DefaultMaxTokens tokens greedily.
type Options struct {
	// MaxTokens is the most tokens generated; 0 means DefaultMaxTokens.
	MaxTokens int
	// Temperature divides the logits before sampling; 0 means greedy (the
	// most likely token every step; ties go to the lowest id).
	Temperature float64
	// TopK samples from the K most likely tokens only; 0 means all.
	TopK int
	// TopP samples from the fewest most likely tokens whose probabilities
	// add up to at least TopP (nucleus sampling); 0 or 1 means all.
	TopP float64
	// Seed makes sampling reproducible: the same prompt, options and seed
	// give the same text. Nil picks a seed (Result.Seed says which).
	Seed *uint64
	// Stop ends the generation when the text contains one of these; the
	// stop string and what follows are not returned.
	Stop []string
}

func (o *Options) check() error {
	var errs []error
	if o.MaxTokens < 0 {
		errs = append(errs, fmt.Errorf("max_tokens is %d; want 0 or more", o.MaxTokens))
	}
	if o.Temperature < 0 || math.IsNaN(o.Temperature) || math.IsInf(o.Temperature, 0) {
		errs = append(errs, fmt.Errorf("temperature is %v; want 0 (greedy) or more", o.Temperature))
	}
	if o.TopK < 0 {
		errs = append(errs, fmt.Errorf("top_k is %d; want 0 (all) or more", o.TopK))
	}
	if o.TopP < 0 || o.TopP > 1 || math.IsNaN(o.TopP) {
		errs = append(errs, fmt.Errorf("top_p is %v; want 0 to 1", o.TopP))
	}
	for i, s := range o.Stop {
		if s == "" {
			errs = append(errs, fmt.Errorf("stop[%d] is empty", i))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// Result is one generation's outcome.
type Result struct {
	// Text is the generated text (the prompt not included), up to and
	// without the stop string.
	Text string
	// PromptTokens and Tokens count the prompt's tokens and the tokens
	// generated (the end-of-text token not included).
	PromptTokens, Tokens int
	// FinishReason is FinishStop, FinishLength, FinishCancelled or
	// FinishError.
	FinishReason string
	// Seed is the seed sampling used.
	Seed uint64
	// FirstStep is the prompt's forward step and the first token's choice:
	// the model's time to first token. PerStep is the mean time of each
	// later step (one token through the model with the cache), Total the
	// whole call.
	FirstStep, PerStep, Total time.Duration
}

// Generate continues prompt. emit, when not nil, is called with each new
// piece of text as soon as it is whole UTF-8 and cannot be part of a stop
// string, in order; the pieces add up to Result.Text. An error from emit
// ends the generation and is returned (wrapped). When ctx ends, Generate
// returns what it has with FinishCancelled and ctx's error.
func (m *Model) Generate(ctx context.Context, prompt string, opts Options, emit func(text string) error) (Result, error) {
	start := time.Now()
	res := Result{FinishReason: FinishError}
	defer func() { res.Total = time.Since(start) }()
	if err := opts.check(); err != nil {
		return res, err
	}
	maxTokens := opts.MaxTokens
	if maxTokens == 0 {
		maxTokens = DefaultMaxTokens
	}
	ids := m.tok.Encode(prompt)
	if len(ids) == 0 {
		// GPT-2 starts a text after its end-of-text token.
		if m.eos < 0 {
			return res, fmt.Errorf("%w: the prompt is empty and the model has no end-of-text token to start from", ErrInvalid)
		}
		ids = []int{m.eos}
	}
	res.PromptTokens = len(ids)
	if len(ids) >= m.context {
		return res, fmt.Errorf("%w: the prompt is %d tokens; the model takes %d in all, generated tokens included", ErrInvalid, len(ids), m.context)
	}
	if opts.Seed != nil {
		res.Seed = *opts.Seed
	} else {
		res.Seed = rand.Uint64()
	}
	rng := rand.New(rand.NewPCG(res.Seed, 0x74657874_67656e00)) // "textgen"
	s := sampler{opts: opts, rng: rng}

	out := &emitter{stops: opts.Stop, emit: emit}
	stream := m.tok.Stream()
	cache := m.newCache()
	var later time.Duration
	next := ids
	for step := 0; ; step++ {
		if err := ctx.Err(); err != nil {
			return m.cancelled(res, out, err)
		}
		if step == maxTokens || cache.n+len(next) > m.context {
			res.FinishReason = FinishLength
			break
		}
		t0 := time.Now()
		logits, err := m.forward(ctx, next, cache)
		if err != nil {
			if ctx.Err() != nil {
				return m.cancelled(res, out, ctx.Err())
			}
			return m.finish(res, out), err
		}
		id := s.next(logits)
		if step == 0 {
			res.FirstStep = time.Since(t0)
		} else {
			later += time.Since(t0)
		}
		if id == m.eos {
			res.FinishReason = FinishStop
			break
		}
		res.Tokens++
		stopped, err := out.add(stream.Next(id))
		if err != nil {
			return m.finish(res, out), err
		}
		if stopped {
			res.FinishReason = FinishStop
			break
		}
		next = []int{id}
	}
	if res.Tokens > 1 {
		res.PerStep = later / time.Duration(res.Tokens-1)
	}
	if res.FinishReason != FinishStop || !out.stopped {
		if _, err := out.add(stream.Flush()); err != nil {
			return m.finish(res, out), err
		}
		if err := out.flush(); err != nil {
			return m.finish(res, out), err
		}
	}
	return m.finish(res, out), nil
}

func (m *Model) finish(res Result, out *emitter) Result {
	res.Text = out.text()
	return res
}

func (m *Model) cancelled(res Result, out *emitter, err error) (Result, error) {
	res.FinishReason = FinishCancelled
	return m.finish(res, out), err
}

// cache is one generation's KV cache: the present key/values of the last
// step, fed back as the next step's past.
type cache struct {
	past []onnx.Tensor
	n    int // positions held
}

func (m *Model) newCache() *cache {
	c := &cache{past: make([]onnx.Tensor, 2*m.layers)}
	for i := range c.past {
		c.past[i] = onnx.Tensor{Shape: []int64{1, int64(m.heads), 0, int64(m.headDim)}, Data: []float32{}}
	}
	return c
}

// forward runs ids (the prompt, or one new token) through the model after
// the positions c holds, moves c on, and returns the logits of the last
// position.
func (m *Model) forward(ctx context.Context, ids []int, c *cache) ([]float32, error) {
	in := make([]onnx.Tensor, m.nIn)
	t := int64(len(ids))
	tokens := make([]float32, len(ids))
	for i, id := range ids {
		tokens[i] = float32(id)
	}
	in[m.inIDs] = onnx.Tensor{Shape: []int64{1, t}, Data: tokens}
	if m.inMask >= 0 {
		mask := make([]float32, c.n+len(ids))
		for i := range mask {
			mask[i] = 1
		}
		in[m.inMask] = onnx.Tensor{Shape: []int64{1, int64(len(mask))}, Data: mask}
	}
	if m.inPos >= 0 {
		pos := make([]float32, len(ids))
		for i := range pos {
			pos[i] = float32(c.n + i)
		}
		in[m.inPos] = onnx.Tensor{Shape: []int64{1, t}, Data: pos}
	}
	for i, at := range m.inPast {
		in[at] = c.past[i]
	}
	out, err := m.sess.Run(ctx, in...)
	if err != nil {
		return nil, fmt.Errorf("lm: step at position %d: %w", c.n, err)
	}
	logits := out[m.outLogits]
	if len(logits.Shape) != 3 || logits.Shape[1] != t {
		return nil, fmt.Errorf("lm: logits have shape %v; want [1, %d, vocab]", logits.Shape, t)
	}
	v := int(logits.Shape[2])
	for i, at := range m.outPresent {
		c.past[i] = out[at]
	}
	c.n += len(ids)
	return logits.Data[len(logits.Data)-v:], nil
}

// sampler picks each next token.
type sampler struct {
	opts Options
	rng  *rand.Rand
	idx  []int
	p    []float64
}

func (s *sampler) next(logits []float32) int {
	if s.opts.Temperature == 0 || s.opts.TopK == 1 {
		return argmax(logits)
	}
	// Candidates, most likely first (ties: lowest id first), so that the
	// walk below, and so the seed's result, is the same on every run.
	s.idx = s.idx[:0]
	for i := range logits {
		s.idx = append(s.idx, i)
	}
	byLogit := func(a, b int) int {
		switch {
		case logits[a] > logits[b]:
			return -1
		case logits[a] < logits[b]:
			return 1
		}
		return a - b
	}
	if k := s.opts.TopK; k > 0 && k < len(s.idx) {
		s.idx = topK(s.idx, k, byLogit)
	} else {
		slices.SortFunc(s.idx, byLogit)
	}
	top := float64(logits[s.idx[0]])
	s.p = s.p[:0]
	sum := 0.0
	for _, i := range s.idx {
		p := math.Exp((float64(logits[i]) - top) / s.opts.Temperature)
		s.p = append(s.p, p)
		sum += p
	}
	n := len(s.p)
	if tp := s.opts.TopP; tp > 0 && tp < 1 {
		acc := 0.0
		for i, p := range s.p {
			acc += p / sum
			if acc >= tp {
				n = i + 1
				break
			}
		}
		sum = 0
		for _, p := range s.p[:n] {
			sum += p
		}
	}
	u := s.rng.Float64() * sum
	for i, p := range s.p[:n] {
		u -= p
		if u < 0 {
			return s.idx[i]
		}
	}
	return s.idx[n-1]
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

// topK returns the k first of idx in cmp's order, sorted: a partial
// selection sort for small k, a full sort otherwise.
func topK(idx []int, k int, cmp func(a, b int) int) []int {
	if k > 64 {
		slices.SortFunc(idx, cmp)
		return idx[:k]
	}
	for i := range k {
		best := i
		for j := i + 1; j < len(idx); j++ {
			if cmp(idx[j], idx[best]) < 0 {
				best = j
			}
		}
		idx[i], idx[best] = idx[best], idx[i]
	}
	return idx[:k]
}

// emitter gathers the generated text, finds stop strings in it, and emits
// what is safe to emit: text that cannot turn out to be the start of a
// stop string.
type emitter struct {
	stops   []string
	emit    func(string) error
	buf     strings.Builder
	sent    int // bytes of buf emitted
	cut     int // where a stop string begins; -1 while none was found
	stopped bool
}

// add appends a piece of text; it reports whether a stop string appeared.
func (e *emitter) add(piece string) (bool, error) {
	if piece == "" {
		return false, nil
	}
	from := max(0, e.buf.Len()-longest(e.stops)+1)
	e.buf.WriteString(piece)
	text := e.buf.String()
	at := -1
	for _, s := range e.stops {
		if i := strings.Index(text[from:], s); i >= 0 && (at < 0 || from+i < at) {
			at = from + i
		}
	}
	if at >= 0 {
		e.stopped, e.cut = true, at
		return true, e.send(text[:at])
	}
	return false, e.send(text[:len(text)-heldBack(text, e.stops)])
}

// flush emits what is held back: the generation is over without a stop.
func (e *emitter) flush() error { return e.send(e.buf.String()) }

func (e *emitter) send(upTo string) error {
	if len(upTo) <= e.sent {
		return nil
	}
	piece := upTo[e.sent:]
	e.sent = len(upTo)
	if e.emit == nil {
		return nil
	}
	if err := e.emit(piece); err != nil {
		return fmt.Errorf("lm: emit: %w", err)
	}
	return nil
}

func (e *emitter) text() string {
	if e.stopped {
		return e.buf.String()[:e.cut]
	}
	return e.buf.String()
}

func longest(ss []string) int {
	n := 0
	for _, s := range ss {
		n = max(n, len(s))
	}
	return n
}

// heldBack returns the length of the longest end of text that is the
// start of a stop string.
func heldBack(text string, stops []string) int {
	n := 0
	for _, s := range stops {
		for k := min(len(s)-1, len(text)); k > n; k-- {
			if strings.HasSuffix(text, s[:k]) {
				n = k
				break
			}
		}
	}
	return n
}
