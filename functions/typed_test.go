package functions_test

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/functions"
)

// goType matches what a Go type looks like in a message: a qualified name
// (functions_test.order), a pointer, slice or map type, or a Go number type.
var goType = regexp.MustCompile(`\b[a-z]\w*\.[A-Za-z]\w*\b|\*[A-Za-z]|\[\][A-Za-z*\[]|map\[|\b(u?int|float)(8|16|32|64)?\b|\bbool\b`)

// wanted returns what a message says was wanted: the decoder's own words,
// where the rest may quote the body.
func wanted(msg string) string {
	_, w, _ := strings.Cut(msg, ": want ")
	w, _, _ = strings.Cut(w, ", got ")
	return w
}

type order struct {
	Text  string            `json:"text"`
	Count int               `json:"count"`
	Score float64           `json:"score"`
	Ok    bool              `json:"ok"`
	Items []item            `json:"items"`
	Tags  map[string]string `json:"tags"`
	Grid  [][]int64         `json:"grid"`
	Next  *order            `json:"next"`
}

type item struct {
	Name string `json:"name"`
	Dims []int  `json:"dims"`
}

// TestDecodeJSONErrors checks the 400 DecodeJSON answers for a body that
// does not decode (what Typed answered before it checked schemas, and
// what the OIP codec still answers): it says where (the byte offset, the
// field path with array indices) and what was wanted, in the words of
// JSON, never of Go.
func TestDecodeJSONErrors(t *testing.T) {
	tests := []struct {
		name, body string
		want       string
	}{
		{"truncated string", `{"text": "abc`, "invalid JSON: the document ends early, at offset 13 (the end of the body)"},
		{"truncated object", `{"text": "abc"`, "invalid JSON: the document ends early, at offset 14 (the end of the body)"},
		{"truncated with trailing space", `{"items": [` + "  \n", "invalid JSON: the document ends early, at offset 14 (the end of the body)"},
		{"string for integer", `{"count": "3"}`, `count: want an integer, got a string (offset 13)`},
		{"fraction for integer", `{"count": 1.5}`, `count: want an integer, got 1.5 (offset 13)`},
		{"number for string", `{"text": 3}`, `text: want a string, got a number (offset 10)`},
		{"string for number", `{"score": "high"}`, `score: want a number, got a string (offset 16)`},
		{"number for bool", `{"ok": 1}`, `ok: want true or false, got a number (offset 8)`},
		{"object for array", `{"items": {}}`, `items: want an array of objects, got an object (offset 11)`},
		{"number for object in array", `{"items": [{"name": "a"}, 7]}`, `items[1]: want an object, got a number (offset 27)`},
		{"deep in an array", `{"items": [{"name": "a"}, {"dims": [1, "x"]}]}`, `items[1].dims[1]: want an integer, got a string (offset 42)`},
		{"string for array of integers", `{"items": [{"dims": "x"}]}`, `items[0].dims: want an array of integers, got a string (offset 23)`},
		{"array of arrays", `{"grid": [[1], 2]}`, `grid[1]: want an array of integers, got a number (offset 16)`},
		{"map value", `{"tags": {"a": "x", "b": 2}}`, `tags.b: want a string, got a number (offset 26)`},
		{"false for integer", `{"count": false}`, `count: want an integer, got false (offset 15)`},
		{"map for string", `{"tags": "x"}`, `tags: want an object, got a string (offset 12)`},
		{"nested pointer", `{"next": {"next": {"count": true}}}`, `next.next.count: want an integer, got true (offset 32)`},
		{"array for the document", `[1, 2]`, `the request body: want an object, got an array (offset 1)`},
		{"string for the document", `"hello"`, `the request body: want an object, got a string (offset 7)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v order
			err := functions.DecodeJSON([]byte(tt.body), &v)
			var fe *functions.Error
			if !errors.As(err, &fe) || fe.Status != http.StatusBadRequest {
				t.Fatalf("error = %v, want a 400 *functions.Error", err)
			}
			if got := fe.Message; got != tt.want {
				t.Errorf("message:\ngot  %q\nwant %q", got, tt.want)
			}
			if m := goType.FindString(wanted(fe.Message)); m != "" {
				t.Errorf("message %q names a Go type (%q)", fe.Message, m)
			}
		})
	}
}

// TestDecodeJSONKeepsAnError checks that a field whose own UnmarshalJSON
// answers with a *functions.Error reaches the caller as that error, not
// wrapped in a second message.
func TestDecodeJSONKeepsAnError(t *testing.T) {
	var v struct {
		Field picky `json:"field"`
	}
	err := functions.DecodeJSON([]byte(`{"field": 1}`), &v)
	var fe *functions.Error
	if !errors.As(err, &fe) || fe.Status != http.StatusUnprocessableEntity || fe.Message != "picky says no" {
		t.Errorf("got %v, want the field's own 422", err)
	}
}

type picky struct{}

func (*picky) UnmarshalJSON([]byte) error {
	return functions.Errorf(http.StatusUnprocessableEntity, "picky says no")
}

// FuzzDecodeJSON checks that no body makes the decoder panic or answer
// with anything but a 400 that names no Go type.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"text": "abc`, `{"items": [{"dims": [1, "x"]}]}`, `{"tags": {"a.b": 1}}`,
		`{"next": {"grid": [[1], [true]]}}`, `[1]`, `{"count": 1e400}`, `{"ok": false} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v order
		err := functions.DecodeJSON(body, &v)
		if err == nil {
			return
		}
		var fe *functions.Error
		if !errors.As(err, &fe) || fe.Status != http.StatusBadRequest {
			t.Fatalf("got %v, want a 400 *functions.Error", err)
		}
		if m := goType.FindString(wanted(fe.Message)); m != "" {
			t.Errorf("message %q names a Go type (%q)", fe.Message, m)
		}
	})
}
