package lambda_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cortexfn/cortex/adapters/lambda"
	"github.com/cortexfn/cortex/functions"
)

// echo is an engine that costs nothing, so the benchmarks measure the
// carrier: decoding the event, mapping, encoding the result.
type echo struct{}

func (echo) Name() string   { return "bench" }
func (echo) MaxBody() int64 { return 6 << 20 }
func (echo) Ready() bool    { return true }
func (echo) Invoke(_ context.Context, req *functions.Request) (*functions.Response, error) {
	return functions.Bytes(http.StatusOK, "application/json", req.Body), nil
}

// prediction1KB is a 1 KB JSON prediction body.
var prediction1KB = func() string {
	s := `{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [` + strings.Repeat("5.1, 3.5, 1.4, 0.2, ", 45)
	s = s[:len(s)-2] + `]}]}`
	return s + strings.Repeat(" ", 1024-len(s))
}()

func benchEvents(b *testing.B) map[string][]byte {
	out := map[string][]byte{}
	var url events.LambdaFunctionURLRequest
	mustUnmarshal(b, readEvent(b, "function-url-request-with-headers-and-cookies-and-text-body.json"), &url)
	url.Body = prediction1KB
	out["function-url"], _ = json.Marshal(url)

	var v2 events.APIGatewayV2HTTPRequest
	mustUnmarshal(b, readEvent(b, "apigw-v2-request-iam.json"), &v2)
	v2.Body = prediction1KB
	v2.Headers["content-type"] = "application/json"
	out["apigw-v2"], _ = json.Marshal(v2)

	var v1 events.APIGatewayProxyRequest
	mustUnmarshal(b, readEvent(b, "apigw-request.json"), &v1)
	v1.Body = prediction1KB
	out["apigw-v1"], _ = json.Marshal(v1)

	var alb events.ALBTargetGroupRequest
	mustUnmarshal(b, readEvent(b, "alb-lambda-target-request-multivalue-headers.json"), &alb)
	alb.HTTPMethod, alb.Body = "POST", prediction1KB
	alb.MultiValueHeaders["content-type"] = []string{"application/json"}
	out["alb"], _ = json.Marshal(alb)

	out["direct"] = []byte(prediction1KB)
	return out
}

// BenchmarkCarrier measures the Lambda carrier's added cost for a 1 KB
// prediction, per event shape: the payload as aws-lambda-go hands it over,
// to the result it sends back.
func BenchmarkCarrier(b *testing.B) {
	h, _ := lambda.Handler(echo{})
	ctx := lambdaContext(b)
	evs := benchEvents(b)
	for _, name := range []string{"function-url", "apigw-v2", "apigw-v1", "alb", "direct"} {
		payload := evs[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(prediction1KB)))
			for b.Loop() {
				out, err := h(ctx, payload)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
