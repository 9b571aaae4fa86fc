package functions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Typed turns a function of typed input and output into a Predictor. The
// request body is decoded as JSON into In (unknown fields are rejected, so a
// misspelt field is a 400, not a silent zero); a malformed body is a 400 that
// says where it went wrong. Out is encoded as a JSON 200. An error fn returns
// is passed through unchanged, so fn may return an *Error with any status.
//
// When In is []byte, the raw body is passed as it came. The whole request
// (query, headers, path) stays within reach through RequestFromContext.
func Typed[In, Out any](fn func(ctx context.Context, in In) (Out, error)) Predictor {
	return PredictorFunc(func(ctx context.Context, req *Request) (*Response, error) {
		ctx = context.WithValue(ctx, requestKey{}, req)
		var in In
		if raw, ok := any(&in).(*[]byte); ok {
			*raw = req.Body
		} else if err := decodeJSON(req.Body, &in); err != nil {
			return nil, err
		}
		out, err := fn(ctx, in)
		if err != nil {
			return nil, err
		}
		if r, ok := any(out).(*Response); ok {
			return r, nil
		}
		return JSON(http.StatusOK, out)
	})
}

// DecodeJSON decodes body into v the way Typed does, returning a 400 *Error
// that names the problem and its byte offset when the body is not valid JSON
// for v.
func DecodeJSON(body []byte, v any) error { return decodeJSON(body, v) }

func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return Errorf(http.StatusBadRequest, "request body is empty: send a JSON document")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &Error{Status: http.StatusBadRequest, Message: describeJSONError(err, dec), Err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Errorf(http.StatusBadRequest, "invalid JSON: unexpected data after the document at offset %d", dec.InputOffset())
	}
	return nil
}

func describeJSONError(err error, dec *json.Decoder) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at offset %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(document)"
		}
		return fmt.Sprintf("invalid JSON: field %q must be %s, got %s (offset %d)", field, typ.Type, typ.Value, typ.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("invalid JSON: the document ends early at offset %d", dec.InputOffset())
	default:
		return "invalid JSON: " + err.Error()
	}
}

type requestKey struct{}

// RequestFromContext returns the request a Typed function is serving, so it
// can read the query, headers or path beside its decoded body.
func RequestFromContext(ctx context.Context) (*Request, bool) {
	req, ok := ctx.Value(requestKey{}).(*Request)
	return req, ok
}
