package functions

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// This file holds a request body to a JSON Schema and words every way it
// fails it, for Typed's 422.

// MaxFieldErrors bounds the failing fields one 422 lists: a body with
// thousands of bad elements gets the first ones, and says how many more.
const MaxFieldErrors = 100

// schemaSummary begins the message of every 422 for a body that fails
// its input schema.
const schemaSummary = "request body does not match the input schema"

// Validator holds JSON request bodies to one JSON Schema. Typed makes one
// from its input type; a predictor that publishes an Input schema of its
// own (SchemaProvider) can hold its bodies to it with one too, and answer
// as Typed does. It is safe for concurrent use.
type Validator struct {
	s *jsonschema.Schema
}

// NewValidator compiles a JSON Schema (draft 2020-12 unless it names
// another in $schema). Formats ("date-time", "email") and
// contentEncoding ("base64") are asserted, not only annotations. The
// schema must be self-contained: a $ref outside it is an error, never a
// download.
func NewValidator(schema json.RawMessage) (*Validator, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("functions: reading a JSON Schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(jsonschema.SchemeURLLoader{}) // nothing from disk or network
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.AssertContent()
	const loc = "urn:cortex:schema"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("functions: compiling a JSON Schema: %w", err)
	}
	s, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("functions: compiling a JSON Schema: %w", err)
	}
	return &Validator{s: s}, nil
}

// Check returns nil when body is a JSON document that fits the schema.
// Otherwise it returns an *Error: a 400 when body is not JSON (empty,
// malformed, data after the document: the message says where), and a
// 422 listing every failing field (Error.Fields) when it is JSON that
// fails the schema.
func (v *Validator) Check(body []byte) error {
	inst, err := parseJSON(body)
	if err != nil {
		return err
	}
	return v.check(inst)
}

// Decode checks body as Check does and then decodes it into v as
// DecodeJSON does: what Typed does with a body, for a predictor that
// decodes its input itself (in PredictStream, say) and must answer a bad
// body as Typed answers it.
func (v *Validator) Decode(body []byte, into any) error {
	if err := v.Check(body); err != nil {
		return err
	}
	return decodeJSON(body, into)
}

// parseJSON reads body as one JSON document, numbers kept exact, with
// decodeJSON's 400s.
func parseJSON(body []byte) (any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, Errorf(http.StatusBadRequest, "request body is empty: send a JSON document")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var inst any
	if err := dec.Decode(&inst); err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Message: describeJSONError(err, body), Err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, Errorf(http.StatusBadRequest, "invalid JSON: unexpected data after the document at offset %d", dec.InputOffset())
	}
	return inst, nil
}

func (v *Validator) check(inst any) error {
	err := v.s.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("functions: validating a request body: %w", err)
	}
	var leaves []leaf
	collect(ve, &leaves)
	fields := make([]FieldError, 0, len(leaves))
	for _, l := range leaves {
		fields = append(fields, l.words(inst)...)
	}
	return unprocessableFields(schemaSummary, fields)
}

