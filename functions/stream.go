package functions

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"mime"
	"net/http"
)

// Streamer is implemented by a predictor whose output can leave as it is
// produced: the tokens of a generated text, frames, progress. The runtime
// calls PredictStream instead of Predict when the caller asks for a stream
// (HTTP: Accept: text/event-stream, or "stream": true in a JSON body; a
// Lambda function URL in RESPONSE_STREAM mode), and Predict otherwise. A
// predictor that implements only the streaming side can answer Predict with
// Collect.
//
// PredictStream sends its output to s, one chunk at a time, and returns
// when the prediction is complete: nil ends the stream normally, an error
// ends it with an error event (its status and message as for Predict's
// errors). ctx ends when the caller goes away or the prediction's deadline
// passes; a generation loop should check it between steps.
type Streamer interface {
	PredictStream(ctx context.Context, req *Request, s Stream) error
}

// Stream is where a streaming prediction sends its output.
type Stream interface {
	// Header is the stream's response header, to set before the first Send
	// (Content-Type: the type of each chunk; the runtime answers a
	// text/event-stream caller with one event per chunk whatever it is).
	Header() http.Header
	// Send sends one chunk now: as one server-sent event's data, or as
	// the next bytes of a chunked body. It returns an error when the chunk
	// cannot be delivered (the caller went away, the deadline passed); the
	// predictor should stop then and return.
	Send(chunk []byte) error
}

// SendJSON sends v encoded as JSON as one chunk of s.
func SendJSON(s Stream, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("functions: encoding a chunk: %w", err)
	}
	return s.Send(b)
}

// Collect runs a streaming prediction to its end and answers with every
// chunk, in order, as one body: concatenated, or as a JSON array of them
// when the stream's Content-Type is application/json (each chunk one JSON
// value). It is how a caller that does not ask for a stream is answered.
func Collect(ctx context.Context, p Streamer, req *Request) (*Response, error) {
	c := &collector{header: http.Header{}}
	if err := p.PredictStream(ctx, req, c); err != nil {
		return nil, err
	}
	return c.response(), nil
}

type collector struct {
	header http.Header
	chunks [][]byte
	size   int
}

func (c *collector) Header() http.Header { return c.header }

func (c *collector) Send(chunk []byte) error {
	c.chunks = append(c.chunks, bytes.Clone(chunk))
	c.size += len(chunk)
	return nil
}

func (c *collector) response() *Response {
	ct := c.header.Get("Content-Type")
	var body []byte
	if isJSON(ct) {
		body = make([]byte, 0, c.size+len(c.chunks)+2)
		body = append(body, '[')
		for i, ch := range c.chunks {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, ch...)
		}
		body = append(body, ']')
	} else {
		body = bytes.Join(c.chunks, nil)
	}
	return &Response{Status: http.StatusOK, Header: c.header, Body: body}
}

func isJSON(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/json"
}

// TypedStream turns a function that yields typed values into a predictor
// that streams them: the request body is checked and decoded as Typed
// checks and decodes it (a top-level "stream" key, the caller's way to
// ask for a stream, is left out first), and each Out the sequence yields
// is sent as one JSON chunk. Like Typed, it publishes its schemas: In's,
// and, as its Output, that of the JSON array of every Out (the answer
// without a stream).
// The sequence ends the stream with its error when it yields one. Without
// a stream asked for, the answer is the JSON array of every Out.
//
//	functions.TypedStream(func(ctx context.Context, in Prompt) iter.Seq2[Token, error] {
//		return func(yield func(Token, error) bool) {
//			for tok := range model.Generate(ctx, in.Text) {
//				if !yield(tok, nil) {
//					return // the caller went away
//				}
//			}
//		}
//	})
func TypedStream[In, Out any](fn func(ctx context.Context, in In) iter.Seq2[Out, error]) StreamingPredictor {
	return &typedStream[In, Out]{fn: fn, typedSchema: newTypedSchema[In, []Out]("TypedStream")}
}

// StreamingPredictor is a Predictor that also streams.
type StreamingPredictor interface {
	Predictor
	Streamer
}

type typedStream[In, Out any] struct {
	fn func(ctx context.Context, in In) iter.Seq2[Out, error]
	*typedSchema
}

func (f *typedStream[In, Out]) PredictStream(ctx context.Context, req *Request, s Stream) error {
	ctx = context.WithValue(ctx, requestKey{}, req)
	body := req.Body
	if _, raw := any((*In)(nil)).(*[]byte); !raw {
		body = WithoutStreamKey(body)
	}
	in, err := decodeTyped[In](f.typedSchema, body)
	if err != nil {
		return err
	}
	s.Header().Set("Content-Type", "application/json")
	for out, err := range f.fn(ctx, in) {
		if err != nil {
			return err
		}
		if err := SendJSON(s, out); err != nil {
			return err
		}
	}
	return nil
}

// WithoutStreamKey is a JSON object body without its top-level "stream"
// key: the caller's way to ask for a stream (as OpenAI's clients ask),
// which a predictor's input type need not declare. Other bodies are
// returned as they are.
func WithoutStreamKey(body []byte) []byte {
	if !bytes.Contains(body, []byte(`"stream"`)) {
		return body
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body // decodeJSON says what is wrong with it
	}
	if _, ok := m["stream"]; !ok {
		return body
	}
	delete(m, "stream")
	b, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return b
}

func (f *typedStream[In, Out]) Predict(ctx context.Context, req *Request) (*Response, error) {
	return Collect(ctx, f, req)
}

// Router is implemented by a predictor that serves POST routes of its own
// besides /predict: OpenAI's /v1/completions and /v1/chat/completions for
// a text generator, say. The carriers hand a request to one of them to
// Predict (or PredictStream) as they hand /predict, with Request.Path set
// to it; other paths stay 404.
type Router interface {
	// Routes returns the paths, each starting with "/".
	Routes() []string
}
