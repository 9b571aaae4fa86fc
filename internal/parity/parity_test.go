package parity_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/cortexfn/cortex/internal/testutil"
)

const (
	// irisDir is the function under test: a real ONNX model.
	irisDir = "../../samples/iris"
	// maxBody is samples/iris's limits.max_body (1MiB in its cortex.yaml).
	maxBody = 1 << 20
	// lambdaMaxPayload is Lambda's limit on a buffered invocation's payload.
	lambdaMaxPayload = 6 << 20
	// stage is the named API Gateway stage the function is deployed on.
	stage = "prod"
	// functionARN is the ARN the Runtime API double reports.
	functionARN = "arn:aws:lambda:us-east-1:123456789012:function:iris"
	// tolerance bounds the relative difference of two numbers in bodies
	// that are the same answer.
	tolerance = 1e-6
)

// carrier is one column of the table: a way a request reaches the function.
type carrier string

// The columns. HTTP is the reference the others are compared with.
const (
	overHTTP     carrier = "http"
	functionURL  carrier = "lambda-function-url"
	httpAPI      carrier = "lambda-apigw-v2-stage"
	restAPI      carrier = "lambda-apigw-v1-rest-stage"
	albSingle    carrier = "lambda-alb"
	albMulti     carrier = "lambda-alb-multi-value"
	ceBinary     carrier = "cloudevents-binary"
	ceStructured carrier = "cloudevents-structured"
)

var (
	carriers       = []carrier{overHTTP, functionURL, httpAPI, restAPI, albSingle, albMulti, ceBinary, ceStructured}
	lambdaCarriers = []carrier{functionURL, httpAPI, restAPI, albSingle, albMulti}
	albCarriers    = []carrier{albSingle, albMulti}
	ceCarriers     = []carrier{ceBinary, ceStructured}
)

func isCloudEvent(c carrier) bool { return slices.Contains(ceCarriers, c) }

// request is a row's HTTP request; each carrier carries it its own way.
type request struct {
	method, path, query string
	contentType         string
	body                []byte
}

// row is one request and what every carrier must answer to it.
type row struct {
	name string
	req  request
	// status is the answer's status over HTTP, which every carrier gives
	// unless its rule says otherwise.
	status int
	// errorHas is part of the error text over HTTP, for an error status.
	errorHas string
	// metrics: the body is a Prometheus exposition whose counts differ
	// between the two processes; only status and Content-Type are compared.
	metrics bool
	// rules are where a carrier's own rules make its answer differ from
	// HTTP's, or where something about the carrier is worth stating.
	rules map[carrier]rule
}

// rule is a carrier's own rule for a row. A rule that changes nothing is
// a note: the answer is HTTP's, and why says why that holds or what would
// answer first in production.
type rule struct {
	why string
	// status replaces HTTP's status; the error text stays HTTP's.
	status int
	// like is the name of the row whose HTTP answer this carrier gives
	// instead of this row's.
	like string
	// errorText replaces HTTP's error text; %d stands for the size of the
	// request body this carrier sent.
	errorText string
}

// rules gives each of cs the same rule; merge joins such maps.
func rules(r rule, cs ...carrier) map[carrier]rule {
	m := make(map[carrier]rule, len(cs))
	for _, c := range cs {
		m[c] = r
	}
	return m
}

func merge(ms ...map[carrier]rule) map[carrier]rule {
	out := map[carrier]rule{}
	for _, m := range ms {
		for c, r := range m {
			out[c] = r
		}
	}
	return out
}

const (
	jsonType = "application/json"
	// setosa is one flower, an OIP request for iris.
	setosa = `{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}`
)

func get(path string) request { return request{method: http.MethodGet, path: path} }

func post(path, contentType, body string) request {
	return request{method: http.MethodPost, path: path, contentType: contentType, body: []byte(body)}
}

