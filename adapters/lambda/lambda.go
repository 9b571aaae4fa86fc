package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/cortexfn/cortex/adapters"
	httpadapter "github.com/cortexfn/cortex/adapters/http"
	"github.com/cortexfn/cortex/functions"
)

// Environment variables the carrier reads.
const (
	// EnvRuntimeAPI is set by Lambda to the Runtime API's host:port.
	EnvRuntimeAPI = "AWS_LAMBDA_RUNTIME_API"
	// EnvInvokeMode is the function URL's InvokeMode as deployed:
	// BUFFERED (the default) or RESPONSE_STREAM.
	EnvInvokeMode = "CORTEX_LAMBDA_INVOKE_MODE"
)

// ErrNoRuntimeAPI is returned by Start outside Lambda.
var ErrNoRuntimeAPI = errors.New("lambda: " + EnvRuntimeAPI + " is not set: not running in AWS Lambda")

// DefaultInitTimeout is how long Start waits for the engine to become
// ready: Lambda's init phase limit.
const DefaultInitTimeout = 10 * time.Second

// Option configures Handler and Start.
type Option func(*options) error

type options struct {
	stream      bool
	initTimeout time.Duration
	routes      http.Handler
	gate        func(http.Handler) http.Handler
	pages       bool
}

// WithResponseStreaming says whether the function URL invokes the function
// with InvokeMode RESPONSE_STREAM; it overrides $CORTEX_LAMBDA_INVOKE_MODE.
func WithResponseStreaming(on bool) Option {
	return func(o *options) error { o.stream = on; return nil }
}

// WithInitTimeout sets how long Start waits for the engine to become ready
// before it reports an init error (default DefaultInitTimeout).
func WithInitTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("lambda: init timeout must be positive, got %s", d)
		}
		o.initTimeout = d
		return nil
	}
}

// WithRoutes sets the handler that answers the service routes
// (adapters.ServiceRoute: health, readiness, metrics, the OIP and KServe V1
// metadata routes). Give the one the function serves over plain HTTP, so
// that both carriers answer alike; runtime.Main does. The default is
// adapters/http's handler for the engine, without /metrics and without
// compression.
func WithRoutes(h http.Handler) Option {
	return func(o *options) error {
		if h == nil {
			return errors.New("lambda: WithRoutes needs a handler")
		}
		o.routes = h
		return nil
	}
}

