// Package predictor is the textgen sample's predictor: it continues a
// prompt with a GPT-2-architecture language model (package lm), its own
// byte-level BPE tokenizer (package bpe) and a KV cache.
//
// Request:  POST /predict {"prompt": "And God said", "max_tokens": 16,
//
//	"temperature": 0, "top_k": 0, "top_p": 0, "seed": 7, "stop": ["."]}
//
// Response: 200 {"text": " unto Moses", "tokens": 3, "prompt_tokens": 3,
//
//	"finish_reason": "stop", "seed": 7}
//
// Every field but prompt is optional. temperature 0 (the default) is
// greedy decoding: the same prompt gives the same text. Above 0 the text is
// sampled (top_k, top_p), reproducibly for a given seed; without a seed one
// is picked and returned. stop is a string or a list of strings; the text
// ends before the first one. finish_reason is "stop" (a stop string or the
// model's end-of-text token), "length" (max_tokens, or the model's context
// is full) or "cancelled".
//
// predictor.model names a directory holding model.onnx, vocab.json,
// merges.txt and config.json (scripts/fetch-textgen-model.sh puts them
// there). Asked for a stream (Accept: text/event-stream, or "stream":
// true), it sends the text as the model produces it (see PredictStream),
// and it serves OpenAI's /v1/completions and /v1/chat/completions too
// (stream.go).
package predictor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/samples/textgen/lm"
)

// MaxTokensLimit bounds max_tokens: a request cannot hold the model (one
// prediction per process) for longer than this many steps.
const MaxTokensLimit = 512

// Input is the request body. Its tags become the input schema the
// function publishes (and holds requests to: a value out of range is a
// 422 naming the field): the page's form shows the descriptions and
// bounds.
type Input struct {
	Prompt      string   `json:"prompt" jsonschema:"description=The text to continue.,example=And God said"`
	MaxTokens   int      `json:"max_tokens,omitempty" jsonschema:"description=The most tokens to generate (0: 16).,minimum=0,maximum=512,default=16"`
	Temperature float64  `json:"temperature,omitempty" jsonschema:"description=0 is greedy: the same prompt gives the same text. Above 0 the text is sampled.,minimum=0,default=0"`
	TopK        int      `json:"top_k,omitempty" jsonschema:"description=Sample from the K most likely tokens only (0: all).,minimum=0,default=0"`
	TopP        float64  `json:"top_p,omitempty" jsonschema:"description=Sample from the fewest most likely tokens whose probabilities add up to P (0 or 1: all).,minimum=0,maximum=1,default=0"`
	Seed        *uint64  `json:"seed" jsonschema:"description=Makes sampling reproducible; one is picked and returned when left out."`
	Stop        StopList `json:"stop,omitempty"`
}

// StopList is "stop": one string or a list of them, as OpenAI's API takes.
type StopList []string

// JSONSchema says what StopList takes (its own UnmarshalJSON reads it), for
// the input schema: a string or a list of strings, none of them empty.
func (StopList) JSONSchema() *jsonschema.Schema {
	one := &jsonschema.Schema{Type: "string", MinLength: ptr(uint64(1))}
	return &jsonschema.Schema{
		Description: "The text ends before the first of these.",
		AnyOf:       []*jsonschema.Schema{one, {Type: "array", Items: one}},
	}
}

func ptr[T any](v T) *T { return &v }

// UnmarshalJSON takes a string or an array of strings.
func (s *StopList) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = nil
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = StopList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New(`"stop" is a string or a list of strings`)
	}
	*s = many
	return nil
}

// Output is the response body.
type Output struct {
	Text         string `json:"text"`
	Tokens       int    `json:"tokens"`
	PromptTokens int    `json:"prompt_tokens"`
	FinishReason string `json:"finish_reason"`
	Seed         uint64 `json:"seed"`
}

// TextGen is the predictor. New returns one; Init loads the model.
type TextGen struct {
	model *lm.Model
	typed functions.Predictor
	// input holds a streamed request's body to the schema typed holds
	// the others to, so both are answered alike.
	input *functions.Validator
}

// New returns the predictor. It is what the generated main calls.
func New() functions.Predictor {
	p := &TextGen{}
	p.typed = functions.Typed(p.Complete)
	v, err := functions.NewValidator(functions.SchemaOf(p.typed).Input)
	if err != nil {
		panic(fmt.Sprintf("textgen: the input schema does not compile: %v", err)) // Input's tags are wrong
	}
	p.input = v
	return p
}

// Schema is the schema of /predict: Input and Output, as Typed derives
// them (the OpenAI routes are OpenAI's).
func (p *TextGen) Schema() functions.Schema { return functions.SchemaOf(p.typed) }

// Init loads the model (on the GPU when the spec asks for one and CUDA is
// usable).
func (p *TextGen) Init(ctx context.Context, cfg functions.Config) error {
	if cfg.Model == "" {
		return errors.New("textgen: predictor.model is empty: name the directory that holds the model")
	}
	start := time.Now()
	m, err := lm.Open(ctx, cfg.Model, lm.Config{GPU: cfg.GPU, Dir: cfg.Dir})
	if err != nil {
		return fmt.Errorf("textgen: %w", err)
	}
	p.model = m
	slog.Info("textgen: model loaded", "dir", cfg.Model, "vocab", m.Tokenizer().VocabSize(),
		"context", m.ContextLength(), "provider", m.Provider(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Predict decodes the request (400 for malformed JSON) and answers with
// Complete's output.
func (p *TextGen) Predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	switch req.Path {
	case CompletionsPath, ChatCompletionsPath:
		return p.openAIComplete(ctx, req)
	}
	req.Body = functions.WithoutStreamKey(req.Body)
	return p.typed.Predict(ctx, req)
}

// Complete generates the whole text for in.
func (p *TextGen) Complete(ctx context.Context, in Input) (Output, error) {
	res, err := p.generate(ctx, in, nil)
	if err != nil {
		return Output{}, err
	}
	return Output{Text: res.Text, Tokens: res.Tokens, PromptTokens: res.PromptTokens, FinishReason: res.FinishReason, Seed: res.Seed}, nil
}

// Options are the generation options the request asks for.
func (in Input) Options() lm.Options {
	return lm.Options{MaxTokens: in.MaxTokens, Temperature: in.Temperature, TopK: in.TopK, TopP: in.TopP, Seed: in.Seed, Stop: in.Stop}
}

// Model returns the loaded model (nil before Init): what a streaming route
// calls Generate on.
func (p *TextGen) Model() *lm.Model { return p.model }

// Close releases the model.
func (p *TextGen) Close() error {
	if p.model == nil {
		return nil
	}
	return p.model.Close()
}

var (
	_ functions.Predictor      = (*TextGen)(nil)
	_ functions.Initializer    = (*TextGen)(nil)
	_ functions.Closer         = (*TextGen)(nil)
	_ functions.SchemaProvider = (*TextGen)(nil)
)
