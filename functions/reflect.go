package functions

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/invopop/jsonschema"
)

// This file derives a JSON Schema from a Go type, for Typed: the rules
// below are the ones Typed documents.

// ReflectSchema returns the JSON Schema (draft 2020-12) of the JSON that
// encoding/json decodes into, or encodes from, a value of type t, by the
// rules Typed documents; nil when any JSON value fits (t is any,
// json.RawMessage, or a type with its own UnmarshalJSON and no
// JSONSchema method). A predictor that implements SchemaProvider by
// hand can build its Schema's Input and Output with it.
//
// Its error names a type encoding/json cannot carry (a channel, a func).
func ReflectSchema(t reflect.Type) (json.RawMessage, error) {
	return reflectSchema(t)
}

func reflectSchema(t reflect.Type) (raw json.RawMessage, err error) {
	defer func() {
		// The reflector panics on kinds JSON cannot carry (chan, func,
		// complex): the type has no schema, and no JSON decodes into it.
		if v := recover(); v != nil {
			raw, err = nil, fmt.Errorf("no JSON Schema for %s: %v", t, v)
		}
	}()
	// A schema without $ref reads best on a page and in a form generator:
	// every type is inlined where it is used. A type that contains itself
	// (a tree) cannot be inlined; its schema keeps such types in $defs,
	// referred to from within the same document, so it is still
	// self-contained.
	recursive := isRecursive(t)
	r := &jsonschema.Reflector{
		Anonymous:      true, // no $id: it would publish the Go package path
		DoNotReference: !recursive,
		ExpandedStruct: !recursive,
		Mapper:         mapType,
		Namer:          (&namer{names: map[reflect.Type]string{}, taken: map[string]bool{}}).name,
	}
	s := r.ReflectFromType(t)
	(&optional{defs: s.Definitions, seen: map[string]bool{}}).walk(t, s)
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encoding the JSON Schema of %s: %w", t, err)
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(b, &keys) == nil {
		delete(keys, "$schema")
		if len(keys) == 0 {
			return nil, nil // any JSON value fits
		}
	}
	return b, nil
}

var (
	timeType        = reflect.TypeFor[time.Time]()
	urlType         = reflect.TypeFor[url.URL]()
	rawMessage      = reflect.TypeFor[json.RawMessage]()
	customSchema    = reflect.TypeFor[interface{ JSONSchema() *jsonschema.Schema }]()
	extendedSchema  = reflect.TypeFor[interface{ JSONSchemaExtend(*jsonschema.Schema) }]()
	aliasedSchema   = reflect.TypeFor[interface{ JSONSchemaAlias() any }]()
	integerBoundsOf = map[reflect.Kind][2]string{
		reflect.Int8:   {"-128", "127"},
		reflect.Int16:  {"-32768", "32767"},
		reflect.Int32:  {"-2147483648", "2147483647"},
		reflect.Uint8:  {"0", "255"},
		reflect.Uint16: {"0", "65535"},
		reflect.Uint32: {"0", "4294967295"},
		reflect.Uint:   {"0", ""},
		reflect.Uint64: {"0", ""},
	}
)

// ownsSchema reports whether t says its own schema, in the reflector's
// terms (a JSONSchema, JSONSchemaExtend or JSONSchemaAlias method).
func ownsSchema(t reflect.Type) bool {
	return t.Implements(customSchema) || t.Implements(extendedSchema) || t.Implements(aliasedSchema)
}

// mapType is the reflector's Mapper: the schemas of types whose JSON is
// not what their Go structure says.
//
//   - A type with its own UnmarshalJSON decides what it takes (a string
//     or a list, say): its schema is any value, and the type checks the
//     value itself. A TextUnmarshaler takes a string.
//   - json.Number is a number; sized integers carry their range (an
//     int8 is -128 to 127, every unsigned integer is >= 0), so a value
//     out of range is a 422 like any other, not a decoding error.
func mapType(t reflect.Type) *jsonschema.Schema {
	if ownsSchema(t) || t == timeType || t == urlType {
		return nil
	}
	pt := reflect.PointerTo(t)
	switch {
	case t == jsonNumber:
		return &jsonschema.Schema{Type: "number"}
	case t == rawMessage, t.Implements(jsonUnmarshaler), pt.Implements(jsonUnmarshaler):
		return &jsonschema.Schema{}
	case t.Implements(textUnmarshaler), pt.Implements(textUnmarshaler):
		return &jsonschema.Schema{Type: "string"}
	}
	if b, ok := integerBoundsOf[t.Kind()]; ok {
		s := &jsonschema.Schema{Type: "integer", Minimum: json.Number(b[0])}
		if b[1] != "" {
			s.Maximum = json.Number(b[1])
		}
		return s
	}
	return nil
}

