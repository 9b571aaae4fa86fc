package adapters

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cortexfn/cortex/functions"
)

// AsyncEngine is implemented by an Engine that runs predictions in the
// background (*runtime.Runtime): a caller that asks for it with
// Prefer: respond-async gets a prediction resource at once and reads the
// answer later, or has it sent to a webhook. The HTTP carrier serves it
// (adapters/http: the prediction routes and /predictions/{id}); the
// Lambda carrier does not (a function URL's invocation ends with its
// answer; see docs/async.md).
type AsyncEngine interface {
	// Submit admits req as a background prediction and returns its
	// resource. With sub.ID set (the caller's id) and a prediction of
	// that id kept already, it runs nothing and returns that one with
	// created false, or a 409 when that one was made from another
	// request. Its error carries the status to answer (a 422 for a
	// refused webhook URL, a 503 at capacity).
	Submit(ctx context.Context, req *functions.Request, sub Submission) (p Prediction, created bool, err error)
	// Prediction returns the prediction id, or a 404 when none is kept
	// by that id (never made, or expired).
	Prediction(ctx context.Context, id string) (Prediction, error)
	// Cancel cancels the prediction id (its context ends) unless it has
	// finished, and returns it.
	Cancel(ctx context.Context, id string) (Prediction, error)
	// Wait waits until the prediction id has finished, or ctx ends, and
	// returns it as it is then.
	Wait(ctx context.Context, id string) (Prediction, error)
}

// Submission is how a caller asked for a background prediction.
type Submission struct {
	// ID is the caller's id for the prediction (PUT /predictions/{id});
	// empty: the engine makes one.
	ID string
	// Webhook is the URL the prediction's events are sent to; empty:
	// none.
	Webhook string
	// Events are the events the webhook gets (EventStart, EventOutput,
	// EventCompleted); empty means EventCompleted.
	Events []string
}

// The states of a prediction.
const (
	StatusStarting   = "starting"   // admitted, waiting for a slot
	StatusProcessing = "processing" // the predictor is running it
	StatusSucceeded  = "succeeded"  // answered with a status below 400
	StatusFailed     = "failed"     // answered with an error
	StatusCanceled   = "canceled"   // cancelled before it finished
)

// The events a webhook may ask for (Cortex-Webhook-Events).
const (
	EventStart     = "start"
	EventOutput    = "output"
	EventCompleted = "completed"
)

// Prediction is the resource of a background prediction: the body of
// GET /predictions/{id} and of every webhook delivery.
type Prediction struct {
	ID          string    `json:"id"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"created_at"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	CompletedAt time.Time `json:"completed_at,omitzero"`
	// Output is the answer's body: as it is when it is JSON, else a
	// base64 string (OutputEncoding "base64"). ContentType is the
	// answer's.
	Output         json.RawMessage `json:"output,omitempty"`
	OutputEncoding string          `json:"output_encoding,omitempty"`
	ContentType    string          `json:"content_type,omitempty"`
	// StatusCode is the HTTP status the prediction answered with.
	StatusCode int `json:"status_code,omitempty"`
	// Error says why it failed.
	Error string         `json:"error,omitempty"`
	URLs  PredictionURLs `json:"urls"`
}

// PredictionURLs are the prediction's routes, as paths on the function.
type PredictionURLs struct {
	Get    string `json:"get"`
	Cancel string `json:"cancel"`
}

// Done reports whether the prediction has finished, one way or another.
func (p Prediction) Done() bool {
	switch p.Status {
	case StatusSucceeded, StatusFailed, StatusCanceled:
		return true
	}
	return false
}

// predictionID is what a caller's prediction id may be: it is a path
// segment, so neither "." nor "..".
var predictionID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// CheckPredictionID returns nil when id may name a prediction (the
// caller's, in PUT /predictions/{id}), else the 400 that says what an id
// may be. The runtime and cortex serve's queue hold ids to it alike.
func CheckPredictionID(id string) error {
	if !predictionID.MatchString(id) || id == "." || id == ".." {
		shown := id
		if len(shown) > 140 {
			shown = shown[:140] + "..."
		}
		return &functions.Error{Status: http.StatusBadRequest, Message: fmt.Sprintf(
			"prediction id %q: use 1 to 128 letters, digits, '.', '_' and '-' (not . or ..)", shown)}
	}
	return nil
}

// PredictionPath is the path of the prediction id.
func PredictionPath(id string) string { return "/predictions/" + id }

// URLsOf returns the routes of the prediction id.
func URLsOf(id string) PredictionURLs {
	return PredictionURLs{Get: PredictionPath(id), Cancel: PredictionPath(id) + "/cancel"}
}

// PredictionRoute reads /predictions/{id} (action "") and
// /predictions/{id}/cancel (action "cancel"). It does not check the id's
// characters: the engine does, with a message.
func PredictionRoute(path string) (id, action string, ok bool) {
	rest, found := strings.CutPrefix(path, "/predictions/")
	if !found {
		return "", "", false
	}
	id, action, _ = strings.Cut(rest, "/")
	if id == "" || (action != "" && action != "cancel") {
		return "", "", false
	}
	return id, action, true
}

// Preferences are the preferences of a request's Prefer headers
// (RFC 7240): each token, lower-cased, and its value ("" for none).
type Preferences map[string]string

// ParsePrefer reads every Prefer header of h. Preferences are separated
// by commas; a value may be a token or a quoted string; parameters after
// ';' are dropped (none of the preferences read here has any). The first
// of a repeated preference wins, as RFC 7240 says.
func ParsePrefer(h http.Header) Preferences {
	var prefs Preferences
	for _, line := range h.Values("Prefer") {
		for _, item := range splitQuoted(line, ',') {
			item, _, _ = strings.Cut(item, ";")
			name, value, _ := strings.Cut(item, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			value = strings.TrimSpace(value)
			if uq, err := strconv.Unquote(value); err == nil && strings.HasPrefix(value, `"`) {
				value = uq
			}
			if prefs == nil {
				prefs = Preferences{}
			}
			if _, seen := prefs[name]; !seen {
				prefs[name] = value
			}
		}
	}
	return prefs
}

// RespondAsync reports whether the caller prefers an asynchronous answer.
func (p Preferences) RespondAsync() bool {
	_, ok := p["respond-async"]
	return ok
}

// Wait is the wait preference: how long the caller is willing to wait for
// the answer, 0 when it gave none (or not a number of seconds).
func (p Preferences) Wait() time.Duration {
	n, err := strconv.Atoi(p["wait"])
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 3600)) * time.Second
}

// splitQuoted splits s at sep outside double-quoted strings.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case c == '\\' && quoted:
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