// unprocessableFields sorts fields by path (array indices in numeric
// order), drops repeats, keeps MaxFieldErrors of them, and returns the 422.
func unprocessableFields(summary string, fields []FieldError) *Error {
	slices.SortStableFunc(fields, func(a, b FieldError) int {
		if c := comparePaths(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	fields = slices.Compact(fields)
	if n := len(fields); n > MaxFieldErrors {
		fields = fields[:MaxFieldErrors:MaxFieldErrors]
		summary = fmt.Sprintf("%s (the first %d of %d failures)", summary, MaxFieldErrors, n)
	}
	return Unprocessable(summary, fields)
}

// comparePaths orders JSON paths segment by segment, with array indices
// in numeric order: $.a[2] before $.a[10].
func comparePaths(a, b string) int {
	for a != "" && b != "" {
		ai, an := pathIndex(a)
		bi, bn := pathIndex(b)
		if an > 0 && bn > 0 {
			if c := cmp.Compare(ai, bi); c != 0 {
				return c
			}
			a, b = a[an:], b[bn:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

// pathIndex reads "[12]" at the start of p: 12 and the length read.
func pathIndex(p string) (int, int) {
	if len(p) < 3 || p[0] != '[' || p[1] < '0' || p[1] > '9' {
		return 0, 0
	}
	end := strings.IndexByte(p, ']')
	if end < 0 {
		return 0, 0
	}
	n, err := strconv.Atoi(p[1:end])
	if err != nil {
		return 0, 0
	}
	return n, end + 1
}

// leaf is one failure the validator found: where, and which keyword.
type leaf struct {
	loc  []string
	kind jsonschema.ErrorKind
}

// collect gathers the failures under e. Groups (the schema, allOf, a
// $ref) are looked through; alternatives (anyOf, oneOf) are summed up
// by alternatives.
func collect(e *jsonschema.ValidationError, out *[]leaf) {
	switch k := e.ErrorKind.(type) {
	case *kind.AnyOf:
		alternatives(e, out)
		return
	case *kind.OneOf:
		if len(k.Subschemas) == 0 {
			alternatives(e, out)
			return
		}
	case *kind.Contains:
		// Its causes are every item's failures against what one item
		// must be: noise. The array is at fault, not its items.
		*out = append(*out, leaf{loc: e.InstanceLocation, kind: k})
		return
	}
	if len(e.Causes) == 0 {
		*out = append(*out, leaf{loc: e.InstanceLocation, kind: e.ErrorKind})
		return
	}
	for _, c := range e.Causes {
		collect(c, out)
	}
}

// alternatives words a value that fits none of several schemas. When
// each alternative failed only on the value's type, the wanted types are
// joined ("want string or array, got number"). Otherwise the value was
// of a type some alternative takes, and that alternative's failures are
// the ones that say what is wrong.
func alternatives(e *jsonschema.ValidationError, out *[]leaf) {
	var (
		want     []string
		got      string
		best     []leaf
		bestSeen bool
	)
	onlyTypes := true
	for _, c := range e.Causes {
		var ls []leaf
		collect(c, &ls)
		typeMiss := false
		for _, l := range ls {
			if t, ok := l.kind.(*kind.Type); ok && slices.Equal(l.loc, e.InstanceLocation) {
				typeMiss = true
				got = t.Got
				for _, w := range t.Want {
					if !slices.Contains(want, w) {
						want = append(want, w)
					}
				}
			}
		}
		if !typeMiss || len(ls) != 1 {
			onlyTypes = false
		}
		if !typeMiss && (!bestSeen || len(ls) < len(best)) {
			best, bestSeen = ls, true
		}
	}
	switch {
	case onlyTypes && len(want) > 0:
		*out = append(*out, leaf{loc: e.InstanceLocation, kind: &kind.Type{Got: got, Want: want}})
	case bestSeen:
		*out = append(*out, best...)
	default:
		*out = append(*out, leaf{loc: e.InstanceLocation, kind: e.ErrorKind})
	}
}

// words says what is wrong at the leaf, in the words of JSON: one field
// error, or one per missing or unknown field.
func (l leaf) words(inst any) []FieldError {
	path, value := locate(inst, l.loc)
	one := func(format string, args ...any) []FieldError {
		return []FieldError{{Path: path, Message: fmt.Sprintf(format, args...)}}
	}
	each := func(names []string, msg string) []FieldError {
		fs := make([]FieldError, len(names))
		for i, n := range names {
			fs[i] = FieldError{Path: path + member(n), Message: msg}
		}
		return fs
	}
	switch k := l.kind.(type) {
	case *kind.Required:
		return each(k.Missing, "missing")
	case *kind.DependentRequired:
		return each(k.Missing, fmt.Sprintf("missing: required when %q is given", k.Prop))
	case *kind.Dependency:
		return each(k.Missing, fmt.Sprintf("missing: required when %q is given", k.Prop))
	case *kind.AdditionalProperties:
		return each(k.Properties, "unknown field")
	case *kind.Type:
		if slices.Contains(k.Want, "integer") && k.Got == "number" {
			return one("want %s, got %s", strings.Join(k.Want, " or "), display(value))
		}
		return one("want %s, got %s", strings.Join(k.Want, " or "), k.Got)
	case *kind.Minimum:
		return one("must be >= %s, got %s", rat(k.Want), rat(k.Got))
	case *kind.Maximum:
		return one("must be <= %s, got %s", rat(k.Want), rat(k.Got))
	case *kind.ExclusiveMinimum:
		return one("must be > %s, got %s", rat(k.Want), rat(k.Got))
	case *kind.ExclusiveMaximum:
		return one("must be < %s, got %s", rat(k.Want), rat(k.Got))
	case *kind.MultipleOf:
		return one("must be a multiple of %s, got %s", rat(k.Want), rat(k.Got))
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = display(w)
		}
		if len(want) == 1 {
			return one("must be %s, got %s", want[0], display(k.Got))
		}
		return one("must be one of %s, got %s", strings.Join(want, ", "), display(k.Got))
	case *kind.Const:
		return one("must be %s, got %s", display(k.Want), display(k.Got))
	case *kind.MinLength:
		return one("must be at least %s long, got %d", count(k.Want, "character"), k.Got)
	case *kind.MaxLength:
		return one("must be at most %s long, got %d", count(k.Want, "character"), k.Got)
	case *kind.Pattern:
		return one("must match the pattern %s, got %s", k.Want, display(k.Got))
	case *kind.Format:
		return one("must be a valid %s, got %s", k.Want, display(k.Got))
	case *kind.ContentEncoding:
		return one("must be %s-encoded", k.Want)
	case *kind.ContentMediaType:
		return one("must be %s", k.Want)
	case *kind.MinItems:
		return one("must have at least %s, got %d", count(k.Want, "item"), k.Got)
	case *kind.MaxItems:
		return one("must have at most %s, got %d", count(k.Want, "item"), k.Got)
	case *kind.AdditionalItems:
		return one("has %s more than allowed", count(k.Count, "item"))
	case *kind.UniqueItems:
		return one("items [%d] and [%d] are equal: items must be unique", k.Duplicates[0], k.Duplicates[1])
	case *kind.MinProperties:
		return one("must have at least %s, got %d", count(k.Want, "field"), k.Got)
	case *kind.MaxProperties:
		return one("must have at most %s, got %d", count(k.Want, "field"), k.Got)
	case *kind.PropertyNames:
		return []FieldError{{Path: path + member(k.Property), Message: "this field name is not allowed"}}
	case *kind.Contains:
		return one("lacks an item it must contain")
	case *kind.FalseSchema, *kind.Not:
		return one("not allowed")
	case *kind.OneOf:
		return one("matches more than one of the forms it may take")
	}
	return one("%s", l.kind.LocalizedString(english))
}

var english = message.NewPrinter(language.English)

// count words n things: "1 character", "3 characters".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}

// locate returns the JSON path of the value at loc in inst ($, $.name,
// $.items[2], $["a key"]), and the value.
func locate(inst any, loc []string) (string, any) {
	var b strings.Builder
	b.WriteByte('$')
	v := inst
	for _, tok := range loc {
		switch x := v.(type) {
		case []any:
			b.WriteString("[" + tok + "]")
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(x) {
				v = x[i]
			} else {
				v = nil
			}
		case map[string]any:
			b.WriteString(member(tok))
			v = x[tok]
		default:
			b.WriteString(member(tok))
			v = nil
		}
	}
	return b.String(), v
}

// member is the path step to an object's member: .name, or ["a key"]
// when the name does not read unambiguously after a dot.
func member(name string) string {
	if isName(name) {
		return "." + name
	}
	return "[" + strconv.Quote(name) + "]"
}

// display words a JSON value for a message: strings quoted (and cut at
// 40 characters), numbers and literals as sent, containers by kind.
func display(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if utf8.RuneCountInString(x) > 40 {
			r := []rune(x)
			return strconv.Quote(string(r[:40])) + "..."
		}
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	case *big.Rat:
		return rat(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// rat words a number the validator compared: 3, -0.5.
func rat(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}