// isRecursive reports whether t contains itself, through its fields,
// elements or pointers.
func isRecursive(t reflect.Type) bool {
	onPath, done := map[reflect.Type]bool{}, map[reflect.Type]bool{}
	var visit func(t reflect.Type) bool
	visit = func(t reflect.Type) bool {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if onPath[t] {
			return true
		}
		if done[t] || ownsSchema(t) || mapType(t) != nil {
			return false
		}
		onPath[t] = true
		defer func() { onPath[t], done[t] = false, true }()
		switch t.Kind() {
		case reflect.Struct:
			for i := range t.NumField() {
				f := t.Field(i)
				if (f.IsExported() || f.Anonymous) && f.Tag.Get("json") != "-" && visit(f.Type) {
					return true
				}
			}
		case reflect.Slice, reflect.Array, reflect.Map:
			return visit(t.Elem())
		}
		return false
	}
	return visit(t)
}

// namer names the $defs of a recursive type's schema: the Go type's name,
// made unique (two packages may each have an Item).
type namer struct {
	names map[reflect.Type]string
	taken map[string]bool
}

func (n *namer) name(t reflect.Type) string {
	if s, ok := n.names[t]; ok {
		return s
	}
	base, _, _ := strings.Cut(t.Name(), "[") // a generic type's arguments
	if base == "" {
		return ""
	}
	s := base
	for i := 2; n.taken[s]; i++ {
		s = base + strconv.Itoa(i)
	}
	n.names[t], n.taken[s] = s, true
	return s
}

// optional walks a reflected schema beside its Go type and makes the
// fields of pointer type optional: the reflector requires every field
// without omitempty or omitzero, and a nil pointer is how Go says a field
// was not sent. A `jsonschema:"required"` tag keeps one required.
type optional struct {
	defs jsonschema.Definitions
	seen map[string]bool
}

func (o *optional) walk(t reflect.Type, s *jsonschema.Schema) {
	if s == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s.Ref != "" {
		name, ok := strings.CutPrefix(s.Ref, "#/$defs/")
		if !ok || o.seen[name] {
			return
		}
		o.seen[name] = true
		s = o.defs[name]
		if s == nil {
			return
		}
	}
	if len(s.OneOf) == 2 && s.OneOf[1].Type == "null" { // `jsonschema:"nullable"`
		o.walk(t, s.OneOf[0])
		return
	}
	if ownsSchema(t) || mapType(t) != nil {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if s.Properties != nil {
			o.fields(t, s)
		}
	case reflect.Slice, reflect.Array:
		o.walk(t.Elem(), s.Items)
	case reflect.Map:
		o.walk(t.Elem(), s.AdditionalProperties)
		for _, p := range s.PatternProperties {
			o.walk(t.Elem(), p)
		}
	}
}

// fields follows encoding/json's (and the reflector's) reading of a
// struct's fields: json names, "-", embedded structs flattened.
func (o *optional) fields(t reflect.Type, s *jsonschema.Schema) {
	for i := range t.NumField() {
		f := t.Field(i)
		jsonTags := strings.Split(f.Tag.Get("json"), ",")
		schemaTags := strings.Split(f.Tag.Get("jsonschema"), ",")
		if jsonTags[0] == "-" || schemaTags[0] == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if (f.Anonymous && jsonTags[0] == "" && ft.Kind() == reflect.Struct) || slices.Contains(jsonTags[1:], "inline") {
			o.fields(ft, s)
			continue
		}
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if jsonTags[0] != "" {
			name = jsonTags[0]
		}
		prop, ok := s.Properties.Get(name)
		if !ok {
			continue
		}
		if f.Type.Kind() == reflect.Pointer && !slices.Contains(schemaTags, "required") {
			s.Required = slices.DeleteFunc(s.Required, func(r string) bool { return r == name })
		}
		o.walk(f.Type, prop)
	}
}
