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
	"slices"
	"strings"
	"unicode"
)

// Typed turns a function of typed input and output into a Predictor that
// publishes their JSON Schemas (it is a SchemaProvider) and holds every
// request to its input schema.
//
// A request body is read as JSON and checked against In's schema first: a
// body that is not JSON is a 400 that says where it went wrong, and JSON
// that fails the schema is a 422 that lists every failing field with its
// JSON path ("$.name: missing; $.age: must be >= 0, got -3"; see
// Error.Fields). Then it is decoded into In, and Out is encoded as a JSON
// 200. An error fn returns is passed through unchanged, so fn may return
// an *Error with any status.
//
// The schemas (JSON Schema draft 2020-12) are derived from the Go types
// once, when Typed is called:
//
//   - a struct is an object whose fields are named as encoding/json names
//     them (json tags; "-" leaves one out; embedded structs are
//     flattened), and takes no other fields (a misspelt field is a 422,
//     not a silent zero);
//   - a field is required unless its json tag says omitempty or omitzero,
//     or it is a pointer (a nil pointer is how Go says "not sent");
//     `jsonschema:"required"` makes one required all the same;
//   - `jsonschema:"..."` tags add what a person filling a form needs, in
//     the syntax of github.com/invopop/jsonschema: description=...,
//     enum=a,enum=b, minimum=0, maximum=10, minLength=1, maxLength=64,
//     pattern=..., format=date-time, default=..., example=... (a comma
//     inside a value is written \\, in the tag);
//   - slices and arrays are arrays (an array has its length), maps are
//     objects, []byte is a base64 string, time.Time a date-time string;
//     sized integers carry their range (a uint8 is 0 to 255);
//   - a type with its own UnmarshalJSON takes any value and checks it
//     itself, unless it has a JSONSchema method (invopop's) that says
//     what it takes; a TextUnmarshaler takes a string;
//   - every type is inlined where it is used, with no $ref, except types
//     that contain themselves, kept in the schema's own $defs.
//
// When In is []byte, the raw body is passed as it came, unchecked, and
// the schema names no input but the media type application/octet-stream.
// When Out is *Response, fn answers as it likes and the schema names no
// output. The whole request (query, headers, path) stays within reach
// through RequestFromContext.
//
// Typed panics when In's schema does not compile, which only a malformed
// jsonschema tag (a bad pattern) makes it do: a programmer's error, found
// at start-up.
func Typed[In, Out any](fn func(ctx context.Context, in In) (Out, error)) Predictor {
	return &typed[In, Out]{fn: fn, typedSchema: newTypedSchema[In, Out]("Typed")}
}

type typed[In, Out any] struct {
	fn func(ctx context.Context, in In) (Out, error)
	*typedSchema
}

func (t *typed[In, Out]) Predict(ctx context.Context, req *Request) (*Response, error) {
	ctx = context.WithValue(ctx, requestKey{}, req)
	in, err := decodeTyped[In](t.typedSchema, req.Body)
	if err != nil {
		return nil, err
	}
	out, err := t.fn(ctx, in)
	if err != nil {
		return nil, err
	}
	if r, ok := any(out).(*Response); ok {
		return r, nil
	}
	return JSON(http.StatusOK, out)
}

// decodeTyped checks body against the input schema and decodes it into
// an In: as it came when In is []byte.
func decodeTyped[In any](ts *typedSchema, body []byte) (In, error) {
	var in In
	if raw, ok := any(&in).(*[]byte); ok {
		*raw = body
		return in, nil
	}
	if ts.input != nil {
		inst, err := parseJSON(body)
		if err != nil {
			return in, err
		}
		if err := ts.input.check(inst); err != nil {
			return in, err
		}
	}
	return in, decodeJSON(body, &in)
}

// typedSchema is what Typed and TypedStream work out once, from their
// types: the Schema they publish and the input schema they hold bodies
// to.
type typedSchema struct {
	schema Schema
	input  *Validator // nil: any JSON is taken
}

// Schema returns the JSON Schemas of the function's input and output.
func (t *typedSchema) Schema() Schema {
	s := t.schema
	s.Input, s.Output = bytes.Clone(s.Input), bytes.Clone(s.Output)
	s.InputMediaTypes, s.OutputMediaTypes = slices.Clone(s.InputMediaTypes), slices.Clone(s.OutputMediaTypes)
	return s
}

var (
	bytesType    = reflect.TypeFor[[]byte]()
	responseType = reflect.TypeFor[*Response]()
)

func newTypedSchema[In, Out any](caller string) *typedSchema {
	ts := &typedSchema{}
	in, out := reflect.TypeFor[In](), reflect.TypeFor[Out]()
	if in == bytesType {
		ts.schema.InputMediaTypes = []string{"application/octet-stream"}
	} else if raw, err := reflectSchema(in); err == nil && raw != nil {
		v, err := NewValidator(raw)
		if err != nil {
			panic(fmt.Sprintf("functions.%s: the JSON Schema of its input %s does not compile (check its jsonschema struct tags): %v", caller, in, err))
		}
		ts.schema.Input, ts.input = raw, v
	}
	if out != responseType {
		// An output type JSON cannot carry has no schema: the error is
		// fn's to meet, when encoding its answer.
		ts.schema.Output, _ = reflectSchema(out)
	}
	return ts
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
