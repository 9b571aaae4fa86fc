package lambda

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/functions"
)

// Lambda's payload limits.
const (
	// MaxBufferedResponse is the largest buffered response payload Lambda
	// accepts (6 MB), counted once encoded as the invocation result.
	MaxBufferedResponse = 6 << 20
	// MaxALBResponse is the largest response an ALB accepts from a Lambda
	// target (1 MB).
	MaxALBResponse = 1 << 20
	// MaxStreamedResponse is Lambda's limit on a streamed response (200 MB).
	MaxStreamedResponse = 200 << 20
)

// payload is an encoded invocation result. aws-lambda-go sends an io.Reader
// result as it is when the value does not encode as JSON itself, with the
// Content-Type its ContentType method names; MarshalJSON fails on purpose
// so that the bytes are not encoded twice.
type payload struct {
	b []byte
	r bytes.Reader
}

func newPayload(b []byte) *payload {
	p := &payload{b: b}
	p.r.Reset(b)
	return p
}

func (p *payload) Read(b []byte) (int, error) { return p.r.Read(b) }

// ContentType is what aws-lambda-go posts the result with.
func (p *payload) ContentType() string { return "application/json" }

// MarshalJSON makes aws-lambda-go send the payload's bytes as they are.
func (p *payload) MarshalJSON() ([]byte, error) { return nil, errRawPayload }

var errRawPayload = errors.New("lambda: payload is sent as it is")

// v2Response is the answer to a function URL or payload 2.0 event
// (events.LambdaFunctionURLResponse, events.APIGatewayV2HTTPResponse).
type v2Response struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers,omitempty"`
	Cookies         []string          `json:"cookies,omitempty"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
}

// v1Response is the answer to a REST API event
// (events.APIGatewayProxyResponse).
type v1Response struct {
	StatusCode        int                 `json:"statusCode"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders,omitempty"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