// bigOIP is a valid OIP request of at least min bytes: many flowers.
func bigOIP(min int) []byte {
	n := min/20 + 1
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"inputs": [{"name": "input", "shape": [%d, 4], "datatype": "FP32", "data": [`, n)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("5.1, 3.5, 1.4, 0.2")
	}
	b.WriteString("]}]}")
	return b.Bytes()
}

// float32s is the little-endian bytes of n float32 values, which are not
// UTF-8: a binary body.
func float32s(n int) []byte {
	b := make([]byte, 0, 4*n)
	for i := range n {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(i)+0.5))
	}
	return b
}

// table is the parity table: rows × carriers. Every cell is HTTP's answer
// to the row unless the row's rules say otherwise for that carrier.
func table() []row {
	// GET rows are plain HTTP over the CloudEvents columns: a CloudEvent is
	// a POST, and knative.Wrap hands any other method, ce-* headers or
	// envelope and all, to the HTTP carrier.
	ceIsHTTP := rules(rule{why: "CloudEvents are POSTs: knative.Wrap passes a non-POST with ce-* headers or an envelope to the plain HTTP handler"}, ceCarriers...)
	// Knative Eventing retries 404, which for a prediction is permanent.
	ce422 := rules(rule{status: http.StatusUnprocessableEntity,
		why: "Knative Eventing retries 404, 408 and 409: the CloudEvents carrier answers them 422 (adapters/knative: eventStatus)"}, ceCarriers...)
	// ALB passes a Lambda target at most 1 MB of request body.
	albLimit := rules(rule{why: "an ALB refuses a body over 1 MB to a Lambda target before invoking it; the function's own answer, checked here, is HTTP's"}, albCarriers...)
	return []row{
		// Predictions.
		{name: "POST /predict OIP", req: post("/predict", jsonType, setosa), status: 200},
		{name: "POST /predict?model=iris", req: request{method: "POST", path: "/predict", query: "model=iris", contentType: jsonType, body: []byte(setosa)}, status: 200},
		{name: "POST /v2/models/iris/infer", status: 200, req: post("/v2/models/iris/infer", jsonType,
			`{"id": "oip-1", "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [6.0, 2.2, 5.0, 1.5]}], "outputs": [{"name": "probabilities"}]}`)},
		{name: "POST /v2/models/iris/infer batch", status: 200, req: post("/v2/models/iris/infer", jsonType,
			`{"inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP32", "data": [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]]}]}`)},
		{name: "POST /v1/models/iris:predict", status: 200, req: post("/v1/models/iris:predict", jsonType,
			`{"instances": [[5.9, 3.0, 4.2, 1.5], [4.6, 3.1, 1.5, 0.2]]}`)},

		// Service routes.
		{name: "GET /healthz", req: get("/healthz"), status: 200, rules: ceIsHTTP},
		{name: "GET /readyz", req: get("/readyz"), status: 200, rules: ceIsHTTP},
		{name: "GET /metrics", req: get("/metrics"), status: 200, metrics: true, rules: ceIsHTTP},
		{name: "GET /v2", req: get("/v2"), status: 200, rules: ceIsHTTP},
		{name: "GET /v2/health/ready", req: get("/v2/health/ready"), status: 200, rules: ceIsHTTP},
		{name: "GET /v2/models/iris", req: get("/v2/models/iris"), status: 200, rules: ceIsHTTP},
		{name: "GET /v1/models/iris", req: get("/v1/models/iris"), status: 200, rules: ceIsHTTP},
		{name: "GET /v2/models", req: get("/v2/models"), status: 200, rules: ceIsHTTP},
		{name: "GET /v1/models", req: get("/v1/models"), status: 200, rules: ceIsHTTP},
		// A GET is not an event, so an unknown model's metadata stays 404
		// over the CloudEvents columns.
		{name: "GET /v2/models/rose", req: get("/v2/models/rose"), status: 404, errorHas: `"rose"`, rules: ceIsHTTP},

		// Wrong methods.
		{name: "GET /predict", req: get("/predict"), status: 405, errorHas: "method GET not allowed on /predict", rules: ceIsHTTP},
		{name: "DELETE /predict with a body", req: request{method: http.MethodDelete, path: "/predict", contentType: jsonType, body: []byte(setosa)},
			status: 405, errorHas: "method DELETE not allowed", rules: ceIsHTTP},

		// Bad bodies.
		{name: "malformed JSON", req: post("/predict", jsonType, `{"inputs": [{"name": "input",, "shape": [1, 4]}]}`), status: 400},
		{name: "truncated JSON", req: post("/predict", jsonType, `{"inputs": [{"name": "input", "shape": [1, 4], `), status: 400},
		{name: "empty body", req: post("/predict", jsonType, ""), status: 400},
		// A binary body arrives base64 in a Lambda event and as
		// data_base64 in a structured CloudEvent.
		{name: "binary body", req: request{method: "POST", path: "/predict", contentType: "application/octet-stream", body: float32s(4)}, status: 400},
		// A request that does not fit the model is a 422 listing every
		// misfit, in the message and in "fields", alike everywhere.
		{name: "wrong shape", status: 422, errorHas: "$.inputs[0].shape: [1,5] does not match the model's [-1,4]", req: post("/predict", jsonType,
			`{"inputs": [{"name": "input", "shape": [1, 5], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2, 1.0]}]}`)},
		{name: "wrong datatype", status: 422, errorHas: "$.inputs[0].datatype: FP64 does not match the model's FP32", req: post("/predict", jsonType,
			`{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}`)},
		{name: "every misfit at once", status: 422, req: post("/v2/models/iris/infer", jsonType,
			`{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [5.1, 3.5, 1.4]}, {"name": "mask", "shape": [1], "datatype": "BOOL", "data": [true]}], "outputs": [{"name": "logits"}]}`),
			errorHas: `$.inputs[0].datatype: FP64 does not match the model's FP32; $.inputs[0].shape: [1,3] does not match the model's [-1,4] (-1 takes any size); ` +
				`$.inputs[1].name: "mask" is not an input of the model; its inputs are "input" FP32 [-1,4]; $.outputs[0].name: "logits" is not an output of the model`},
		{name: "wrong shape on /v1 (not instances)", status: 400, req: post("/v1/models/iris:predict", jsonType, `{"inputs": [[5.1, 3.5, 1.4, 0.2]]}`)},

		// Bodies over the limits. A structured CloudEvent may be a third
		// larger than limits.max_body (base64 data) and its data is then
		// held to the limit, so it names the data's size as HTTP does. A
		// base64 body in a Lambda event is named by its decoded size
		// (adapters/lambda counted base64 padding as data until this
		// table found it: 1048581 bytes for HTTP's 1048580).
		{name: "JSON over limits.max_body", req: request{method: "POST", path: "/predict", contentType: jsonType, body: bigOIP(maxBody + 1)},
			status: 413, errorHas: "limits.max_body", rules: albLimit},
		{name: "binary over limits.max_body", req: request{method: "POST", path: "/predict", contentType: "application/octet-stream", body: float32s(maxBody/4 + 1)},
			status: 413, errorHas: "limits.max_body", rules: albLimit},
		{name: "JSON over Lambda's 6 MB payload", req: request{method: "POST", path: "/predict", contentType: jsonType, body: bigOIP(lambdaMaxPayload + 1)},
			status: 413, errorHas: "limits.max_body", rules: merge(
				rules(rule{why: "Lambda refuses an invocation over 6 MB (a function URL, API Gateway or ALB answers first); the function's own answer, checked here, is HTTP's"}, lambdaCarriers...),
				rules(rule{errorText: "request body is %d bytes, over the function's limit of 1048576 bytes (limits.max_body in cortex.yaml)",
					why: "an envelope past the structured allowance is refused by its Content-Length before it is read: the size named is the envelope's, the request's body"}, ceStructured),
			)},

		// Unknown models and routes.
		{name: "unknown model POST /v2/models/rose/infer", req: post("/v2/models/rose/infer", jsonType, setosa), status: 404, errorHas: `"rose"`, rules: ce422},
		{name: "unknown model POST /predict?model=rose", req: request{method: "POST", path: "/predict", query: "model=rose", contentType: jsonType, body: []byte(setosa)},
			status: 404, errorHas: `"rose"`, rules: ce422},
		{name: "unknown route POST /nope", req: post("/nope", jsonType, setosa), status: 404, errorHas: "no route for POST /nope",
			rules: merge(
				rules(rule{like: "POST /predict OIP", why: "API Gateway and ALB mount a function under paths of their choosing: any other path is the function's own route (adapters.Route)"}, lambdaCarriers...),
				rules(rule{like: "POST /predict OIP", why: "a Knative trigger posts events to a path of its choosing: any other path is the function's own route (adapters.Route)"}, ceCarriers...),
			)},

		// Wrong content types: the ONNX predictor reads the body whatever
		// its type, as over HTTP.
		{name: "text/plain OIP body", req: post("/predict", "text/plain", setosa), status: 200},
		{name: "application/xml body", req: post("/predict", "application/xml",
			`<inputs><input name="input" datatype="FP32" shape="1 4">5.1 3.5 1.4 0.2</input></inputs>`), status: 400},
	}
}

// answer is what a client of a carrier sees.
type answer struct {
	status int
	header http.Header
	// body is the response body; for a CloudEvent reply, the event's data.
	body []byte
	// reply reports the answer came as a reply CloudEvent.
	reply bool
	// sent is the size of the request body the carrier sent.
	sent int
}

// TestCarrierParity sends every row of the table over every carrier to the
// packaged iris function and checks that the answers agree (see the
// package documentation).
func TestCarrierParity(t *testing.T) {
	if testing.Short() {
		t.Skip("packages samples/iris and runs it twice")
	}
	rows := table()
	byName := map[string]row{}
	for _, r := range rows {
		byName[r.name] = r
	}
	for _, r := range rows {
		for c, ru := range r.rules {
			if !slices.Contains(carriers[1:], c) {
				t.Fatalf("row %q: a rule for %q, which is not a column compared with HTTP", r.name, c)
			}
			if _, ok := byName[ru.like]; ru.like != "" && !ok {
				t.Fatalf("row %q, %s: like %q names no row", r.name, c, ru.like)
			}
		}
	}

	task := packageIris(t)
	h := &harness{
		base:     startHTTP(t, task),
		lambda:   startLambda(t, task),
		captures: loadCaptures(t),
		byHTTP:   map[string]answer{},
	}

	for i, r := range rows {
		id := fmt.Sprintf("parity-%02d", i)
		t.Run(r.name, func(t *testing.T) {
			want, ok := h.reference(t, r, id)
			if !ok {
				return
			}
			for _, c := range carriers[1:] {
				t.Run(string(c), func(t *testing.T) {
					ru := r.rules[c]
					w := want
					if ru.like != "" {
						if w, ok = h.reference(t, byName[ru.like], id); !ok {
							t.Fatalf("HTTP's answer to %q is not what the table says", ru.like)
						}
					}
					got := h.send(t, c, r.req, id)
					compare(t, c, r, ru, got, w)
				})
			}
		})
	}
}

// harness holds the two function processes and the captured events.
type harness struct {
	base     string // the HTTP process's URL
	lambda   *testutil.LambdaAPI
	captures map[carrier][]byte
	byHTTP   map[string]answer // HTTP's answers by row name
	n        int               // invocations so far
}

// reference returns HTTP's answer to r, checking it against what the
// table says HTTP answers; ok is false (and the test failed) if it is not.
func (h *harness) reference(t *testing.T, r row, id string) (answer, bool) {
	t.Helper()
	if a, ok := h.byHTTP[r.name]; ok {
		return a, true
	}
	a := h.send(t, overHTTP, r.req, id)
	t.Logf("over HTTP: %d %.200s", a.status, a.body)
	ok := true
	if a.status != r.status {
		t.Errorf("over HTTP: got %d %.300s, want %d", a.status, a.body, r.status)
		ok = false
	}
	switch {
	case a.status >= 400:
		msg, err := errorText(a.body)
		if err != nil {
			t.Errorf("over HTTP: %v", err)
			ok = false
		} else if !strings.Contains(msg, r.errorHas) {
			t.Errorf("over HTTP: error %q, want it to contain %q", msg, r.errorHas)
			ok = false
		}
		if a.status == http.StatusUnprocessableEntity && errorFields(a.body) == "" {
			t.Errorf("over HTTP: a 422 without the fields at fault: %.300s", a.body)
			ok = false
		}
	case r.metrics:
		if !bytes.Contains(a.body, []byte("# TYPE cortex_")) {
			t.Errorf("over HTTP: got %.200q, want Prometheus metrics", a.body)
			ok = false
		}
	default:
		if !json.Valid(a.body) {
			t.Errorf("over HTTP: got %.300q, want a JSON body", a.body)
			ok = false
		}
	}
	if ok {
		h.byHTTP[r.name] = a
	}
	return a, ok
}

// send carries req over c and returns what its client sees.
func (h *harness) send(t *testing.T, c carrier, req request, id string) answer {
	t.Helper()
	switch c {
	case overHTTP:
		return h.overHTTP(t, req, id)
	case ceBinary, ceStructured:
		return h.cloudEvent(t, c, req, id)
	}
	h.n++
	payload := lambdaEvent(t, c, h.captures, req, id)
	_, res := h.lambda.Invoke(t, fmt.Sprintf("%s-%s-%d", id, c, h.n), payload, time.Minute)
	if res.Kind != testutil.LambdaResponse {
		t.Fatalf("an HTTP event got a %s, want a response: %.300s", res.Kind, res.Body)
	}
	a := lambdaAnswer(t, c, res.Body)
	a.sent = len(req.body)
	return a
}

func (h *harness) overHTTP(t *testing.T, req request, id string) answer {
	t.Helper()
	hr := newRequest(t, req.method, h.base, req.path, req.query, req.body)
	if req.contentType != "" {
		hr.Header.Set("Content-Type", req.contentType)
	}
	hr.Header.Set("X-Request-Id", id)
	a := do(t, hr)
	a.sent = len(req.body)
	return a
}

// cloudEvent posts req as Knative Eventing delivers an event: in binary
// mode the ce-* headers with the body as the data, in structured mode the
// whole event as application/cloudevents+json. A reply event is unwrapped
// into its data.
func (h *harness) cloudEvent(t *testing.T, c carrier, req request, id string) answer {
	t.Helper()
	body := req.body
	if c == ceStructured {
		body = envelope(id, req)
	}
	hr := newRequest(t, req.method, h.base, req.path, req.query, body)
	hr.Header.Set("X-Request-Id", id)
	if c == ceBinary {
		hr.Header.Set("Ce-Specversion", "1.0")
		hr.Header.Set("Ce-Id", id)
		hr.Header.Set("Ce-Source", "/cortex/parity")
		hr.Header.Set("Ce-Type", ceType)
		if req.contentType != "" {
			hr.Header.Set("Content-Type", req.contentType)
		}
	} else {
		hr.Header.Set("Content-Type", "application/cloudevents+json")
	}
	a := do(t, hr)
	a.sent = len(body)
	switch {
	case a.header.Get("Ce-Specversion") != "":
		if got := a.header.Get("Ce-Type"); got != ceType+".prediction" {
			t.Errorf("reply event type %q, want %q", got, ceType+".prediction")
		}
		a.reply = true
	case mediaType(a.header.Get("Content-Type")) == "application/cloudevents+json":
		ev := event.New()
		if err := json.Unmarshal(a.body, &ev); err != nil {
			t.Fatalf("a structured reply that is not an event: %v: %.300s", err, a.body)
		}
		if ev.Type() != ceType+".prediction" {
			t.Errorf("reply event type %q, want %q", ev.Type(), ceType+".prediction")
		}
		a.reply = true
		a.body = ev.Data()
		a.header = a.header.Clone()
		a.header.Set("Content-Type", ev.DataContentType())
	}
	return a
}

// ceType is the incoming events' type.
const ceType = "dev.cortexfn.parity.request"

// envelope is req as a structured-mode event, written by hand so that the
// data is the body byte for byte: JSON data in place, other text as a
// string, anything else (bytes, or JSON that does not parse) as
// data_base64.
func envelope(id string, req request) []byte {
	var b bytes.Buffer
	b.WriteString(`{"specversion":"1.0","id":`)
	b.Write(jsonString(id))
	b.WriteString(`,"source":"/cortex/parity","type":`)
	b.Write(jsonString(ceType))
	if req.contentType != "" {
		b.WriteString(`,"datacontenttype":`)
		b.Write(jsonString(req.contentType))
	}
	mt := mediaType(req.contentType)
	isJSON := mt == jsonType || strings.HasSuffix(mt, "+json")
	switch {
	case len(req.body) == 0:
	case isJSON && json.Valid(req.body):
		b.WriteString(`,"data":`)
		b.Write(req.body)
	case !isJSON && isText(req.contentType) && utf8.Valid(req.body):
		b.WriteString(`,"data":`)
		b.Write(jsonString(string(req.body)))
	default:
		b.WriteString(`,"data_base64":"`)
		b.WriteString(base64.StdEncoding.EncodeToString(req.body))
		b.WriteString(`"`)
	}
	b.WriteString("}")
	return b.Bytes()
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

func newRequest(t *testing.T, method, base, path, query string, body []byte) *http.Request {
	t.Helper()
	u := base + path
	if query != "" {
		u += "?" + query
	}
	var rd io.Reader = http.NoBody
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	hr, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	return hr
}

func do(t *testing.T, hr *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", hr.Method, hr.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}
}

// lambdaEvent builds the event shape c delivers for req from the real
// capture of that shape: the function is mounted at the root of a function
// URL and of an ALB, and on the named stage of an API Gateway HTTP API (the
// stage is in the path) and REST API (behind a greedy {proxy+} resource;
// the stage is in requestContext.path only).
func lambdaEvent(t *testing.T, c carrier, captures map[carrier][]byte, req request, id string) []byte {
	t.Helper()
	body, b64 := eventBody(req)
	single, multi := eventQuery(req.query)
	headers := [][2]string{{"content-type", req.contentType}, {"x-request-id", id}}
	var ev any
	switch c {
	case functionURL:
		var e events.LambdaFunctionURLRequest
		unmarshal(t, captures[functionURL], &e)
		e.RawPath, e.RequestContext.HTTP.Path, e.RequestContext.HTTP.Method = req.path, req.path, req.method
		// A function URL joins a repeated query key's values with commas.
		e.RawQueryString, e.QueryStringParameters = req.query, joined(multi)
		setHeaders(e.Headers, headers, len(req.body))
		e.Body, e.IsBase64Encoded = body, b64
		ev = e
	case httpAPI:
		var e events.APIGatewayV2HTTPRequest
		unmarshal(t, captures[httpAPI], &e)
		e.RequestContext.Stage = stage
		e.RawPath = "/" + stage + req.path
		e.RequestContext.HTTP.Path, e.RequestContext.HTTP.Method = e.RawPath, req.method
		e.RawQueryString, e.QueryStringParameters = req.query, joined(multi)
		setHeaders(e.Headers, headers, len(req.body))
		e.Body, e.IsBase64Encoded = body, b64
		ev = e
	case restAPI:
		var e events.APIGatewayProxyRequest
		unmarshal(t, captures[restAPI], &e)
		e.Resource, e.PathParameters = "/{proxy+}", map[string]string{"proxy": strings.TrimPrefix(req.path, "/")}
		e.Path = req.path
		e.HTTPMethod = req.method
		e.RequestContext.Stage, e.RequestContext.Path = stage, "/"+stage+req.path
		e.RequestContext.ResourcePath, e.RequestContext.HTTPMethod = e.Resource, req.method
		// API Gateway decodes the query for a REST API.
		e.QueryStringParameters, e.MultiValueQueryStringParameters = lastValues(multi), multi
		// A REST API keeps the client's spelling of header names.
		restHeaders := [][2]string{{"Content-Type", req.contentType}, {"X-Request-Id", id}}
		setHeaders(e.Headers, restHeaders, len(req.body))
		setMultiHeaders(e.MultiValueHeaders, restHeaders, len(req.body))
		e.Body, e.IsBase64Encoded = body, b64
		ev = e
	case albSingle:
		var e events.ALBTargetGroupRequest
		unmarshal(t, captures[albSingle], &e)
		e.HTTPMethod, e.Path = req.method, req.path
		// An ALB passes query values as they came, undecoded.
		e.QueryStringParameters = single
		setHeaders(e.Headers, headers, len(req.body))
		e.Body, e.IsBase64Encoded = body, b64
		ev = e
	case albMulti:
		var e events.ALBTargetGroupRequest
		unmarshal(t, captures[albMulti], &e)
		e.HTTPMethod, e.Path = req.method, req.path
		e.MultiValueQueryStringParameters = rawMulti(req.query)
		setMultiHeaders(e.MultiValueHeaders, headers, len(req.body))
		e.Body, e.IsBase64Encoded = body, b64
		ev = e
	default:
		t.Fatalf("%s is not a Lambda event shape", c)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eventBody is the body as the invoking service puts it in the event: as
// text when its type is textual and it is UTF-8, else base64 (as function
// URLs, HTTP APIs and ALBs do, and a REST API with binary media types).
func eventBody(req request) (string, bool) {
	if isText(req.contentType) && utf8.Valid(req.body) {
		return string(req.body), false
	}
	return base64.StdEncoding.EncodeToString(req.body), true
}

// eventQuery is the query's values, decoded (multi) and raw (single, the
// last value of each key, as an ALB sends them).
func eventQuery(raw string) (single map[string]string, multi map[string][]string) {
	if raw == "" {
		return nil, nil
	}
	q, _ := url.ParseQuery(raw)
	return lastValues(rawMulti(raw)), q
}

func rawMulti(raw string) map[string][]string {
	if raw == "" {
		return nil
	}
	m := map[string][]string{}
	for kv := range strings.SplitSeq(raw, "&") {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = append(m[k], v)
	}
	return m
}

func lastValues(m map[string][]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, vs := range m {
		out[k] = vs[len(vs)-1]
	}
	return out
}

func joined(m map[string][]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, vs := range m {
		out[k] = strings.Join(vs, ",")
	}
	return out
}

// setHeaders sets each header in an event's header map, replacing the
// capture's spelling of it (an empty value removes it), and brings a
// captured Content-Length up to date.
func setHeaders(m map[string]string, hs [][2]string, length int) {
	for _, kv := range hs {
		for k := range m {
			if strings.EqualFold(k, kv[0]) {
				delete(m, k)
			}
		}
		if kv[1] != "" {
			m[kv[0]] = kv[1]
		}
	}
	for k := range m {
		if strings.EqualFold(k, "Content-Length") {
			m[k] = strconv.Itoa(length)
		}
	}
}

func setMultiHeaders(m map[string][]string, hs [][2]string, length int) {
	for _, kv := range hs {
		for k := range m {
			if strings.EqualFold(k, kv[0]) {
				delete(m, k)
			}
		}
		if kv[1] != "" {
			m[kv[0]] = []string{kv[1]}
		}
	}
	for k := range m {
		if strings.EqualFold(k, "Content-Length") {
			m[k] = []string{strconv.Itoa(length)}
		}
	}
}

// lambdaAnswer reads the result of an HTTP event as the invoking service
// of shape c does, checking what that service requires of it.
func lambdaAnswer(t *testing.T, c carrier, result []byte) answer {
	t.Helper()
	var (
		status int
		single map[string]string
		multi  map[string][]string
		body   string
		b64    bool
	)
	switch c {
	case functionURL:
		var r events.LambdaFunctionURLResponse
		unmarshal(t, result, &r)
		status, single, body, b64 = r.StatusCode, r.Headers, r.Body, r.IsBase64Encoded
	case httpAPI:
		var r events.APIGatewayV2HTTPResponse
		unmarshal(t, result, &r)
		// An HTTP API ignores multiValueHeaders on a 2.0 response.
		status, single, body, b64 = r.StatusCode, r.Headers, r.Body, r.IsBase64Encoded
	case restAPI:
		var r events.APIGatewayProxyResponse
		unmarshal(t, result, &r)
		status, single, multi, body, b64 = r.StatusCode, r.Headers, r.MultiValueHeaders, r.Body, r.IsBase64Encoded
	case albSingle, albMulti:
		var r events.ALBTargetGroupResponse
		unmarshal(t, result, &r)
		status, single, multi, body, b64 = r.StatusCode, r.Headers, r.MultiValueHeaders, r.Body, r.IsBase64Encoded
		if want := fmt.Sprintf("%d %s", r.StatusCode, http.StatusText(r.StatusCode)); r.StatusDescription != want {
			t.Errorf("ALB statusDescription %q, want %q", r.StatusDescription, want)
		}
		// An ALB in multi-value mode reads multiValueHeaders only, and in
		// single-value mode headers only.
		if c == albMulti && (len(r.MultiValueHeaders) == 0 || len(r.Headers) > 0) {
			t.Errorf("multi-value ALB: got headers %v and multiValueHeaders %v, want multiValueHeaders only", r.Headers, r.MultiValueHeaders)
		}
		if c == albSingle && (len(r.Headers) == 0 || len(r.MultiValueHeaders) > 0) {
			t.Errorf("single-value ALB: got headers %v and multiValueHeaders %v, want headers only", r.Headers, r.MultiValueHeaders)
		}
	}
	h := make(http.Header)
	for k, v := range single {
		h.Set(k, v)
	}
	for k, vs := range multi {
		h.Del(k)
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	a := answer{status: status, header: h, body: []byte(body)}
	if b64 {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			t.Fatalf("isBase64Encoded body that is not base64: %v", err)
		}
		a.body = b
	}
	// Over HTTP the client asks for gzip and Go's transport undoes it; an
	// event's client (the REST capture sends Accept-Encoding: gzip, which
	// the metrics handler honours) undoes it the same way.
	if a.header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(a.body))
		if err != nil {
			t.Fatalf("a gzip body that is not gzip: %v", err)
		}
		if a.body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("a gzip body that is not gzip: %v", err)
		}
		a.header.Del("Content-Encoding")
	}
	return a
}

// compare checks got, carrier c's answer to row r, against want, HTTP's
// answer as changed by c's rule ru.
func compare(t *testing.T, c carrier, r row, ru rule, got, want answer) {
	t.Helper()
	why := ""
	if ru.why != "" {
		why = " (" + ru.why + ")"
	}
	wantStatus := want.status
	if ru.status != 0 {
		wantStatus = ru.status
	}
	if got.status != wantStatus {
		t.Errorf("status %d, want %d%s; body %.300s", got.status, wantStatus, why, got.body)
	}
	// A prediction that succeeds comes back as a reply event; nothing else
	// does.
	if wantReply := isCloudEvent(c) && r.req.method == http.MethodPost && wantStatus < 300; got.reply != wantReply {
		t.Errorf("answered with a reply event: %v, want %v", got.reply, wantReply)
	}
	for _, k := range []string{"Content-Type", "Allow"} {
		if g, w := got.header.Get(k), want.header.Get(k); g != w {
			t.Errorf("%s %q, want %q as over HTTP%s", k, g, w, why)
		}
	}
	switch {
	case wantStatus >= 400:
		g, err := errorText(got.body)
		if err != nil {
			t.Error(err)
			return
		}
		w, _ := errorText(want.body)
		if ru.errorText != "" {
			w = fmt.Sprintf(ru.errorText, got.sent)
		}
		if g != w {
			t.Errorf("error %q\nwant  %q%s", g, w, why)
		}
		// The fields at fault of a 422, for a form, come alike too.
		if g, w := errorFields(got.body), errorFields(want.body); g != w {
			t.Errorf("fields %s\nwant   %s%s", g, w, why)
		}
	case r.metrics:
		if !bytes.Contains(got.body, []byte("# TYPE cortex_")) {
			t.Errorf("got %.200q, want Prometheus metrics as over HTTP", got.body)
		}
	default:
		if err := sameJSON(got.body, want.body); err != nil {
			t.Errorf("body %.300s\nwant %.300s (as over HTTP)%s: %v", got.body, want.body, why, err)
		}
	}
}

// errorText is the message of an {"error": "..."} body.
func errorText(body []byte) (string, error) {
	var e struct {
		Error *string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		return "", fmt.Errorf("not an {\"error\": ...} body: %.300q", body)
	}
	return *e.Error, nil
}

// errorFields is the "fields" of an error body, as compact JSON: "" when
// it has none.
func errorFields(body []byte) string {
	var e struct {
		Fields json.RawMessage `json:"fields"`
	}
	if json.Unmarshal(body, &e) != nil || e.Fields == nil {
		return ""
	}
	var b bytes.Buffer
	if json.Compact(&b, e.Fields) != nil {
		return string(e.Fields)
	}
	return b.String()
}

// sameJSON reports how two JSON documents differ, numbers compared to a
// relative tolerance.
func sameJSON(got, want []byte) error {
	var g, w any
	if err := json.Unmarshal(want, &w); err != nil {
		return fmt.Errorf("the reference is not JSON: %v", err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	return jsonDiff("$", g, w)
}

func jsonDiff(path string, g, w any) error {
	switch w := w.(type) {
	case float64:
		gf, ok := g.(float64)
		if !ok || math.Abs(gf-w) > tolerance*math.Max(1, math.Abs(w)) {
			return fmt.Errorf("%s: %v, want %v", path, g, w)
		}
	case map[string]any:
		gm, ok := g.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %v, want an object", path, g)
		}
		for _, k := range slices.Sorted(mapKeys(w, gm)) {
			if err := jsonDiff(path+"."+k, gm[k], w[k]); err != nil {
				return err
			}
		}
	case []any:
		ga, ok := g.([]any)
		if !ok || len(ga) != len(w) {
			return fmt.Errorf("%s: %v, want %d elements", path, g, len(w))
		}
		for i := range w {
			if err := jsonDiff(fmt.Sprintf("%s[%d]", path, i), ga[i], w[i]); err != nil {
				return err
			}
		}
	default:
		if !reflect.DeepEqual(g, w) {
			return fmt.Errorf("%s: %v, want %v", path, g, w)
		}
	}
	return nil
}

// mapKeys yields the keys of both objects, once each.
func mapKeys(a, b map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range a {
			if !yield(k) {
				return
			}
		}
		for k := range b {
			if _, dup := a[k]; !dup && !yield(k) {
				return
			}
		}
	}
}

func mediaType(ct string) string {
	mt, _, _ := mime.ParseMediaType(ct)
	return mt
}

// isText reports whether an invoking service passes a body of this type
// as text: text/*, JSON, XML and JavaScript.
func isText(ct string) bool {
	mt := mediaType(ct)
	switch {
	case strings.HasPrefix(mt, "text/"), strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript":
		return true
	}
	return false
}

func unmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %T: %v: %.300s", v, err, b)
	}
}

// loadCaptures reads the real events aws-lambda-go captured, one per
// shape, from its module (the same files adapters/lambda/testdata/events
// copies).
func loadCaptures(t *testing.T) map[carrier][]byte {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-lambda-go").Output()
	if err != nil {
		t.Fatalf("locating aws-lambda-go: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "events", "testdata")
	files := map[carrier]string{
		functionURL: "lambda-urls-request.json",
		httpAPI:     "apigw-v2-request-no-authorizer.json",
		restAPI:     "apigw-request.json",
		albSingle:   "alb-lambda-target-request-headers-only.json",
		albMulti:    "alb-lambda-target-request-multivalue-headers.json",
	}
	captures := make(map[carrier][]byte, len(files))
	for c, name := range files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		captures[c] = b
	}
	return captures
}

// packageIris packages samples/iris with the packager, as `cortex package`
// does, and unzips its Lambda zip as Lambda does into /var/task. It
// returns that directory, whose bootstrap finds cortex.json beside itself.
func packageIris(t *testing.T) string {
	t.Helper()
	return pack(t, irisDir)
}

// pack packages dir's Lambda zip and extracts it, in testutil/packlambda: a
// program built without -race (see its doc), and cached by the go command
// once built. Both carriers start the zip's bootstrap (HTTP as Knative
// would), so the zip is the one output packaged. It returns the directory
// the zip was extracted into.
func pack(t *testing.T, dir string) string {
	t.Helper()
	task := filepath.Join(t.TempDir(), "task")
	cmd := exec.Command("go", "run", "../../internal/testutil/packlambda", dir, filepath.Join(t.TempDir(), "dist"), task)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("packaging %s: %v\n%s", dir, err, out)
	}
	return task
}

// isolated is what a function process must not inherit from the test's
// environment: where to find its config and the ONNX Runtime library, its
// name, its carrier. HOME goes too: nothing in this machine's cache may
// help the packaged function.
var isolated = []string{"CORTEX_CONFIG", "CORTEX_ONNXRUNTIME_LIB", "CORTEX_CACHE", "XDG_CACHE_HOME", "HOME",
	"LAMBDA_TASK_ROOT", "AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME", "K_SERVICE", "PORT", "CORTEX_LAMBDA_INVOKE_MODE", "LD_LIBRARY_PATH"}

func environ(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(isolated, k) {
			env = append(env, kv)
		}
	}
	return append(append(env, "HOME=/nonexistent"), extra...)
}

