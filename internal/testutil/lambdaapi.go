package testutil

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// LambdaAPI is a test double of the AWS Lambda Runtime API
// (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), the
// HTTP API a custom runtime's bootstrap polls for invocations. Real Lambda
// cannot run in a test (its Runtime API exists only inside the Lambda
// service's sandbox, and the runtime interface emulator is a separate
// download), so this hand-written double stands in for it: the function
// process under test is real, with aws-lambda-go's own Runtime API client,
// and only the service around it is played here.
//
// It serves one function process: GET invocation/next hands out the
// invocations queued by Invoke with the Lambda-Runtime-* headers Lambda
// sets, POST invocation/{id}/response and .../error record the outcome and
// answer 202, POST init/error records an init failure. Like Lambda, it
// refuses a buffered response over 6 MB with 413 (recorded as
// LambdaRejected); a streamed response (content type
// application/vnd.awslambda.http-integration-response) is taken whole.
// What Lambda's front ends (function URLs, API Gateway, ALB, the Invoke
// API) do before an invocation reaches the Runtime API, such as refusing a
// request over 6 MB, is not played: Invoke hands over whatever it is given.
type LambdaAPI struct {
	srv     *httptest.Server
	arn     string
	next    chan LambdaInvocation
	results chan LambdaResult

	// ReadStream, when set, reads the body of a streamed response (the
	// Runtime API's streaming mode: a chunked POST) in place of
	// io.ReadAll, as it arrives: a test can see a stream's first bytes
	// before the function has written the rest. Set it before the first
	// invocation.
	ReadStream func(body io.Reader) ([]byte, error)
}

// LambdaInvocation is one invocation as the Runtime API hands it out.
type LambdaInvocation struct {
	// ID is the request id (Lambda-Runtime-Aws-Request-Id).
	ID string
	// Payload is the event, as the invoking service sends it.
	Payload []byte
	// Deadline is sent as Lambda-Runtime-Deadline-Ms.
	Deadline time.Time
}

// LambdaOutcome says what the function posted to the Runtime API.
type LambdaOutcome string

// The outcomes LambdaAPI records.
const (
	// LambdaResponse is a result posted to invocation/{id}/response.
	LambdaResponse LambdaOutcome = "response"
	// LambdaError is a function error posted to invocation/{id}/error.
	LambdaError LambdaOutcome = "error"
	// LambdaInitError is an error posted to init/error.
	LambdaInitError LambdaOutcome = "init-error"
	// LambdaRejected is a buffered response over 6 MB, which Lambda
	// refuses with 413 (the invocation then fails in Lambda).
	LambdaRejected LambdaOutcome = "rejected"
)

// LambdaResult is what the function posted for an invocation, or at init.
type LambdaResult struct {
	Kind LambdaOutcome
	// ID is the invocation's request id; empty for LambdaInitError.
	ID     string
	Header http.Header
	Body   []byte
	// Trailer holds the post's trailers: a streamed response that failed
	// after it began reports its error there
	// (Lambda-Runtime-Function-Error-Type and -Body).
	Trailer http.Header
	// At is when the post arrived.
	At time.Time
}

const runtimeAPIPrefix = "/2018-06-01/runtime/"

// lambdaMaxResponse is Lambda's limit on a buffered response.
const lambdaMaxResponse = 6 << 20

// NewLambdaAPI starts a Runtime API double that reports functionARN as the
// invoked function's ARN (Lambda-Runtime-Invoked-Function-Arn). It stops
// when the test ends.
func NewLambdaAPI(t testing.TB, functionARN string) *LambdaAPI {
	f := &LambdaAPI{arn: functionARN, next: make(chan LambdaInvocation), results: make(chan LambdaResult, 16)}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// Addr is the value for $AWS_LAMBDA_RUNTIME_API: host and port, no scheme.
func (f *LambdaAPI) Addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

// Results delivers outcomes that no Invoke waits for, such as an init
// error posted before the first invocation.
func (f *LambdaAPI) Results() <-chan LambdaResult { return f.results }

func (f *LambdaAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, runtimeAPIPrefix)
	switch {
	case ok && r.Method == http.MethodGet && path == "invocation/next":
		select {
		case inv := <-f.next:
			h := w.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", inv.ID)
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.Deadline.UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", f.arn)
			h.Set("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1")
			h.Set("Content-Type", "application/json")
			_, _ = w.Write(inv.Payload)
		case <-r.Context().Done():
		}
	case ok && r.Method == http.MethodPost && path == "init/error":
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"OK"}`)
		f.results <- LambdaResult{Kind: LambdaInitError, Header: r.Header, Body: body, At: time.Now()}
	case ok && r.Method == http.MethodPost && strings.HasPrefix(path, "invocation/"):
		id, kind, _ := strings.Cut(strings.TrimPrefix(path, "invocation/"), "/")
		if kind != "response" && kind != "error" {
			http.NotFound(w, r)
			return
		}
		outcome := LambdaOutcome(kind)
		streaming := r.Header.Get("Content-Type") == "application/vnd.awslambda.http-integration-response"
		read := io.ReadAll
		if streaming && f.ReadStream != nil {
			read = f.ReadStream
		}
		body, _ := read(r.Body)
		_, _ = io.Copy(io.Discard, r.Body) // to the end, for the trailers
		if outcome == LambdaResponse && !streaming && len(body) > lambdaMaxResponse {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			_, _ = io.WriteString(w, `{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}`)
			outcome = LambdaRejected
		} else {
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"status":"OK"}`)
		}
		f.results <- LambdaResult{Kind: outcome, ID: id, Header: r.Header, Body: body, Trailer: r.Trailer, At: time.Now()}
	default:
		http.NotFound(w, r)
	}
}

// Invoke queues one invocation with request id id and the given time to
// its deadline, and waits for its outcome. The test fails if the function
// does not ask for it, or does not answer, within 30 seconds, or posts
// anything else first.
func (f *LambdaAPI) Invoke(t testing.TB, id string, payload []byte, timeout time.Duration) (LambdaInvocation, LambdaResult) {
	t.Helper()
	inv := LambdaInvocation{ID: id, Payload: payload, Deadline: time.Now().Add(timeout)}
	select {
	case f.next <- inv:
	case res := <-f.results: // an init error, before any invocation
		t.Fatalf("invocation %s: the function sent a %s before asking for it: %s", id, res.Kind, res.Body)
	case <-time.After(30 * time.Second):
		t.Fatalf("invocation %s: the function did not ask for it", id)
	}
	select {
	case res := <-f.results:
		if res.ID != id {
			t.Fatalf("got the outcome of %q (%s), want %q", res.ID, res.Kind, id)
		}
		return inv, res
	case <-time.After(30 * time.Second):
		t.Fatalf("invocation %s: no outcome", id)
	}
	panic("unreachable")
}

var _ http.Handler = (*LambdaAPI)(nil)