// albResponse is the answer to an ALB event (events.ALBTargetGroupResponse).
type albResponse struct {
	StatusCode        int                 `json:"statusCode"`
	StatusDescription string              `json:"statusDescription"`
	Headers           map[string]string   `json:"headers,omitempty"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders,omitempty"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

// prepare fills in what every carrier sends: a Content-Type when the
// predictor gave none (as the HTTP carrier does) and X-Request-Id.
func prepare(resp *functions.Response, id string) {
	if resp.Header == nil {
		resp.Header = make(http.Header, 2)
	}
	if len(resp.Body) > 0 && resp.Header.Get("Content-Type") == "" {
		resp.Header.Set("Content-Type", http.DetectContentType(resp.Body))
	}
	if id != "" && resp.Header.Get("X-Request-Id") == "" {
		resp.Header.Set("X-Request-Id", id)
	}
}

// encodeHTTP encodes resp in the shape of the event it answers. A result
// over the limit of its kind is replaced by a 413 that says why.
func encodeHTTP(s shape, ev *event, resp *functions.Response, id string, stream bool) (io.Reader, error) {
	prepare(resp, id)
	addHeaders(resp.Header, ev.answerHeader)
	if stream && s == shapeURL {
		if len(resp.Body) > MaxStreamedResponse {
			resp = tooLargeResponse(int64(len(resp.Body)), MaxStreamedResponse, "streamed", id)
			addHeaders(resp.Header, ev.answerHeader)
		}
		return streamed(resp), nil
	}
	limit := MaxBufferedResponse
	if s == shapeALB {
		limit = MaxALBResponse
	}
	b, err := marshalHTTP(s, ev, resp)
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		tooLarge := tooLargeResponse(int64(len(b)), int64(limit), s.String(), id)
		addHeaders(tooLarge.Header, ev.answerHeader)
		b, err = marshalHTTP(s, ev, tooLarge)
		if err != nil {
			return nil, err
		}
	}
	return newPayload(b), nil
}

func tooLargeResponse(got, limit int64, kind, id string) *functions.Response {
	hint := ""
	if kind == shapeURL.String() || kind == shapeV2.String() || kind == shapeV1.String() {
		hint = "; serve it through a function URL with InvokeMode RESPONSE_STREAM (CORTEX_LAMBDA_INVOKE_MODE=RESPONSE_STREAM) or return less"
	}
	resp := adapters.ErrorResponse(&functions.Error{Status: http.StatusRequestEntityTooLarge,
		Message: fmt.Sprintf("the prediction's response is %d bytes encoded, over Lambda's %d-byte limit for a %s response%s", got, limit, kind, hint)}, id)
	return resp
}

func marshalHTTP(s shape, ev *event, resp *functions.Response) ([]byte, error) {
	status := resp.StatusCode()
	body, b64 := encodeBody(resp)
	switch s {
	case shapeURL, shapeV2:
		out := v2Response{StatusCode: status, Body: body, IsBase64Encoded: b64}
		out.Headers, out.Cookies = v2Headers(resp.Header)
		return json.Marshal(out)
	case shapeV1:
		return json.Marshal(v1Response{StatusCode: status, MultiValueHeaders: resp.Header, Body: body, IsBase64Encoded: b64})
	case shapeALB:
		out := albResponse{
			StatusCode:        status,
			StatusDescription: strconv.Itoa(status) + " " + http.StatusText(status),
			Body:              body,
			IsBase64Encoded:   b64,
		}
		if len(ev.MultiValueHeaders) > 0 {
			out.MultiValueHeaders = resp.Header
		} else if len(resp.Header) > 0 {
			out.Headers = make(map[string]string, len(resp.Header))
			for k, vs := range resp.Header {
				if k == "Set-Cookie" && len(vs) > 0 {
					out.Headers[k] = vs[0] // single-value mode carries one
					continue
				}
				out.Headers[k] = strings.Join(vs, ",")
			}
		}
		return json.Marshal(out)
	}
	return nil, fmt.Errorf("lambda: no response shape for a %s event", s)
}

// encodeBody returns the body as event text: as it is when it is textual
// UTF-8, else base64.
func encodeBody(resp *functions.Response) (string, bool) {
	if len(resp.Body) == 0 {
		return "", false
	}
	if isText(resp.Header.Get("Content-Type")) && utf8.Valid(resp.Body) {
		return string(resp.Body), false
	}
	return base64.StdEncoding.EncodeToString(resp.Body), true
}

// isText reports whether a media type is text that survives a JSON string.
func isText(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	if _, ok := params["charset"]; ok {
		return true
	}
	if strings.HasPrefix(mt, "text/") {
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript", "application/ecmascript",
		"application/x-www-form-urlencoded", "application/yaml", "application/x-yaml",
		"application/x-ndjson", "application/ndjson", "application/graphql", "image/svg+xml":
		return true
	}
	return strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") || strings.HasSuffix(mt, "+yaml")
}

// streamed answers a function URL in RESPONSE_STREAM mode: the status and
// headers go in the prelude and the body follows raw.
func streamed(resp *functions.Response) *events.LambdaFunctionURLStreamingResponse {
	out := &events.LambdaFunctionURLStreamingResponse{
		StatusCode: resp.StatusCode(),
		Body:       bytes.NewReader(resp.Body),
	}
	out.Headers, out.Cookies = v2Headers(resp.Header)
	return out
}

// encodeDirect answers a direct invoke: the body itself, or a function
// error carrying the status.
func encodeDirect(resp *functions.Response, err error) (io.Reader, error) {
	if err != nil {
		e := adapters.ErrorResponse(err, "")
		return nil, invokeError(e.StatusCode(), errorMessage(e.Body))
	}
	status := resp.StatusCode()
	if status >= 400 {
		return nil, invokeError(status, errorMessage(resp.Body))
	}
	var b []byte
	switch {
	case len(resp.Body) == 0:
		b = []byte("null")
	case json.Valid(resp.Body):
		b = resp.Body
	case utf8.Valid(resp.Body):
		b, _ = json.Marshal(string(resp.Body))
	default:
		b, _ = json.Marshal(resp.Body) // a base64 string
	}
	if len(b) > MaxBufferedResponse {
		return nil, invokeError(http.StatusRequestEntityTooLarge, fmt.Sprintf(
			"the prediction's response is %d bytes encoded, over Lambda's %d-byte limit for a buffered response", len(b), MaxBufferedResponse))
	}
	return newPayload(b), nil
}

// errorMessage is the message of an error body: the "error" field of
// {"error": "..."}, else the body as text, cut to 1 KB.
func errorMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	const max = 1 << 10
	if len(body) > max {
		body = body[:max]
	}
	return strings.ToValidUTF8(string(body), "\uFFFD")
}

// invokeError is a Lambda function error that carries an HTTP status:
// errorType is the status text in one word ("TooManyRequests") and
// errorMessage starts with the number ("429 Too Many Requests: ...").
// aws-lambda-go sends a messages.InvokeResponse_Error as it is.
func invokeError(status int, msg string) error {
	text := http.StatusText(status)
	typ := strings.ReplaceAll(text, " ", "")
	typ = strings.ReplaceAll(typ, "-", "")
	if typ == "" {
		typ = "Status" + strconv.Itoa(status)
	}
	m := strconv.Itoa(status)
	if text != "" {
		m += " " + text
	}
	if msg != "" && msg != text {
		m += ": " + msg
	}
	return messages.InvokeResponse_Error{Type: typ, Message: m}
}

// v2Headers splits response headers the way payload format 2.0 (function
// URLs, HTTP APIs) carries them: Set-Cookie in cookies, every other header
// one comma-joined value. Nil for none.
func v2Headers(h http.Header) (headers map[string]string, cookies []string) {
	if len(h) == 0 {
		return nil, nil
	}
	headers = make(map[string]string, len(h))
	for k, vs := range h {
		if k == "Set-Cookie" {
			cookies = vs
			continue
		}
		headers[k] = strings.Join(vs, ",")
	}
	return headers, cookies
}
