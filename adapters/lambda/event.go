package lambda

import (
	"encoding/json"
	"net/http"
	"strings"
)

// shape is the kind of event a Lambda payload carries.
type shape uint8

// The event shapes the carrier understands.
const (
	// shapeDirect is a payload that is the prediction body itself.
	shapeDirect shape = iota
	// shapeURL is a Lambda function URL event (payload format 2.0).
	shapeURL
	// shapeV2 is an API Gateway HTTP API event, payload format 2.0.
	shapeV2
	// shapeV1 is an API Gateway REST API event, or an HTTP API event in
	// payload format 1.0.
	shapeV1
	// shapeALB is an Application Load Balancer target group event.
	shapeALB
)

var shapeNames = [...]string{
	shapeDirect: "direct",
	shapeURL:    "function-url",
	shapeV2:     "apigw-v2",
	shapeV1:     "apigw-v1",
	shapeALB:    "alb",
}

func (s shape) String() string {
	if int(s) < len(shapeNames) {
		return shapeNames[s]
	}
	return "unknown"
}

// event is the union of the HTTP event shapes: the fields of the function
// URL, API Gateway v1/v2 and ALB events do not conflict, so one decode reads
// whichever arrived and detection looks at what is set.
type event struct {
	Version                         string              `json:"version"`
	Resource                        string              `json:"resource"`
	Path                            string              `json:"path"`
	HTTPMethod                      string              `json:"httpMethod"`
	RawPath                         string              `json:"rawPath"`
	RawQueryString                  string              `json:"rawQueryString"`
	Cookies                         []string            `json:"cookies"`
	Headers                         map[string]string   `json:"headers"`
	MultiValueHeaders               map[string][]string `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string   `json:"queryStringParameters"`
	MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters"`
	PathParameters                  map[string]string   `json:"pathParameters"`
	RequestContext                  *requestContext     `json:"requestContext"`
	Body                            string              `json:"body"`
	IsBase64Encoded                 bool                `json:"isBase64Encoded"`

	// answerHeader holds headers every answer to the event carries: those
	// the gate set when it let the request through (see WithGate).
	answerHeader http.Header
}

type requestContext struct {
	RequestID  string `json:"requestId"`
	DomainName string `json:"domainName"`
	Stage      string `json:"stage"`
	HTTPMethod string `json:"httpMethod"`
	HTTP       struct {
		Method string `json:"method"`
		Path   string `json:"path"`
	} `json:"http"`
	ELB *struct {
		TargetGroupArn string `json:"targetGroupArn"`
	} `json:"elb"`
}

// decode reads payload as an HTTP event and tells which shape it is. A
// payload that is not a JSON object of one of the known shapes, or that does
// not decode as one, is a direct invoke.
func decode(payload []byte) (*event, shape) {
	p := skipSpace(payload)
	if len(p) == 0 || p[0] != '{' {
		return nil, shapeDirect
	}
	ev := new(event)
	if err := json.Unmarshal(p, ev); err != nil || ev.RequestContext == nil {
		return nil, shapeDirect
	}
	rc := ev.RequestContext
	switch {
	case rc.ELB != nil && ev.HTTPMethod != "":
		return ev, shapeALB
	case ev.Version == "2.0" && rc.HTTP.Method != "":
		if strings.Contains(rc.DomainName, ".lambda-url.") {
			return ev, shapeURL
		}
		return ev, shapeV2
	case ev.HTTPMethod != "":
		return ev, shapeV1
	}
	return nil, shapeDirect
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
