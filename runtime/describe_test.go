package runtime_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
	echogo "github.com/cortexfn/cortex/samples/echo-go/predictor"
)

// order is a typed function's input: nested, with a list, bounds and an
// enum.
type order struct {
	ID       string `json:"id" jsonschema:"minLength=1"`
	Customer struct {
		Name string `json:"name"`
	} `json:"customer"`
	Items []struct {
		SKU      string `json:"sku"`
		Quantity int    `json:"quantity" jsonschema:"minimum=1"`
	} `json:"items" jsonschema:"minItems=1"`
	Speed string `json:"speed,omitempty" jsonschema:"enum=standard,enum=express"`
}

type receipt struct {
	ID    string `json:"id"`
	Items int    `json:"items"`
}

func place(ctx context.Context, in order) (receipt, error) {
	return receipt{ID: in.ID, Items: len(in.Items)}, nil
}

func quiet() runtime.Option { return runtime.WithLogger(quietLogger()) }

func TestDescribeTyped(t *testing.T) {
	rt, err := runtime.New(functions.Typed(place), runtime.Config{Name: "orders"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	d := rt.Describe(context.Background())
	if d.Name != "orders" || d.Version == "" || d.Ready || d.Streams || d.Auth || d.Models != nil {
		t.Errorf("before Start: %+v", d)
	}
	var in map[string]any
	if err := json.Unmarshal(d.Schema.Input, &in); err != nil || in["type"] != "object" {
		t.Fatalf("input schema %s (%v)", d.Schema.Input, err)
	}
	if got := strs(in["required"]); !slices.Equal(got, []string{"id", "customer", "items"}) {
		t.Errorf("required %q", got)
	}
	if d.Schema.Output == nil {
		t.Error("no output schema")
	}
	// The digest is the running executable's.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if want := "sha256:" + hex.EncodeToString(sum[:]); d.Digest != want {
		t.Errorf("digest %q, want %q", d.Digest, want)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := rt.Describe(context.Background()); !d.Ready || d.Models != nil {
		t.Errorf("after Start: ready %v, models %v; want ready, and no models (no catalogue)", d.Ready, d.Models)
	}
}

func strs(v any) []string {
	var s []string
	a, _ := v.([]any)
	for _, x := range a {
		s = append(s, x.(string))
	}
	return s
}

func TestDescribeStreamsAndAuth(t *testing.T) {
	p := functions.TypedStream(func(ctx context.Context, in order) iter.Seq2[receipt, error] { return nil })
	cfg := runtime.Config{Name: "stream", Auth: runtime.AuthConfig{TokenEnv: "STREAM_TOKEN"}}
	rt, err := runtime.New(p, cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	d := rt.Describe(context.Background())
	if !d.Streams || !d.Auth {
		t.Errorf("streams %v, auth %v; want both", d.Streams, d.Auth)
	}
	if !strings.Contains(string(d.Schema.Output), `"type":"array"`) {
		t.Errorf("a stream's output schema %s, want the array of what it yields", d.Schema.Output)
	}
}

// TestDescribeEmbeddedTyped checks the schema of a predictor that embeds
// the Predictor Typed returns (the echo-go sample): it is Typed's, which
// the predictor forwards.
func TestDescribeEmbeddedTyped(t *testing.T) {
	rt, err := runtime.New(echogo.New(), runtime.Config{Name: "echo-go"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	d := rt.Describe(context.Background())
	if !strings.Contains(string(d.Schema.Input), `"name":{"type":"string","minLength":1,"description":"Who to greet."`) {
		t.Errorf("echo-go input schema %s", d.Schema.Input)
	}
	if !strings.Contains(string(d.Schema.Output), `"vowel_ratio"`) {
		t.Errorf("echo-go output schema %s", d.Schema.Output)
	}
}

// badOrder fails its schema four ways at once.
const badOrder = `{"id": "", "items": [{"sku": "A", "quantity": 0}, {"quantity": 2}], "speed": "warp"}`

var badOrderFields = []functions.FieldError{
	{Path: "$.customer", Message: "missing"},
	{Path: "$.id", Message: "must be at least 1 character long, got 0"},
	{Path: "$.items[0].quantity", Message: "must be >= 1, got 0"},
	{Path: "$.items[1].sku", Message: "missing"},
	{Path: `$.speed`, Message: `must be one of "standard", "express", got "warp"`},
}

// TestTyped422ThroughInvoke checks that a body failing the input schema
// in several places reaches the caller of Invoke as one 422 that lists
// them all, counted as a 422.
func TestTyped422ThroughInvoke(t *testing.T) {
	rt := newStarted(t, functions.Typed(place), runtime.Config{Name: "orders"})
	_, err := rt.Invoke(context.Background(), &functions.Request{Method: "POST", Path: "/predict", Body: []byte(badOrder)})
	var fe *functions.Error
	if !errors.As(err, &fe) || fe.Status != http.StatusUnprocessableEntity {
		t.Fatalf("Invoke: %v, want a 422", err)
	}
	if !slices.Equal(fe.Fields, badOrderFields) {
		t.Errorf("fields:\ngot  %q\nwant %q", fe.Fields, badOrderFields)
	}
	if !strings.HasPrefix(fe.Message, "request body does not match the input schema: $.customer: missing; $.id: ") {
		t.Errorf("message %q", fe.Message)
	}
}

// TestTyped422OverHTTP checks the same 422 over the HTTP carrier: the
// status, the message and the fields in the body.
func TestTyped422OverHTTP(t *testing.T) {
	rt, err := runtime.New(functions.Typed(place), runtime.Config{Name: "orders"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, rt)
	waitReady(t, base)
	a := do(t, "POST", base+"/predict", "application/json", strings.NewReader(badOrder))
	if a.status != http.StatusUnprocessableEntity || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("got %d %s %s, want a JSON 422", a.status, a.header.Get("Content-Type"), a.body)
	}
	var body struct {
		Error  string                 `json:"error"`
		Fields []functions.FieldError `json:"fields"`
	}
	if err := json.Unmarshal([]byte(a.body), &body); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(body.Fields, badOrderFields) || !strings.Contains(body.Error, "$.items[1].sku: missing") {
		t.Errorf("body %s", a.body)
	}
	// Malformed JSON stays a 400, without fields.
	a = do(t, "POST", base+"/predict", "application/json", strings.NewReader(`{"id": `))
	if a.status != http.StatusBadRequest || strings.Contains(a.body, `"fields"`) {
		t.Errorf("malformed JSON: %d %s, want a 400 without fields", a.status, a.body)
	}
}

func newStarted(t *testing.T, p functions.Predictor, cfg runtime.Config) *runtime.Runtime {
	t.Helper()
	rt, err := runtime.New(p, cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Shutdown(context.Background()) })
	return rt
}
