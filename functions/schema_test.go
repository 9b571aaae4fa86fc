package functions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/functions"
)

// A form a person fills: nested objects, lists, optional fields, enums,
// bounds and descriptions.
type signup struct {
	Name     string    `json:"name" jsonschema:"description=Your full name,minLength=1,maxLength=64"`
	Age      int       `json:"age" jsonschema:"minimum=0,maximum=150"`
	Plan     string    `json:"plan" jsonschema:"enum=free,enum=pro,default=free"`
	Tags     []string  `json:"tags,omitempty" jsonschema:"maxItems=3"`
	Address  address   `json:"address"`
	Billing  *address  `json:"billing"`
	Coupon   *string   `json:"coupon" jsonschema:"required"`
	Seats    uint8     `json:"seats,omitzero"`
	Since    time.Time `json:"since,omitzero"`
	Avatar   []byte    `json:"avatar,omitempty"`
	Extra    loose     `json:"extra,omitempty"`
	Level    level     `json:"level,omitempty"`
	Secret   string    `json:"-"`
	internal int
	embedded
}

type address struct {
	Street string `json:"street" jsonschema:"description=Street and number"`
	Zip    string `json:"zip,omitempty" jsonschema:"pattern=^[0-9]{5}$"`
}

type embedded struct {
	Referrer string `json:"referrer,omitempty"`
}

// loose decodes itself, from any JSON.
type loose struct{ v any }

func (l *loose) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &l.v) }

// level decodes from a string.
type level int

func (l *level) UnmarshalText(b []byte) error { *l = level(len(b)); return nil }

// node contains itself.
type node struct {
	Value int     `json:"value"`
	Kids  []*node `json:"kids,omitempty"`
}

// at returns the value at path in a decoded JSON document.
func at(t *testing.T, doc any, path ...string) any {
	t.Helper()
	v := doc
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object at %q", strings.Join(path, "/"), p)
		}
		if v, ok = m[p]; !ok {
			t.Fatalf("%s: no %q", strings.Join(path, "/"), p)
		}
	}
	return v
}

func decode(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("schema %s: %v", raw, err)
	}
	return m
}

func strs(v any) []string {
	var s []string
	for _, x := range v.([]any) {
		s = append(s, x.(string))
	}
	return s
}

func TestTypedSchema(t *testing.T) {
	p := functions.Typed(func(ctx context.Context, in signup) (address, error) { return in.Address, nil })
	s := functions.SchemaOf(p)
	if s.InputMediaTypes != nil || s.OutputMediaTypes != nil {
		t.Errorf("media types %v %v, want none for JSON in and out", s.InputMediaTypes, s.OutputMediaTypes)
	}
	in := decode(t, s.Input)
	if strings.Contains(string(s.Input), "$ref") || strings.Contains(string(s.Input), "$defs") {
		t.Errorf("input schema has references; want every type inlined: %s", s.Input)
	}
	if strings.Contains(string(s.Input), "functions_test") || strings.Contains(string(s.Input), "$id") {
		t.Errorf("input schema names Go packages: %s", s.Input)
	}
	for _, tt := range []struct {
		name string
		path []string
		want any
	}{
		{"dialect", []string{"$schema"}, "https://json-schema.org/draft/2020-12/schema"},
		{"object", []string{"type"}, "object"},
		{"no other fields", []string{"additionalProperties"}, false},
		{"description", []string{"properties", "name", "description"}, "Your full name"},
		{"minLength", []string{"properties", "name", "minLength"}, 1.0},
		{"maxLength", []string{"properties", "name", "maxLength"}, 64.0},
		{"minimum", []string{"properties", "age", "minimum"}, 0.0},
		{"maximum", []string{"properties", "age", "maximum"}, 150.0},
		{"integer", []string{"properties", "age", "type"}, "integer"},
		{"enum", []string{"properties", "plan", "enum"}, []any{"free", "pro"}},
		{"default", []string{"properties", "plan", "default"}, "free"},
		{"slice", []string{"properties", "tags", "type"}, "array"},
		{"slice items", []string{"properties", "tags", "items", "type"}, "string"},
		{"maxItems", []string{"properties", "tags", "maxItems"}, 3.0},
		{"nested object", []string{"properties", "address", "type"}, "object"},
		{"nested description", []string{"properties", "address", "properties", "street", "description"}, "Street and number"},
		{"nested pattern", []string{"properties", "address", "properties", "zip", "pattern"}, "^[0-9]{5}$"},
		{"nested required", []string{"properties", "address", "required"}, []any{"street"}},
		{"nested closed", []string{"properties", "address", "additionalProperties"}, false},
		{"pointer to struct inlined", []string{"properties", "billing", "properties", "street", "type"}, "string"},
		{"uint8 minimum", []string{"properties", "seats", "minimum"}, 0.0},
		{"uint8 maximum", []string{"properties", "seats", "maximum"}, 255.0},
		{"time", []string{"properties", "since", "format"}, "date-time"},
		{"bytes", []string{"properties", "avatar", "contentEncoding"}, "base64"},
		{"own UnmarshalJSON takes anything", []string{"properties", "extra"}, true},
		{"TextUnmarshaler takes a string", []string{"properties", "level", "type"}, "string"},
		{"embedded struct flattened", []string{"properties", "referrer", "type"}, "string"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := at(t, in, tt.path...); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", strings.Join(tt.path, "/"), got, tt.want)
			}
		})
	}
	// Required: no omitempty/omitzero and not a pointer, or tagged
	// required; in the order of the fields.
	if got, want := strs(at(t, in, "required")), []string{"name", "age", "plan", "address", "coupon"}; !slices.Equal(got, want) {
		t.Errorf("required = %q, want %q", got, want)
	}
	props := at(t, in, "properties").(map[string]any)
	for _, hidden := range []string{"Secret", "secret", "internal", "embedded"} {
		if _, ok := props[hidden]; ok {
			t.Errorf("property %q published; json:\"-\", unexported and embedded fields are not", hidden)
		}
	}
	// The order of the fields is kept, for a form.
	if i, j := strings.Index(string(s.Input), `"name"`), strings.Index(string(s.Input), `"address"`); i < 0 || j < i {
		t.Errorf("fields out of order in %s", s.Input)
	}
	out := decode(t, s.Output)
	if got := strs(at(t, out, "required")); !slices.Equal(got, []string{"street"}) {
		t.Errorf("output required = %q", got)
	}
	// Every schema compiles on its own.
	for _, raw := range []json.RawMessage{s.Input, s.Output} {
		if _, err := functions.NewValidator(raw); err != nil {
			t.Errorf("schema does not compile: %v\n%s", err, raw)
		}
	}
}