// WithPages has the routes handler (WithRoutes) serve the function's page:
// a request to one of its paths (adapters/http.PagePath) but a POST to /
// goes to it, rather than being a prediction route that takes POST only.
// Give it only with a routes handler that serves the page (the default
// one does); runtime.Main does when targets.lambda.pages is set.
func WithPages() Option {
	return func(o *options) error { o.pages = true; return nil }
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{initTimeout: DefaultInitTimeout}
	switch m := os.Getenv(EnvInvokeMode); strings.ToUpper(m) {
	case "", "BUFFERED":
	case "RESPONSE_STREAM":
		o.stream = true
	default:
		return nil, fmt.Errorf("lambda: %s=%q: use BUFFERED or RESPONSE_STREAM", EnvInvokeMode, m)
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// HandlerFunc serves one invocation: payload is the invocation's payload
// as it came, whatever its bytes. Its result is the encoded invocation
// result: aws-lambda-go sends it as it is (it does not encode it as JSON
// again), with the Content-Type the reader names. A returned error is a
// function error, and only a direct invoke returns one.
type HandlerFunc func(ctx context.Context, payload json.RawMessage) (io.Reader, error)

// Invoke makes a HandlerFunc an aws-lambda-go lambda.Handler, the one kind
// of handler aws-lambda-go hands the payload unchanged: a handler function
// gets its argument decoded as JSON first, so a payload that is not one
// JSON document would be refused by aws-lambda-go (errorType SyntaxError)
// before the function could answer it with its own 400. The result loses
// the reader's Content-Type (aws-lambda-go sends it as
// application/octet-stream, which buffered invocations ignore), so a
// streamed response must start the HandlerFunc as a function instead; see
// Start.
func (f HandlerFunc) Invoke(ctx context.Context, in []byte) ([]byte, error) {
	// aws-lambda-go reuses the payload's buffer for the next invocation,
	// and a prediction may outlive its invocation (its deadline answered
	// with a 504 while the predictor still runs): the request keeps a copy.
	out, err := f(ctx, bytes.Clone(in))
	if err != nil {
		return nil, err
	}
	if p, ok := out.(*payload); ok {
		return p.b, nil
	}
	return io.ReadAll(out)
}

// Handler returns the handler that serves e for every event shape (see the
// package documentation), for a main that calls aws-lambda-go's
// lambda.StartWithOptions itself; Start does that and more. Such a main
// passes the HandlerFunc as it is, a lambda.Handler that gets every payload
// unchanged, or, for response streaming, converted to a plain function, as
// Start does. It fails when an option or $CORTEX_LAMBDA_INVOKE_MODE is
// invalid.
func Handler(e adapters.Engine, opts ...Option) (HandlerFunc, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	return newHandler(e, o).invoke, nil
}

type handler struct {
	e adapters.Engine
	o *options
	// gate is o.gate around through, built once; nil without a gate.
	gate http.Handler
}

func newHandler(e adapters.Engine, o *options) *handler {
	if o.routes == nil {
		o.routes = httpadapter.New(e, httpadapter.WithoutCompression())
	}
	h := &handler{e: e, o: o}
	if o.gate != nil {
		h.gate = o.gate(through)
	}
	return h
}

func (h *handler) invoke(ctx context.Context, payload json.RawMessage) (io.Reader, error) {
	var inv invocation
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		inv = invocation{requestID: lc.AwsRequestID, functionARN: lc.InvokedFunctionArn}
	}
	ctx, cancel := withReserve(ctx)
	handedOver := false // to a stream, which cancels when it ends
	defer func() {
		if !handedOver {
			cancel()
		}
	}()

	ev, s := decode(payload)
	if s == shapeDirect {
		req := directRequest(payload, inv)
		if max := h.e.MaxBody(); int64(len(req.Body)) > max {
			return encodeDirect(nil, adapters.TooLarge(int64(len(req.Body)), max))
		}
		return encodeDirect(h.call(ctx, req))
	}
	req, bodyErr := ev.request(s, inv, h.e.MaxBody())
	// The gate comes first, before the body matters: a caller without
	// the token gets its 401 whatever it sent, as over HTTP.
	answer, extra := h.gated(ctx, req)
	if answer != nil {
		return encodeHTTP(s, ev, answer, req.ID, h.o.stream)
	}
	ev.answerHeader = extra
	if se, stream, sse := h.streamable(s, req, bodyErr); stream {
		handedOver = true
		return h.stream(ctx, cancel, ev, req, se, sse)
	}
	if se, ok := h.bufferedSSE(s, req, bodyErr); ok {
		return h.collectSSE(ctx, s, ev, req, se)
	}
	resp, err := h.serve(ctx, req, bodyErr)
	if err != nil {
		resp = adapters.ErrorResponse(err, req.ID)
	}
	return encodeHTTP(s, ev, resp, req.ID, h.o.stream)
}

// call invokes the engine. Engine.Invoke never panics; the recover is a
// second line so that a bug answers 500 instead of taking the execution
// environment down.
func (h *handler) call(ctx context.Context, req *functions.Request) (resp *functions.Response, err error) {
	defer func() {
		if v := recover(); v != nil {
			resp, err = nil, &functions.Error{Status: http.StatusInternalServerError,
				Message: "internal error (request id " + req.ID + ")", Err: fmt.Errorf("engine panicked: %v", v)}
		}
	}()
	resp, err = h.e.Invoke(ctx, req)
	if err == nil && resp == nil {
		resp = &functions.Response{Status: http.StatusNoContent}
	}
	return resp, err
}

// withReserve shortens the invocation's deadline by a tenth of the time
// left, at most 100 ms, so that the engine's 504 is sent before Lambda ends
// the invocation.
func withReserve(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve := min(time.Until(d)/10, 100*time.Millisecond)
	return context.WithDeadline(ctx, d.Add(-max(reserve, 0)))
}

// Start serves e on the Lambda Runtime API named by $AWS_LAMBDA_RUNTIME_API.
// It first waits (up to WithInitTimeout) for e to be ready; an engine that
// does not become ready, or that reports an init error through an
// InitError() error method, is reported to Lambda with ReportInitError and
// the error returned. Once the invoke loop runs, Start does not return:
// aws-lambda-go exits the process when the loop fails, and Lambda starts a
// new execution environment.
func Start(e adapters.Engine, opts ...Option) error {
	api := os.Getenv(EnvRuntimeAPI)
	if api == "" {
		return ErrNoRuntimeAPI
	}
	o, err := makeOptions(opts)
	if err != nil {
		return reportInit(api, err)
	}
	if err := waitReady(e, o.initTimeout); err != nil {
		return reportInit(api, err)
	}
	h := HandlerFunc(newHandler(e, o).invoke)
	if o.stream {
		// aws-lambda-go streams only a result it gets as a reader that
		// names its Content-Type, which a lambda.Handler cannot return: a
		// streaming function is started as a function, and a direct
		// invoke's payload that is not JSON then gets aws-lambda-go's own
		// decoding error.
		awslambda.StartWithOptions((func(context.Context, json.RawMessage) (io.Reader, error))(h))
	} else {
		awslambda.StartWithOptions(h) // the payload as it came: see HandlerFunc.Invoke
	}
	return errors.New("lambda: the runtime loop ended") // not reached: StartWithOptions exits
}

type initErrorer interface{ InitError() error }

func waitReady(e adapters.Engine, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !e.Ready() {
		if ie, ok := e.(initErrorer); ok {
			if err := ie.InitError(); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("function %q did not become ready within %s", e.Name(), timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func reportInit(api string, err error) error {
	if rerr := postInitError(api, err); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// ReportInitError tells the Lambda Runtime API that the function failed to
// initialise (POST /2018-06-01/runtime/init/error), so Lambda logs err and
// fails the pending invocation at once instead of letting it time out. Call
// it before exiting when the predictor's Init fails; Start calls it itself.
func ReportInitError(err error) error {
	api := os.Getenv(EnvRuntimeAPI)
	if api == "" {
		return ErrNoRuntimeAPI
	}
	return postInitError(api, err)
}

const initErrorType = "InitError"

func postInitError(api string, err error) error {
	body, _ := json.Marshal(struct {
		Message string `json:"errorMessage"`
		Type    string `json:"errorType"`
	}{err.Error(), initErrorType})
	req, rerr := http.NewRequest(http.MethodPost, "http://"+api+"/2018-06-01/runtime/init/error", bytes.NewReader(body))
	if rerr != nil {
		return fmt.Errorf("lambda: reporting the init error: %w", rerr)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Lambda-Runtime-Function-Error-Type", initErrorType)
	// The Runtime API is link-local: never through a proxy.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	resp, rerr := client.Do(req)
	if rerr != nil {
		return fmt.Errorf("lambda: reporting the init error: %w", rerr)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("lambda: reporting the init error: the Runtime API answered %s", resp.Status)
	}
	return nil
}

var _ awslambda.Handler = HandlerFunc(nil)
