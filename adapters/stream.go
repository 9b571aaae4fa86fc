package adapters

import (
	"bytes"
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	"github.com/cortexfn/cortex/functions"
)

// StreamEngine is implemented by an Engine that can stream a prediction's
// output as the predictor produces it (see functions.Streamer):
// *runtime.Runtime.
type StreamEngine interface {
	// InvokeStream runs one prediction for a caller that asked for a
	// stream. Once the predictor sends its first chunk, sink is opened
	// with the stream's header and gets every chunk as it is sent;
	// InvokeStream then returns nil resp and the error that ended the
	// stream (nil when it ended normally), for the carrier to send as the
	// stream's last event. When sink was never opened (the predictor does
	// not stream, or it failed before its first chunk) resp and err are
	// what Invoke would return, for the carrier to answer as it answers
	// Invoke's results (a 2xx body may go out as one event).
	InvokeStream(ctx context.Context, req *functions.Request, sink StreamSink) (resp *functions.Response, err error)
}

// StreamSink is where a carrier receives a streamed prediction. Its
// methods are called from the predictor's goroutine, never after
// InvokeStream has returned.
type StreamSink interface {
	// Open is called once, before the first chunk, with the stream's
	// header (Content-Type is the type of each chunk).
	Open(header http.Header) error
	// Send delivers one chunk and flushes it to the caller.
	Send(chunk []byte) error
}

// WantsStream reports whether a request to a predict route asks for its
// output as a stream: Accept names text/event-stream, or the body is a
// JSON object whose top-level "stream" is true (OpenAI's clients ask so).
// sse says whether the stream should be server-sent events: always, but
// for a "stream": true request whose Accept names a type other than
// text/event-stream (text/plain, application/x-ndjson, ...): those get the
// chunks themselves, concatenated, each flushed as it comes.
func WantsStream(header http.Header, body []byte) (stream, sse bool) {
	accept := header.Get("Accept")
	if acceptsEventStream(accept) {
		return true, true
	}
	if !streamFlag(body) {
		return false, false
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt != "*/*" && mt != "application/json" {
			return true, false
		}
	}
	return true, true
}

func acceptsEventStream(accept string) bool {
	if accept == "" || !strings.Contains(accept, "text/event-stream") {
		return false
	}
	for _, part := range strings.Split(accept, ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}

// streamFlag reports whether body is a JSON object with "stream": true at
// its top level. A body without the word "stream" costs one scan.
func streamFlag(body []byte) bool {
	if !bytes.Contains(body, []byte(`"stream"`)) {
		return false
	}
	var v struct {
		Stream *bool `json:"stream"`
	}
	if json.Unmarshal(body, &v) != nil || v.Stream == nil {
		return false
	}
	return *v.Stream
}
