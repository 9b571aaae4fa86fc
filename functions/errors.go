package functions

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
// {"error": "message"}.
func ErrorBody(message string) []byte {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{message})
	return b
}
