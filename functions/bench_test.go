package functions_test

import (
	"context"
	"testing"

	"github.com/cortexfn/cortex/functions"
)

// benchGreet is the shape of the echo-go sample's input.
type benchGreet struct {
	Name string `json:"name" jsonschema:"minLength=1"`
}

// benchOrder is a larger input: nested objects, arrays, optional fields.
type benchOrder struct {
	ID       string      `json:"id"`
	Customer benchPerson `json:"customer"`
	Items    []benchItem `json:"items" jsonschema:"minItems=1"`
	Note     string      `json:"note,omitempty"`
	Priority int         `json:"priority,omitempty" jsonschema:"minimum=0,maximum=9"`
	Express  *bool       `json:"express"`
}

type benchPerson struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
}

type benchItem struct {
	SKU      string   `json:"sku"`
	Quantity int      `json:"quantity" jsonschema:"minimum=1"`
	Price    float64  `json:"price" jsonschema:"minimum=0"`
	Tags     []string `json:"tags,omitempty"`
}

const benchOrderBody = `{"id": "o-17", "customer": {"name": "Ada", "email": "ada@example.com"},
 "items": [{"sku": "A1", "quantity": 2, "price": 9.5, "tags": ["red", "large"]},
           {"sku": "B2", "quantity": 1, "price": 120}, {"sku": "C3", "quantity": 12, "price": 0.25}],
 "note": "leave at the door", "priority": 3, "express": true}`

func benchTyped[In any](b *testing.B, body string, wantErr bool) {
	p := functions.Typed(func(ctx context.Context, in In) (struct{}, error) { return struct{}{}, nil })
	req := &functions.Request{Body: []byte(body)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Predict(ctx, req); (err != nil) != wantErr {
			b.Fatal(err)
		}
	}
}

// BenchmarkTypedSmall is one short field: the echo-go sample's request.
func BenchmarkTypedSmall(b *testing.B) { benchTyped[benchGreet](b, `{"name": "Ada"}`, false) }

// BenchmarkTypedNested is a 400-byte order with nested objects and arrays.
func BenchmarkTypedNested(b *testing.B) { benchTyped[benchOrder](b, benchOrderBody, false) }

// BenchmarkTypedInvalid is a body that fails (the 422 and its message).
func BenchmarkTypedInvalid(b *testing.B) {
	benchTyped[benchOrder](b, `{"id": 1, "items": [{"sku": "A1", "quantity": 0, "price": -1}], "nmae": 1}`, true)
}

// BenchmarkDecodeOnly* are the baselines of the Typed benchmarks in the
// same run: the body decoded into the input type and an answer encoded,
// as Typed did before it validated against its schema (BENCHMARKS.md,
// issue 21).
func BenchmarkDecodeOnlySmall(b *testing.B) { benchDecode[benchGreet](b, `{"name": "Ada"}`) }

func BenchmarkDecodeOnlyNested(b *testing.B) { benchDecode[benchOrder](b, benchOrderBody) }

func benchDecode[In any](b *testing.B, body string) {
	b.ReportAllocs()
	for b.Loop() {
		var in In
		if err := functions.DecodeJSON([]byte(body), &in); err != nil {
			b.Fatal(err)
		}
		if _, err := functions.JSON(200, struct{}{}); err != nil {
			b.Fatal(err)
		}
	}
}
