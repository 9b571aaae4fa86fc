package adapters

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

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

// RouteServer is implemented by an Engine whose predictor serves POST
// routes of its own besides /predict (see functions.Router).
type RouteServer interface {
	ServesRoute(path string) bool
}

// StreamSink is where a carrier receives a streamed prediction. Its
// methods are called from the predictor's goroutine, never after
// InvokeStream has returned.
type StreamSink interface {
	// Open is called once, before the first chunk, with the stream's
	// header (Content-Type is the type of each chunk). A stream whose
	// Content-Type is text/event-stream writes its own events (OpenAI's
	// "data: {...}" and "data: [DONE]", say): its chunks go out as they
	// are, and the carrier adds only an "error" event when the prediction
	// fails midway.
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

// The events of a stream sent as server-sent events, the same on every
// carrier: one "output" event per chunk, whose data is the chunk (a field
// per line: the receiver joins them with "\n"), or "output.base64" with the
// chunk in base64 when it is not UTF-8 text; then "done" with
// {"status":"succeeded"}, or "error" with {"status": N, "error": "..."}
// when the prediction failed midway.

// AppendChunkEvent appends the event of one chunk to b.
func AppendChunkEvent(b, chunk []byte) []byte {
	if utf8.Valid(chunk) {
		return appendEvent(b, "output", chunk)
	}
	return appendEvent(b, "output.base64", base64.StdEncoding.AppendEncode(nil, chunk))
}

// AppendEndEvent appends the stream's last event to b: "done" when err is
// nil, else "error" with err's status and its message safe for the caller
// (as ErrorResponse gives them).
func AppendEndEvent(b []byte, err error) []byte {
	if err == nil {
		return appendEvent(b, "done", []byte(`{"status":"succeeded"}`))
	}
	status := functions.StatusOf(err)
	msg := http.StatusText(status)
	if fe := (*functions.Error)(nil); errors.As(err, &fe) && fe.Message != "" {
		msg = fe.Message
	}
	data, _ := json.Marshal(struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	}{status, msg})
	return appendEvent(b, "error", data)
}

// appendEvent appends one server-sent event: its name and data, one data
// field per line of data (a line break inside data cannot be sent
// otherwise).
func appendEvent(b []byte, name string, data []byte) []byte {
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, '\n')
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		b = append(b, "data: "...)
		b = append(b, data[:i]...)
		b = append(b, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	b = append(b, "data: "...)
	b = append(b, data...)
	return append(b, '\n', '\n')
}

// WritesOwnEvents reports whether a stream's header says its chunks are
// server-sent events already (Content-Type: text/event-stream), to send as
// they are.
func WritesOwnEvents(header http.Header) bool {
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	return mt == "text/event-stream"
}

// StreamHeader sets dst, the headers of an answer that streams, for a
// stream whose own header is header: server-sent events' when sse, else
// the chunks' Content-Type (application/octet-stream when it names none).
// It reports whether the stream writes its own events (WritesOwnEvents).
func StreamHeader(dst, header http.Header, sse bool) (ownEvents bool) {
	if sse {
		SSEHeader(dst)
		return WritesOwnEvents(header)
	}
	ct := header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	dst.Set("Content-Type", ct)
	return false
}

// SSEHeader sets the headers of an answer sent as server-sent events.
func SSEHeader(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies such as nginx: do not buffer
}
