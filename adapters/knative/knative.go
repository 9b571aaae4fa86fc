package knative

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/functions"
)

// ReplyTypeSuffix is appended to the incoming event's type to make the
// reply's.
const ReplyTypeSuffix = ".prediction"

// Option configures Wrap.
type Option func(*handler)

// WithSource sets the reply events' source (default $K_SERVICE, else the
// engine's name).
func WithSource(source string) Option { return func(h *handler) { h.source = source } }

// Wrap returns a handler that serves CloudEvents with e and passes every
// other request to next.
func Wrap(e adapters.Engine, next http.Handler, opts ...Option) http.Handler {
	h := &handler{e: e, next: next, source: os.Getenv("K_SERVICE")}
	if h.source == "" {
		h.source = e.Name()
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

type handler struct {
	e      adapters.Engine
	next   http.Handler
	source string
}

type mode uint8

const (
	notEvent mode = iota
	binary
	structured
	batch
	unsupported
)

func modeOf(h http.Header) mode {
	ct := strings.ToLower(h.Get("Content-Type"))
	if strings.HasPrefix(ct, "application/cloudevents") {
		switch f := format.Lookup(ct); {
		case f == format.JSONBatch:
			return batch
		case f != nil:
			return structured
		}
		return unsupported
	}
	if h.Get("Ce-Specversion") != "" {
		return binary
	}
	return notEvent
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := modeOf(r.Header)
	if m == notEvent || r.Method != http.MethodPost {
		h.next.ServeHTTP(w, r)
		return
	}
	id := r.Header.Get("X-Request-Id")
	switch m {
	case batch:
		writeError(w, &functions.Error{Status: http.StatusBadRequest,
			Message: "batched CloudEvents (application/cloudevents-batch+json) are not supported: send one event per request, as Knative Eventing does"}, id)
		return
	case unsupported:
		writeError(w, &functions.Error{Status: http.StatusUnsupportedMediaType,
			Message: fmt.Sprintf("CloudEvents format %q is not supported: use binary mode or application/cloudevents+json", r.Header.Get("Content-Type"))}, id)
		return
	}
	req, in, err := h.request(r, m)
	if err == nil {
		adapters.Route(req) // any other path is the function's own route
	}
	if err != nil {
		writeError(w, err, id)
		return
	}
	resp, err := h.e.Invoke(r.Context(), req)
	if err != nil {
		writeError(w, err, req.ID)
		return
	}
	if resp == nil {
		resp = &functions.Response{Status: http.StatusNoContent}
	}
	if resp.StatusCode() >= 300 {
		writeResponse(w, resp, req.ID)
		return
	}
	if len(resp.Body) == 0 || preferMinimal(r.Header) {
		setRequestID(w.Header(), req.ID)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	h.reply(w, r, m, in, resp, req.ID)
}

// request builds the functions.Request the HTTP carrier would build, with
// the event's data as the body.
func (h *handler) request(r *http.Request, m mode) (*functions.Request, *event.Event, error) {
	max := h.e.MaxBody()
	limit := max
	if m == structured {
		limit = max/3*4 + 64<<10
	}
	body, err := readBody(r, limit, max)
	if err != nil {
		return nil, nil, err
	}
	var ev *event.Event
	if m == structured {
		ev, err = unmarshalStructured(body)
	} else {
		// Attributes from the headers; the body is the data as it is.
		ev, err = binding.ToEvent(r.Context(), cehttp.NewMessage(r.Header, nil))
		if err == nil && len(body) > 0 {
			ev.DataEncoded = body
		}
	}
	if err == nil {
		err = ev.Validate()
	}
	if err != nil {
		return nil, nil, &functions.Error{Status: http.StatusBadRequest, Message: "invalid CloudEvent: " + describeInvalid(err), Err: err}
	}
	data := ev.Data()
	if int64(len(data)) > max {
		return nil, nil, adapters.TooLarge(int64(len(data)), max)
	}
	if len(data) == 0 {
		data = nil
	}
	header := r.Header
	if m == structured {
		header = r.Header.Clone()
		if ct := ev.DataContentType(); ct != "" {
			header.Set("Content-Type", ct)
		} else {
			header.Del("Content-Type")
		}
	}
	q := r.URL.Query()
	return &functions.Request{
		ID:          r.Header.Get("X-Request-Id"),
		Method:      r.Method,
		Path:        r.URL.Path,
		Query:       q,
		Header:      header,
		ContentType: ev.DataContentType(),
		Body:        data,
		Carrier:     functions.CarrierCloudEvent,
		Model:       q.Get("model"),
		Attributes:  attributes(ev),
	}, ev, nil
}

// describeInvalid puts the SDK's complaint about an event on one line. A
// ValidationError holds one problem per attribute, each ended by a newline
// and listed in map order: they are sorted and joined with "; ".
func describeInvalid(err error) string {
	var problems []string
	var ve event.ValidationError
	if errors.As(err, &ve) {
		for _, attr := range slices.Sorted(maps.Keys(ve)) {
			if e := ve[attr]; e != nil {
				problems = append(problems, attr+": "+strings.TrimSpace(e.Error()))
			}
		}
	} else {
		for line := range strings.Lines(err.Error()) {
			if line = strings.TrimSpace(line); line != "" {
				problems = append(problems, line)
			}
		}
	}
	return strings.Join(problems, "; ")
}

// unmarshalStructured decodes a structured-mode event. The SDK keeps the
// whitespace around a JSON data member, and misreads data_base64 preceded
// by whitespace when the event has no datacontenttype; a compacted
// envelope avoids both.
func unmarshalStructured(body []byte) (*event.Event, error) {
	ev := new(event.Event)
	err := format.JSON.Unmarshal(body, ev)
	if err != nil {
		var buf bytes.Buffer
		if json.Compact(&buf, body) != nil {
			return nil, err
		}
		ev = new(event.Event)
		if err := format.JSON.Unmarshal(buf.Bytes(), ev); err != nil {
			return nil, err
		}
	}
	if mt := ev.DataMediaType(); !ev.DataBase64 && (mt == "" || mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")) {
		ev.DataEncoded = bytes.TrimSpace(ev.DataEncoded)
	}
	return ev, nil
}

func readBody(r *http.Request, limit, max int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, adapters.TooLarge(r.ContentLength, max)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, &functions.Error{Status: http.StatusBadRequest, Message: "reading the request body: " + err.Error(), Err: err}
	}
	if int64(len(body)) > limit {
		return nil, adapters.TooLarge(0, max)
	}
	return body, nil
}

// attributes lists an event's context attributes and extensions as
// "ce-<name>" strings.
func attributes(ev *event.Event) map[string]string {
	exts := ev.Extensions()
	a := make(map[string]string, 8+len(exts))
	set := func(k, v string) {
		if v != "" {
			a["ce-"+k] = v
		}
	}
	set("specversion", ev.SpecVersion())
	set("id", ev.ID())
	set("source", ev.Source())
	set("type", ev.Type())
	set("subject", ev.Subject())
	set("datacontenttype", ev.DataContentType())
	set("dataschema", ev.DataSchema())
	if t := ev.Time(); !t.IsZero() {
		set("time", t.UTC().Format(time.RFC3339Nano))
	}
	for k, v := range exts {
		if s, err := types.Format(v); err == nil {
			set(k, s)
		}
	}
	return a
}

// reply answers with the prediction as a CloudEvent, in the request's mode.
func (h *handler) reply(w http.ResponseWriter, r *http.Request, m mode, in *event.Event, resp *functions.Response, requestID string) {
	out := event.New(in.SpecVersion())
	out.SetID(replyID(in))
	out.SetType(in.Type() + ReplyTypeSuffix)
	out.SetSource(h.source)
	if s := in.Subject(); s != "" {
		out.SetSubject(s)
	}
	out.SetTime(time.Now())
	ct := resp.ContentType()
	if ct == "" {
		ct = http.DetectContentType(resp.Body)
	}
	out.SetDataContentType(ct)
	out.DataEncoded = resp.Body

	dst := w.Header()
	for k, vs := range resp.Header {
		if k == "Content-Type" || k == "Content-Length" || strings.HasPrefix(k, "Ce-") {
			continue
		}
		dst[k] = vs
	}
	setRequestID(dst, requestID)
	ctx := binding.WithForceBinary(r.Context())
	if m == structured {
		ctx = binding.WithForceStructured(r.Context())
	}
	if err := cehttp.WriteResponseWriter(ctx, binding.ToMessage(&out), http.StatusOK, w); err != nil {
		// Headers may be gone already; nothing better to do than log.
		fmt.Fprintf(os.Stderr, "knative: writing the reply event for request %s: %v\n", requestID, err)
	}
}

// replyID is the same for every delivery of one event: a digest of its
// source and id.
func replyID(in *event.Event) string {
	sum := sha256.Sum256([]byte(in.Source() + "\x00" + in.ID()))
	return hex.EncodeToString(sum[:16])
}

func preferMinimal(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		for p := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "return=minimal") {
				return true
			}
		}
	}
	return false
}

