package functions_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/functions"
)

type greetIn struct {
	Name string `json:"name"`
}

type greetOut struct {
	Greeting string `json:"greeting"`
}

func greet(ctx context.Context, in greetIn) (greetOut, error) {
	if in.Name == "" {
		return greetOut{}, functions.Errorf(http.StatusUnprocessableEntity, "name is required")
	}
	return greetOut{Greeting: "hello " + in.Name}, nil
}

func ExampleTyped() {
	p := functions.Typed(greet)
	resp, _ := p.Predict(context.Background(), &functions.Request{Body: []byte(`{"name": "Ada"}`)})
	fmt.Println(resp.StatusCode(), resp.ContentType(), string(resp.Body))

	_, err := p.Predict(context.Background(), &functions.Request{Body: []byte(`{"name": ""}`)})
	fmt.Println(functions.StatusOf(err), err)
	// Output:
	// 200 application/json {"greeting":"hello Ada"}
	// 422 422 Unprocessable Entity: name is required
}

func ExampleRequestFromContext() {
	p := functions.Typed(func(ctx context.Context, in greetIn) (greetOut, error) {
		req, _ := functions.RequestFromContext(ctx)
		return greetOut{Greeting: req.Query.Get("salutation") + " " + in.Name}, nil
	})
	req := &functions.Request{Body: []byte(`{"name": "Ada"}`), Query: map[string][]string{"salutation": {"ahoy"}}}
	resp, _ := p.Predict(context.Background(), req)
	fmt.Println(string(resp.Body))
	// Output: {"greeting":"ahoy Ada"}
}

// TestTypedRejectsBadInput checks the two ways a body is refused: a 400
// for what is not JSON, a 422 for JSON that fails the input schema.
func TestTypedRejectsBadInput(t *testing.T) {
	p := functions.Typed(greet)
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{name: "empty", body: "", status: 400, want: "request body is empty"},
		{name: "syntax", body: `{"name": }`, status: 400, want: "invalid JSON at offset"},
		{name: "trailing data", body: `{"name": "Ada"} {}`, status: 400, want: "unexpected data after the document"},
		{name: "truncated", body: `{"name": "Ada"`, status: 400, want: "invalid JSON"},
		{name: "type", body: `{"name": 3}`, status: 422, want: `$.name: want string, got number`},
		{name: "unknown field", body: `{"nmae": "Ada"}`, status: 422, want: `$.name: missing; $.nmae: unknown field`},
		{name: "not an object", body: `["Ada"]`, status: 422, want: `$: want object, got array`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Predict(context.Background(), &functions.Request{Body: []byte(tt.body)})
			var fe *functions.Error
			if !errors.As(err, &fe) || fe.Status != tt.status {
				t.Fatalf("error = %v, want a %d *functions.Error", err, tt.status)
			}
			if !strings.Contains(fe.Message, tt.want) {
				t.Errorf("message = %q, want it to contain %q", fe.Message, tt.want)
			}
		})
	}
}

func TestTypedRawBytes(t *testing.T) {
	p := functions.Typed(func(ctx context.Context, in []byte) (*functions.Response, error) {
		return functions.Bytes(http.StatusOK, "application/octet-stream", in), nil
	})
	resp, err := p.Predict(context.Background(), &functions.Request{Body: []byte("not json")})
	if err != nil || string(resp.Body) != "not json" {
		t.Fatalf("raw body: %v %v, want it passed as it came", resp, err)
	}
}

func TestErrorfWrapsAndStatusOf(t *testing.T) {
	err := functions.Errorf(http.StatusNotFound, "model %q: %w", "tulip", fs.ErrNotExist)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("Errorf does not wrap its %w operand")
	}
	if got := functions.StatusOf(fmt.Errorf("loading: %w", err)); got != http.StatusNotFound {
		t.Errorf("StatusOf a wrapped *Error = %d, want 404", got)
	}
	if got := functions.StatusOf(errors.New("plain")); got != http.StatusInternalServerError {
		t.Errorf("StatusOf a plain error = %d, want 500", got)
	}
	if got := functions.StatusOf(&functions.Error{Status: 200}); got != http.StatusInternalServerError {
		t.Errorf("StatusOf an *Error with a non-error status = %d, want 500", got)
	}
	if got := string(functions.ErrorBody(`say "hi"`)); got != `{"error":"say \"hi\""}` {
		t.Errorf("ErrorBody = %s", got)
	}
}