func TestTypedSchemaSpecialTypes(t *testing.T) {
	raw := functions.Typed(func(ctx context.Context, in []byte) (*functions.Response, error) { return nil, nil })
	if s := functions.SchemaOf(raw); s.Input != nil || s.Output != nil || !slices.Equal(s.InputMediaTypes, []string{"application/octet-stream"}) {
		t.Errorf("Typed[[]byte, *Response] schema = %+v, want no JSON schemas and application/octet-stream in", s)
	}
	anyIn := functions.Typed(func(ctx context.Context, in any) (json.RawMessage, error) { return nil, nil })
	if s := functions.SchemaOf(anyIn); s.Input != nil || s.Output != nil {
		t.Errorf("Typed[any, json.RawMessage] schema = %s %s, want none (any JSON)", s.Input, s.Output)
	}
	list := functions.Typed(func(ctx context.Context, in []float64) (map[string]int, error) { return nil, nil })
	s := functions.SchemaOf(list)
	if got := at(t, decode(t, s.Input), "items", "type"); got != "number" {
		t.Errorf("[]float64 items %v", got)
	}
	if got := at(t, decode(t, s.Output), "additionalProperties", "type"); got != "integer" {
		t.Errorf("map[string]int values %v", got)
	}

	// A type that contains itself keeps it in $defs, within the schema.
	tree := functions.SchemaOf(functions.Typed(func(ctx context.Context, in node) (node, error) { return in, nil }))
	doc := decode(t, tree.Input)
	if at(t, doc, "$ref") != "#/$defs/node" || at(t, doc, "$defs", "node", "properties", "kids", "items", "$ref") != "#/$defs/node" {
		t.Errorf("recursive schema %s", tree.Input)
	}
	p := functions.Typed(func(ctx context.Context, in node) (node, error) { return in, nil })
	_, err := p.Predict(context.Background(), &functions.Request{Body: []byte(`{"value": 1, "kids": [{"value": 2}, {"kids": [{"value": "x"}]}]}`)})
	var fe *functions.Error
	if !errors.As(err, &fe) || fe.Status != http.StatusUnprocessableEntity ||
		fe.Message != `request body does not match the input schema: $.kids[1].kids[0].value: want integer, got string; $.kids[1].value: missing` {
		t.Errorf("recursive body: %v", err)
	}

	// TypedStream publishes its input and, as output, the array of what it yields.
	st := functions.SchemaOf(functions.TypedStream(func(ctx context.Context, in address) iter.Seq2[node, error] { return nil }))
	if at(t, decode(t, st.Input), "properties", "street", "type") != "string" || at(t, decode(t, st.Output), "type") != "array" {
		t.Errorf("TypedStream schema %s %s", st.Input, st.Output)
	}

	// Schema returns a copy: changing it changes nothing for the next caller.
	s.Input[0] = 'X'
	if functions.SchemaOf(list).Input[0] != '{' {
		t.Error("Schema returned the predictor's own bytes")
	}
}

