package functions

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode"
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
// when the body is not valid JSON for v. Its message speaks of the body,
// never of v's Go types: the byte offset and, for a value of the wrong
// kind, its path and what was wanted ("inputs[0].shape: want an array of
// integers, got a string").
func DecodeJSON(body []byte, v any) error { return decodeJSON(body, v) }

func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return Errorf(http.StatusBadRequest, "request body is empty: send a JSON document")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// A field's own UnmarshalJSON (oip.InferenceRequest's) has
		// already said what is wrong, with its status.
		var fe *Error
		if errors.As(err, &fe) {
			return err
		}
		return &Error{Status: http.StatusBadRequest, Message: describeJSONError(err, body), Err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Errorf(http.StatusBadRequest, "invalid JSON: unexpected data after the document at offset %d", dec.InputOffset())
	}
	return nil
}

// describeJSONError says what is wrong with body in the words of JSON and
// of the body's own fields: the caller never sees the Go types it was
// decoded into.
func describeJSONError(err error, body []byte) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at offset %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		// Field leaves out array indices (inputs.shape for
		// inputs[0].shape); the path is found again from the offset.
		path, ok := pathAt(body, typ.Offset)
		if !ok {
			path = typ.Field
		}
		if path == "" {
			path = "the request body"
		}
		return fmt.Sprintf("%s: want %s, got %s (offset %d)", path, describeType(typ.Type), describeValue(typ.Value, body, typ.Offset), typ.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		// The decoder's offset is where the document began, not where it
		// stopped: a truncated document stops at the end of the body.
		return fmt.Sprintf("invalid JSON: the document ends early, at offset %d (the end of the body)", len(body))
	default:
		return "invalid JSON: " + err.Error()
	}
}

// pathAt returns the path, such as inputs[0].shape, of the value in body
// that encoding/json reports a type error at: a literal ends at offset, an
// array or object opens just before it. It reports false when no value
// does.
func pathAt(body []byte, offset int64) (string, bool) {
	type level struct {
		object  bool
		wantKey bool
		key     string
		index   int
	}
	var stack []level
	// next moves the innermost container on past the value just read.
	next := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].wantKey = true
			} else {
				stack[n-1].index++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // a number too large for float64 is still a token
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		delim, isDelim := tok.(json.Delim)
		if isDelim && (delim == '}' || delim == ']') {
			stack = stack[:len(stack)-1]
			next()
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			stack[n-1].key, _ = tok.(string)
			stack[n-1].wantKey = false
			continue
		}
		if dec.InputOffset() == offset {
			var b strings.Builder
			for _, l := range stack {
				switch {
				case !l.object:
					fmt.Fprintf(&b, "[%d]", l.index)
				case isName(l.key):
					if b.Len() > 0 {
						b.WriteByte('.')
					}
					b.WriteString(l.key)
				default:
					fmt.Fprintf(&b, "[%q]", l.key)
				}
			}
			return b.String(), true
		}
		if isDelim {
			stack = append(stack, level{object: delim == '{', wantKey: delim == '{'})
			continue
		}
		next()
	}
}

// isName reports whether key reads unambiguously after a dot in a path.
func isName(key string) bool {
	if key == "" {
		return false
	}
	for _, c := range key {
		if !(c == '_' || c == '-' || unicode.IsLetter(c) || unicode.IsDigit(c)) {
			return false
		}
	}
	return true
}

// describeValue words the kind of value encoding/json found ("string",
// "bool", "number 1.5"), ending at offset in body, as the codec's other
// messages do.
func describeValue(v string, body []byte, offset int64) string {
	switch v {
	case "bool":
		if offset <= int64(len(body)) && bytes.HasSuffix(body[:offset], []byte("false")) {
			return "false"
		}
		return "true"
	case "array", "object":
		return "an " + v
	case "string", "number":
		return "a " + v
	}
	if n, ok := strings.CutPrefix(v, "number "); ok {
		return n
	}
	return v
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonNumber      = reflect.TypeFor[json.Number]()
)

// describeType names the JSON that decodes into t: "an integer", "an array
// of integers".
func describeType(t reflect.Type) string {
	return kindOf(t, false)
}

func kindOf(t reflect.Type, plural bool) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pick := func(one, many string) string {
		if plural {
			return many
		}
		return one
	}
	pt := reflect.PointerTo(t)
	switch {
	case t == jsonNumber:
		return pick("a number", "numbers")
	case !pt.Implements(jsonUnmarshaler) && pt.Implements(textUnmarshaler):
		return pick("a string", "strings")
	}
	switch t.Kind() {
	case reflect.Bool:
		return pick("true or false", "booleans")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return pick("an integer", "integers")
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return pick("a non-negative integer", "non-negative integers")
	case reflect.Float32, reflect.Float64:
		return pick("a number", "numbers")
	case reflect.String:
		return pick("a string", "strings")
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 && !reflect.PointerTo(t.Elem()).Implements(jsonUnmarshaler) {
			return pick("a base64 string", "base64 strings")
		}
		return pick("an array of ", "arrays of ") + kindOf(t.Elem(), true)
	case reflect.Map, reflect.Struct:
		return pick("an object", "objects")
	case reflect.Interface:
		return pick("any value", "values")
	}
	return pick("another kind of value", "values of another kind")
}

type requestKey struct{}

// RequestFromContext returns the request a Typed function is serving, so it
// can read the query, headers or path beside its decoded body.
func RequestFromContext(ctx context.Context) (*Request, bool) {
	req, ok := ctx.Value(requestKey{}).(*Request)
	return req, ok
}