// startProcess runs task/bootstrap in task with env, and kills it when the
// test ends; exited closes when it ends. name says which process it is.
func startProcess(t *testing.T, name, task string, env []string) (exited <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(filepath.Join(task, "bootstrap"))
	cmd.Dir = task
	cmd.Env = env
	var stderr testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("%s function output:\n%s", name, stderr.String())
		}
	})
	return done
}

// startHTTP runs the packaged function as Knative runs it, an HTTP server
// on $PORT, and returns its URL once it is ready.
func startHTTP(t *testing.T, task string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	exited := startProcess(t, "HTTP", task, environ("CORTEX_HOST=127.0.0.1", "K_SERVICE=iris", "PORT="+port))
	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case <-exited:
			t.Fatal("the HTTP function exited before it was ready")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the HTTP function was not ready at %s after two minutes", base)
		}
	}
}

// startLambda runs the packaged function as Lambda runs it, under a
// Runtime API double: in /var/task with its lib/ on the library path.
func startLambda(t *testing.T, task string) *testutil.LambdaAPI {
	t.Helper()
	api := testutil.NewLambdaAPI(t, functionARN)
	startProcess(t, "Lambda", task, environ("LAMBDA_TASK_ROOT="+task, "LD_LIBRARY_PATH="+filepath.Join(task, "lib"),
		"AWS_LAMBDA_FUNCTION_NAME=iris", "AWS_LAMBDA_RUNTIME_API="+api.Addr()))
	return api
}