// TestTyped422ListsEveryField checks that a body failing its schema in
// several places is one 422 that lists every failure, with its JSON path,
// in words of JSON, in Fields and in the message alike.
func TestTyped422ListsEveryField(t *testing.T) {
	called := false
	p := functions.Typed(func(ctx context.Context, in signup) (address, error) { called = true; return in.Address, nil })
	body := `{"age": -3, "plan": "gold", "tags": ["a", 3, "c", "d"], "address": {"zip": "1234"}, "coupon": null,
		"seats": 300, "since": "yesterday", "avatar": "!!", "nmae": "Ada"}`
	_, err := p.Predict(context.Background(), &functions.Request{Body: []byte(body)})
	var fe *functions.Error
	if !errors.As(err, &fe) || fe.Status != http.StatusUnprocessableEntity {
		t.Fatalf("error = %v, want a 422 *functions.Error", err)
	}
	if called {
		t.Error("the function ran on a body that fails its schema")
	}
	want := []functions.FieldError{
		{Path: "$.address.street", Message: "missing"},
		{Path: "$.address.zip", Message: `must match the pattern ^[0-9]{5}$, got "1234"`},
		{Path: "$.age", Message: "must be >= 0, got -3"},
		{Path: "$.avatar", Message: "must be base64-encoded"},
		{Path: "$.coupon", Message: "want string, got null"},
		{Path: "$.name", Message: "missing"},
		{Path: "$.nmae", Message: "unknown field"},
		{Path: "$.plan", Message: `must be one of "free", "pro", got "gold"`},
		{Path: "$.seats", Message: "must be <= 255, got 300"},
		{Path: "$.since", Message: `must be a valid date-time, got "yesterday"`},
		{Path: "$.tags", Message: "must have at most 3 items, got 4"},
		{Path: "$.tags[1]", Message: "want string, got number"},
	}
	if !slices.Equal(fe.Fields, want) {
		t.Errorf("fields:\ngot  %q\nwant %q", fe.Fields, want)
	}
	for _, f := range want {
		if !strings.Contains(fe.Message, f.Path+": "+f.Message) {
			t.Errorf("message %q does not list %s", fe.Message, f.Path)
		}
	}
	if !strings.HasPrefix(fe.Message, "request body does not match the input schema: $.address.street: missing; ") {
		t.Errorf("message %q", fe.Message)
	}
	for _, f := range fe.Fields {
		if m := goType.FindString(f.Message); m != "" {
			t.Errorf("%s: %q names a Go type (%q)", f.Path, f.Message, m)
		}
	}

	// The body every carrier sends for it.
	var got struct {
		Error  string                 `json:"error"`
		Fields []functions.FieldError `json:"fields"`
	}
	b := functions.ErrorBody(fe.Message, fe.Fields...)
	if err := json.Unmarshal(b, &got); err != nil || got.Error != fe.Message || !slices.Equal(got.Fields, want) {
		t.Errorf("ErrorBody = %s (%v)", b, err)
	}
	if !strings.Contains(string(b), ">= 0") {
		t.Errorf("ErrorBody escapes >: %s", b)
	}
}

func TestTypedIntegerMessages(t *testing.T) {
	p := functions.Typed(func(ctx context.Context, in struct {
		N int     `json:"n"`
		X float64 `json:"x" jsonschema:"exclusiveMinimum=0.5"`
	}) (struct{}, error) {
		return struct{}{}, nil
	})
	_, err := p.Predict(context.Background(), &functions.Request{Body: []byte(`{"n": 1.5, "x": 0.25}`)})
	var fe *functions.Error
	if !errors.As(err, &fe) || fe.Message != "request body does not match the input schema: $.n: want integer, got 1.5; $.x: must be > 0.5, got 0.25" {
		t.Errorf("got %v", err)
	}
}

func TestTypedManyFailuresAreCapped(t *testing.T) {
	p := functions.Typed(func(ctx context.Context, in []int) (struct{}, error) { return struct{}{}, nil })
	body := "[" + strings.Repeat(`"x",`, 250) + `"x"]`
	_, err := p.Predict(context.Background(), &functions.Request{Body: []byte(body)})
	var fe *functions.Error
	if !errors.As(err, &fe) || len(fe.Fields) != functions.MaxFieldErrors {
		t.Fatalf("got %v, want %d fields", err, functions.MaxFieldErrors)
	}
	if !strings.HasPrefix(fe.Message, "request body does not match the input schema (the first 100 of 251 failures): $[0]: want integer, got string; $[1]:") {
		t.Errorf("message %.200q", fe.Message)
	}
	// In numeric order: [2] before [10].
	if fe.Fields[2].Path != "$[2]" || fe.Fields[10].Path != "$[10]" {
		t.Errorf("fields out of order: %v", fe.Fields[:12])
	}
}

