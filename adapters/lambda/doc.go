// Package lambda is the AWS Lambda carrier: it turns a Lambda invocation into
// a functions.Request for the engine and the engine's functions.Response back
// into what the invoking service expects. It is built on
// github.com/aws/aws-lambda-go (the Runtime API client) and nothing else from
// AWS, so a function binary stays small.
//
// # Event shapes
//
// The shape is detected from the payload, once per invocation:
//
//   - function URL and API Gateway HTTP API, payload format 2.0
//     ("version": "2.0" with requestContext.http.method). A function URL is
//     told apart by its domain (*.lambda-url.*), which only matters for
//     response streaming;
//   - API Gateway REST API and HTTP API payload format 1.0 (httpMethod with a
//     requestContext);
//   - Application Load Balancer target groups (requestContext.elb), with or
//     without multi-value headers;
//   - anything else is a direct invoke (lambda:Invoke, Step Functions, a
//     test event): the payload itself is the prediction body.
//
// A direct-invoke payload that happens to look like one of the HTTP events
// above is taken for that event.
//
// # Request mapping
//
// The functions.Request is the one the HTTP carrier builds for the same HTTP
// request, with Carrier set to functions.CarrierLambda:
//
//   - Method: requestContext.http.method (2.0) or httpMethod.
//   - Path, the path after the function's root: for a greedy route
//     ({proxy+}) "/" plus the proxy path parameter; otherwise rawPath (2.0)
//     or path, with an HTTP API's named stage ("/prod") removed: an HTTP
//     API puts the stage in the path in both payload formats (a 1.0 event
//     says "version": "1.0"), a REST API never does. Raw paths (2.0, ALB)
//     are percent-decoded once, as net/http decodes URL.Path.
//   - Query: url.ParseQuery of rawQueryString (2.0); the (multi-value) query
//     parameters for REST (already decoded by API Gateway); for ALB, which
//     does not decode them, the parameters are joined back into a raw query
//     and parsed, so "a%20b" and "a+b" arrive as "a b" as over plain HTTP.
//   - Header: canonical keys; multi-value headers when the event has them.
//     Format 2.0 and function URLs join repeated headers with commas before
//     the function sees them: such a header arrives as one comma-joined
//     value, which RFC 9110 makes equivalent. Host is left out, as net/http
//     moves it out of the header map. When the event carries cookies[] and
//     no Cookie header, Cookie is rebuilt as "a=1; b=2".
//   - Body: base64-decoded when isBase64Encoded; nil when empty. A body over
//     Engine.MaxBody (by default Lambda's 6 MB buffered limit) is a 413.
//   - ContentType: the Content-Type header.
//   - ID: the X-Request-Id header, else the Lambda request id, else the
//     event's requestContext.requestId.
//   - Model: the ?model= query parameter, as over HTTP.
//   - Attributes: "lambda-request-id", "lambda-function-arn" and
//     "lambda-event" (function-url, apigw-v2, apigw-v1, alb or direct).
//
// A direct invoke becomes POST /predict with Content-Type application/json
// and the payload, byte for byte, as the body: a payload that is not one
// JSON document (malformed, empty, trailing data) reaches the engine like
// any other and gets the 400 the HTTP carrier gives the same body. Start
// (and aws-lambda-go running a HandlerFunc, which is a lambda.Handler) hands
// the carrier the payload as it came; see Response streaming for the one
// exception.
//
// # Routes
//
// An HTTP event is routed by method and path as the HTTP carrier routes
// the same request (adapters.Route, adapters.ServiceRoute), so a function
// behind API Gateway, an ALB or a function URL has the routes it has over
// plain HTTP: GET /healthz, /readyz and /metrics, the Open Inference
// Protocol's /v2, /v2/health/* and /v2/models/{name}[/versions/{v}][/ready],
// and KServe V1's GET /v1/models/{name} are answered by the HTTP carrier's
// own handler (WithRoutes; runtime.Main gives it the function's, with
// /metrics), with the same status, headers and body; an ALB health check
// pointed at /healthz or /readyz works. Every other path is a prediction:
// /predict, /, the OIP and V1 inference routes, and, unlike over plain HTTP
// where it is a 404, any path a mount gives the function (an API Gateway
// resource, an ALB rule), which is the function's own route. A prediction
// takes POST only: another method is answered 405 with Allow: POST, as over
// HTTP, and never reaches the predictor. Mount the function at a root or
// behind a greedy {proxy+} route to reach the service routes.
//
// # Response mapping
//
// The response goes back in the shape of the event: statusCode, headers and
// cookies[] (every Set-Cookie) for format 2.0 and function URLs;
// multiValueHeaders for REST; statusDescription ("200 OK") for ALB, with
// multiValueHeaders when the request came with them and headers otherwise
// (an ALB in single-value mode can carry one Set-Cookie only: the first is
// sent). The body is sent as text when its Content-Type is textual (text/*,
// JSON, XML, YAML, form, JavaScript, or any type with a charset) and it is
// valid UTF-8, otherwise base64-encoded with isBase64Encoded. A response
// without a Content-Type gets the one http.DetectContentType finds, as over
// HTTP. Every response carries X-Request-Id.
//
// A buffered response over Lambda's 6 MB payload limit (1 MB for ALB),
// counted once encoded, is replaced by a 413 that says so, rather than left
// to fail in Lambda with a bare 502.
//
// A direct invoke answers the response body itself: as it is when it is
// JSON, as a JSON string when it is other UTF-8 text, and as a base64 JSON
// string otherwise. An error, or a response with a status of 400 or more, is
// a Lambda function error whose errorType names the status in words
// ("BadRequest", "TooManyRequests", "GatewayTimeout") and whose errorMessage
// starts with the number ("429 Too Many Requests: ..."), so Step Functions
// Retry/Catch rules can match it.
//
// # Response streaming
//
// A function URL whose InvokeMode is RESPONSE_STREAM cannot be told apart
// from a buffered one by its events, so streaming is switched on by the
// deployment: $CORTEX_LAMBDA_INVOKE_MODE=RESPONSE_STREAM, or
// WithResponseStreaming. Function-URL events are then answered with
// events.LambdaFunctionURLStreamingResponse (raw body, never base64), up to
// Lambda's 200 MB streaming limit; other events stay buffered. aws-lambda-go
// streams only the result of a handler function, whose argument it decodes
// as JSON first: in this mode a direct invoke's payload that is not one
// JSON document gets aws-lambda-go's own error (errorType SyntaxError)
// rather than the function's 400, and only its first JSON value is read.
//
// A streamed prediction (a functions.Streamer predictor, a caller that asks
// for a stream: Accept: text/event-stream or "stream": true) is streamed
// through a function URL in this mode as it is produced: the result is
// handed to aws-lambda-go when the stream opens, and the predictor's
// chunks are written into it as they come (server-sent events, or the
// chunks themselves for another Accept; see adapters.WantsStream). A
// failure midway is an "error" event, or, for raw chunks, an error in the
// post's trailers, which Lambda turns into a cut response. In BUFFERED
// mode, and for events that cannot stream (API Gateway, an ALB), a caller
// that asks for server-sent events gets them all in one body, as the HTTP
// carrier would send them over time, so every carrier answers alike; one
// that asks for the raw chunks gets the whole answer.
//
// Buffered results are posted to the Runtime API as
// application/octet-stream (aws-lambda-go's type for a lambda.Handler's
// result); Lambda reads a buffered result the same whatever its type.
//
// # Deadlines and errors
//
// The invocation's deadline (Lambda-Runtime-Deadline-Ms) is the request's
// deadline, less a reserve of a tenth of the time left, at most 100 ms, so a
// prediction that runs out of time is answered with the engine's 504 before
// Lambda kills the invocation. Start reports an engine that cannot become
// ready to the Runtime API's init/error endpoint before returning, so Lambda
// logs the cause instead of timing the invocation out.
package lambda