// eventStatus is the status Knative Eventing retries exactly when the
// failure is transient: 404, 408 and 409, which it would retry, become 422.
func eventStatus(status int) int {
	switch status {
	case http.StatusNotFound, http.StatusRequestTimeout, http.StatusConflict:
		return http.StatusUnprocessableEntity
	}
	return status
}

func writeError(w http.ResponseWriter, err error, requestID string) {
	writeResponse(w, adapters.ErrorResponse(err, requestID), requestID)
}

func writeResponse(w http.ResponseWriter, resp *functions.Response, requestID string) {
	dst := w.Header()
	for k, vs := range resp.Header {
		dst[k] = vs
	}
	setRequestID(dst, requestID)
	if len(resp.Body) > 0 && dst.Get("Content-Type") == "" {
		dst.Set("Content-Type", http.DetectContentType(resp.Body))
	}
	dst.Set("Content-Length", fmt.Sprint(len(resp.Body)))
	w.WriteHeader(eventStatus(resp.StatusCode()))
	_, _ = w.Write(resp.Body)
}

// setRequestID sets X-Request-Id, which every answer carries: the
// caller's id, or the one the engine gave the request. An answer the
// carrier gives before the engine has the request (an invalid event, a
// batch, an unsupported format, a body over the limit) gets a new id, so
// that it too can be quoted.
func setRequestID(h http.Header, id string) {
	if id == "" {
		id = newRequestID()
	}
	h.Set("X-Request-Id", id)
}

// newRequestID is a random 128-bit id in hex, the runtime's format
// (runtime.NewRequestID; adapters do not import the runtime).
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var _ http.Handler = (*handler)(nil)