func TestTypedBadTagPanicsAtStartUp(t *testing.T) {
	defer func() {
		v := recover()
		if s, _ := v.(string); !strings.Contains(s, "does not compile") || !strings.Contains(s, "jsonschema struct tags") {
			t.Errorf("panic %v, want one naming the bad tags", v)
		}
	}()
	functions.Typed(func(ctx context.Context, in struct {
		Zip string `json:"zip" jsonschema:"pattern=([0-9]"`
	}) (struct{}, error) {
		return struct{}{}, nil
	})
}

func TestValidator(t *testing.T) {
	v, err := functions.NewValidator(json.RawMessage(`{"type": "object", "properties": {"image": {"type": "string", "contentEncoding": "base64"}}, "required": ["image"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Check([]byte(`{"image": "aGk="}`)); err != nil {
		t.Errorf("valid body: %v", err)
	}
	for _, tt := range []struct {
		body   string
		status int
		want   string
	}{
		{``, 400, "request body is empty"},
		{`{"image": `, 400, "invalid JSON"},
		{`{}`, 422, "request body does not match the input schema: $.image: missing"},
		{`{"image": "***"}`, 422, "$.image: must be base64-encoded"},
	} {
		err := v.Check([]byte(tt.body))
		var fe *functions.Error
		if !errors.As(err, &fe) || fe.Status != tt.status || !strings.Contains(fe.Message, tt.want) {
			t.Errorf("Check(%s) = %v, want %d %q", tt.body, err, tt.status, tt.want)
		}
	}
	// A schema that refers outside itself is refused, not fetched.
	if _, err := functions.NewValidator(json.RawMessage(`{"$ref": "https://example.com/schema.json"}`)); err == nil {
		t.Error("NewValidator took a schema with an outside $ref")
	}
}

// quoted matches a JSON string in a message: the caller's own words.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// FuzzTypedBody checks that no body makes a Typed function panic, or
// answer with anything but success, a 400, or a 422 that lists at least
// one field with a path from the root and names no Go type.
func FuzzTypedBody(f *testing.F) {
	for _, s := range []string{`{"name": "Ada", "age": 3, "plan": "free", "address": {"street": "x"}, "coupon": "c"}`,
		`{"age": -3, "tags": [1, {}], "address": []}`, `[]`, `null`, `{"seats": 1e400}`, `{"since": "2024-01-01T00:00:00Z"}`} {
		f.Add([]byte(s))
	}
	p := functions.Typed(func(ctx context.Context, in signup) (struct{}, error) { return struct{}{}, nil })
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := p.Predict(context.Background(), &functions.Request{Body: body})
		if err == nil {
			return
		}
		var fe *functions.Error
		if !errors.As(err, &fe) || (fe.Status != http.StatusBadRequest && fe.Status != http.StatusUnprocessableEntity) {
			t.Fatalf("got %v, want a 400 or 422 *functions.Error", err)
		}
		if fe.Status == http.StatusUnprocessableEntity && len(fe.Fields) == 0 {
			t.Fatalf("422 without fields: %v", err)
		}
		for _, fl := range fe.Fields {
			if !strings.HasPrefix(fl.Path, "$") || goType.FindString(quoted.ReplaceAllString(fl.Message, `""`)) != "" {
				t.Errorf("field %+v", fl)
			}
		}
	})
}

// withInit is how a Go function keeps Init beside a Typed predictor (the
// shape `cortex init` writes): Go promotes only Predict from the embedded
// interface, and SchemaOf looks through it.
type withInit struct {
	greeting string
	functions.Predictor
}

func (*withInit) Init(context.Context, functions.Config) error { return nil }

func TestSchemaOfEmbeddedPredictor(t *testing.T) {
	typed := functions.Typed(func(ctx context.Context, in signup) (address, error) { return in.Address, nil })
	p := &withInit{greeting: "hi", Predictor: typed}
	if _, ok := functions.Predictor(p).(functions.SchemaProvider); ok {
		t.Fatal("withInit publishes a schema itself; the test needs one that does not")
	}
	if got, want := functions.SchemaOf(p), functions.SchemaOf(typed); !bytes.Equal(got.Input, want.Input) || len(got.Input) == 0 {
		t.Errorf("SchemaOf through the embedding: %s, want %s", got.Input, want.Input)
	}
	if s := functions.SchemaOf(&withInit{}); s.Input != nil {
		t.Errorf("nothing embedded: %s", s.Input)
	}
	if s := functions.SchemaOf(functions.PredictorFunc(nil)); s.Input != nil {
		t.Errorf("a PredictorFunc: %s", s.Input)
	}
}
