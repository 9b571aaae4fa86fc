package functions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Error is an error that carries the status its caller should see. A
// predictor returns one (usually through Errorf) to answer, for example, 400
// for malformed input or 404 for an unknown model; the message reaches the
// caller as {"error": "..."}.
type Error struct {
	// Status is the HTTP status code, 400 to 599.
	Status int
	// Message is what the caller sees.
	Message string
	// RetryAfter, when set, is sent as the Retry-After header (for 429 and
	// 503 answers).
	RetryAfter time.Duration
	// Err is the underlying error, kept for errors.Is/As and for the log.
	Err error
	// Fields lists, for a request that failed its schema (a 422), every
	// failing field with its JSON path, in the order Message lists them.
	// Every carrier sends them as the error body's "fields" (see
	// ErrorBody), so a form can show each message beside its input.
	Fields []FieldError
}

// FieldError is one way a request body fails its schema: where, as a
// JSON path from the body's root ("$", "$.name", "$.inputs[0].shape"),
// and what is wrong, in the words of JSON ("missing", "want string, got
// number", "must be >= 0, got -3").
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// Unprocessable returns the 422 for a request whose fields fail its
// schema: Fields holds them, and Message is summary followed by every one
// of them, "summary: $.name: missing; $.age: must be >= 0, got -3", so a
// caller that reads only the message reads them all too.
func Unprocessable(summary string, fields []FieldError) *Error {
	var b strings.Builder
	b.WriteString(summary)
	for i, f := range fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Path)
		b.WriteString(": ")
		b.WriteString(f.Message)
	}
	return &Error{Status: http.StatusUnprocessableEntity, Message: b.String(), Fields: fields}
}

// Errorf returns an *Error with status and a formatted message. A %w verb
// wraps its operand as Err.
func Errorf(status int, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Status: status, Message: err.Error(), Err: errors.Unwrap(err)}
}

func (e *Error) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// StatusOf returns the status an error should reach a caller with: the
// Status of an *Error in its chain, else 500.
func StatusOf(err error) int {
	var fe *Error
	if errors.As(err, &fe) && fe.Status >= 400 && fe.Status <= 599 {
		return fe.Status
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON body every carrier sends for an error:
// {"error": "message"}, and, for a request that failed its schema, its
// failing fields (Error.Fields) too:
//
//	{"error": "request body does not match the input schema: $.age: must be >= 0, got -3",
//	 "fields": [{"path": "$.age", "message": "must be >= 0, got -3"}]}
//
// It leaves <, > and & as they are ("must be >= 0"): the body is JSON for
// a program or a person reading it, never markup.
func ErrorBody(message string, fields ...FieldError) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		Error  string       `json:"error"`
		Fields []FieldError `json:"fields,omitempty"`
	}{message, fields})
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
