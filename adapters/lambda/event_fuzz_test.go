package lambda_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"

	httpadapter "github.com/cortexfn/cortex/adapters/http"
	"github.com/cortexfn/cortex/adapters/lambda"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
)

// FuzzEvent feeds arbitrary bytes, as aws-lambda-go hands an invocation's
// payload over (HandlerFunc.Invoke), through the carrier into a real
// runtime whose predictor reads a JSON document and echoes it. Whatever
// the bytes, nothing panics and the caller's input is never answered with
// a 5xx: an HTTP event gets an event response with a status under 500, a
// direct invoke either the echo or a function error whose status is a 4xx.
func FuzzEvent(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, kind := range eventKinds {
		for _, r := range []struct{ method, path, body string }{
			{"GET", "/healthz", ""}, {"HEAD", "/readyz", ""}, {"GET", "/metrics", ""}, {"GET", "/v2/models/fn/versions/1/ready", ""},
			{"DELETE", "/v1/models/fn", ""}, {"GET", "/predict", `{"a": 1}`}, {"POST", "/v2/models/fn/infer", `{"inputs": []}`},
			{"POST", "/v1/models/other:predict", `{"instances": [1]}`}, {"POST", "/own/route?x=1", `[1, "two", null]`},
		} {
			f.Add(kind.build(f, r.method, r.path, r.body))
		}
	}
	for _, s := range []string{"", " ", "not json", `{"op": `, `{"a": 1} trailing`, "\xff\xfe", `"text"`, `1e999`,
		`{"version": "2.0", "requestContext": {"http": {"method": "GET"}, "stage": "prod"}, "rawPath": "/prod"}`,
		`{"version": "1.0", "httpMethod": "GET", "path": "/prod/healthz", "requestContext": {"stage": "prod"}}`,
		`{"requestContext": {"elb": {}}, "httpMethod": "POST", "path": "/predict", "body": "!!", "isBase64Encoded": true}`,
	} {
		f.Add([]byte(s))
	}

	echo := functions.PredictorFunc(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
		var doc any
		if err := functions.DecodeJSON(req.Body, &doc); err != nil {
			return nil, err
		}
		return functions.JSON(http.StatusOK, map[string]any{"echo": doc})
	})
	rt, err := runtime.New(echo, runtime.Config{Name: "fn", Limits: runtime.Limits{MaxBody: 64 << 10}}, runtime.WithLogger(quietLogger()))
	if err != nil {
		f.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	h, err := lambda.Handler(rt, lambda.WithRoutes(httpadapter.New(rt, httpadapter.WithMetrics(rt.MetricsHandler()), httpadapter.WithoutCompression())))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		result, err := h.Invoke(context.Background(), payload)
		if err != nil {
			var ie messages.InvokeResponse_Error
			if !errors.As(err, &ie) {
				t.Fatalf("%T %v is not a Lambda function error", err, err)
			}
			num, _, _ := strings.Cut(ie.Message, " ")
			if status, _ := strconv.Atoi(num); status < 400 || status >= 500 {
				t.Fatalf("direct invoke answered %s %q, want a 4xx", ie.Type, ie.Message)
			}
			return
		}
		var r struct {
			StatusCode *int            `json:"statusCode"`
			Echo       json.RawMessage `json:"echo"`
		}
		if err := json.Unmarshal(result, &r); err != nil {
			t.Fatalf("the result is not JSON: %v: %.300q", err, result)
		}
		switch {
		case r.Echo != nil && r.StatusCode == nil:
			// A direct invoke's prediction.
		case r.StatusCode == nil:
			t.Fatalf("neither an event response nor a prediction: %.300q", result)
		case *r.StatusCode < 100 || *r.StatusCode >= 500:
			t.Fatalf("an HTTP event answered %d: %.300q", *r.StatusCode, result)
		}
	})
}
