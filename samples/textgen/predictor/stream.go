package predictor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/samples/textgen/lm"
)

// The OpenAI-compatible routes (functions.Router): LLM clients and the
// OpenAI SDKs speak them already.
const (
	CompletionsPath     = "/v1/completions"
	ChatCompletionsPath = "/v1/chat/completions"
)

// Routes implements functions.Router.
func (p *TextGen) Routes() []string { return []string{CompletionsPath, ChatCompletionsPath} }

// PredictStream streams the text as the model produces it (functions.Streamer):
// on /predict, one JSON chunk {"text": piece} per piece, then one with the
// usage and finish reason ({"finish_reason", "tokens", "prompt_tokens",
// and "seed" when it sampled}); on the OpenAI routes, OpenAI's own server-sent events ("data:
// {chunk}" per piece, the last with its finish_reason, then "data: [DONE]").
func (p *TextGen) PredictStream(ctx context.Context, req *functions.Request, s functions.Stream) error {
	switch req.Path {
	case CompletionsPath, ChatCompletionsPath:
		return p.openAIStream(ctx, req, s)
	}
	var in Input
	if err := p.input.Decode(functions.WithoutStreamKey(req.Body), &in); err != nil {
		return err
	}
	s.Header().Set("Content-Type", "application/json")
	res, err := p.generate(ctx, in, func(piece string) error {
		return functions.SendJSON(s, struct {
			Text string `json:"text"`
		}{piece})
	})
	if err != nil {
		return err
	}
	var seed *uint64 // greedy decoding draws nothing: no seed to report
	if in.Temperature > 0 {
		seed = &res.Seed
	}
	return functions.SendJSON(s, struct {
		FinishReason string  `json:"finish_reason"`
		Tokens       int     `json:"tokens"`
		PromptTokens int     `json:"prompt_tokens"`
		Seed         *uint64 `json:"seed,omitempty"`
	}{res.FinishReason, res.Tokens, res.PromptTokens, seed})
}

// generate checks in and runs the model, emitting each piece.
func (p *TextGen) generate(ctx context.Context, in Input, emit func(string) error) (lm.Result, error) {
	if in.MaxTokens > MaxTokensLimit {
		return lm.Result{}, functions.Errorf(http.StatusBadRequest, "max_tokens is %d; at most %d", in.MaxTokens, MaxTokensLimit)
	}
	res, err := p.model.Generate(ctx, in.Prompt, in.Options(), emit)
	if errors.Is(err, lm.ErrInvalid) {
		return res, functions.Errorf(http.StatusBadRequest, "%v", err)
	}
	return res, err
}

// OpenAIRequest is the body of /v1/completions and /v1/chat/completions:
// the fields this model honours. model is accepted and echoed (one model
// is served); n must be 1; logprobs, echo, best_of, penalties, tools and
// the like are refused rather than ignored, so a client never believes it
// got what it did not.
type OpenAIRequest struct {
	Model       string          `json:"model"`
	Prompt      json.RawMessage `json:"prompt"`   // completions: a string (or a list of one)
	Messages    []ChatMessage   `json:"messages"` // chat: the conversation
	MaxTokens   *int            `json:"max_tokens"`
	MaxComplete *int            `json:"max_completion_tokens"`
	Temperature *float64        `json:"temperature"`
	TopP        *float64        `json:"top_p"`
	N           *int            `json:"n"`
	Stream      bool            `json:"stream"`
	Stop        StopList        `json:"stop"`
	Seed        *uint64         `json:"seed"`
	User        string          `json:"user"`
	// Accepted as OpenAI's clients send them, with no effect.
	StreamOptions json.RawMessage `json:"stream_options"`
}

// ChatMessage is one message of a chat.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// openAIDefaultMaxTokens is OpenAI's default for /v1/completions.
const openAIDefaultMaxTokens = 16

// input maps an OpenAI request onto the model's: a chat becomes a prompt
// of its messages, one a line ("role: content"), ending with "assistant:".
func (r *OpenAIRequest) input(chat bool) (Input, error) {
	if r.N != nil && *r.N != 1 {
		return Input{}, functions.Errorf(http.StatusBadRequest, "n is %d: this model returns one choice (n: 1)", *r.N)
	}
	in := Input{MaxTokens: openAIDefaultMaxTokens, Temperature: 1, Seed: r.Seed, Stop: r.Stop}
	if chat {
		in.MaxTokens = 0 // lm's default
	}
	for _, v := range []*int{r.MaxTokens, r.MaxComplete} {
		if v != nil {
			in.MaxTokens = *v
		}
	}
	if r.Temperature != nil {
		in.Temperature = *r.Temperature
	}
	if r.TopP != nil {
		in.TopP = *r.TopP
	}
	if chat {
		if len(r.Messages) == 0 {
			return Input{}, functions.Errorf(http.StatusBadRequest, "messages is empty: send at least one {\"role\", \"content\"}")
		}
		for _, m := range r.Messages {
			in.Prompt += m.Role + ": " + m.Content + "\n"
		}
		in.Prompt += "assistant:"
		return in, nil
	}
	var one string
	if err := json.Unmarshal(r.Prompt, &one); err != nil {
		var many []string
		if err := json.Unmarshal(r.Prompt, &many); err != nil || len(many) != 1 {
			return Input{}, functions.Errorf(http.StatusBadRequest, "prompt is a string (or a list of one string)")
		}
		one = many[0]
	}
	in.Prompt = one
	return in, nil
}

// decodeOpenAI reads an OpenAI request; unknown fields are a 400 naming
// them (functions.DecodeJSON).
func decodeOpenAI(body []byte) (*OpenAIRequest, error) {
	var r OpenAIRequest
	if err := functions.DecodeJSON(body, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// openAIComplete answers an OpenAI route without streaming.
func (p *TextGen) openAIComplete(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	chat := req.Path == ChatCompletionsPath
	r, err := decodeOpenAI(req.Body)
	if err != nil {
		return nil, err
	}
	in, err := r.input(chat)
	if err != nil {
		return nil, err
	}
	res, err := p.generate(ctx, in, nil)
	if err != nil {
		return nil, err
	}
	id, created := completionID(chat), time.Now().Unix()
	choice := map[string]any{"index": 0, "finish_reason": res.FinishReason}
	object := "text_completion"
	if chat {
		object = "chat.completion"
		choice["message"] = ChatMessage{Role: "assistant", Content: res.Text}
	} else {
		choice["text"], choice["logprobs"] = res.Text, nil
	}
	return functions.JSON(http.StatusOK, map[string]any{
		"id": id, "object": object, "created": created, "model": modelName(r),
		"choices": []any{choice},
		"usage":   usage(res),
	})
}

// openAIStream answers an OpenAI route with OpenAI's server-sent events.
func (p *TextGen) openAIStream(ctx context.Context, req *functions.Request, s functions.Stream) error {
	chat := req.Path == ChatCompletionsPath
	r, err := decodeOpenAI(req.Body)
	if err != nil {
		return err
	}
	in, err := r.input(chat)
	if err != nil {
		return err
	}
	s.Header().Set("Content-Type", "text/event-stream") // the events are written here
	id, created, model := completionID(chat), time.Now().Unix(), modelName(r)
	object := "text_completion"
	if chat {
		object = "chat.completion.chunk"
	}
	chunk := func(text string, finish any, first bool) map[string]any {
		c := map[string]any{"index": 0, "finish_reason": finish}
		if chat {
			delta := map[string]any{}
			if first {
				delta["role"] = "assistant"
			}
			if text != "" || !first {
				delta["content"] = text
			}
			c["delta"] = delta
		} else {
			c["text"], c["logprobs"] = text, nil
		}
		return map[string]any{"id": id, "object": object, "created": created, "model": model, "choices": []any{c}}
	}
	send := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return s.Send(append(append([]byte("data: "), b...), '\n', '\n'))
	}
	first := true
	res, err := p.generate(ctx, in, func(piece string) error {
		err := send(chunk(piece, nil, first))
		first = false
		return err
	})
	if err != nil {
		return err
	}
	last := chunk("", res.FinishReason, false)
	last["usage"] = usage(res)
	if err := send(last); err != nil {
		return err
	}
	return s.Send([]byte("data: [DONE]\n\n"))
}

func usage(res lm.Result) map[string]int {
	return map[string]int{"prompt_tokens": res.PromptTokens, "completion_tokens": res.Tokens, "total_tokens": res.PromptTokens + res.Tokens}
}

func modelName(r *OpenAIRequest) string {
	if r.Model != "" {
		return r.Model
	}
	return "textgen"
}

func completionID(chat bool) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	if chat {
		return "chatcmpl-" + hex.EncodeToString(b[:])
	}
	return "cmpl-" + hex.EncodeToString(b[:])
}

var (
	_ functions.Streamer = (*TextGen)(nil)
	_ functions.Router   = (*TextGen)(nil)
)
