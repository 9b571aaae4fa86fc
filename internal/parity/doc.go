// Package parity holds the carrier-parity test: one table of requests to a
// real function, sent over every carrier a function binary serves, whose
// answers must agree. It has no code of its own; the test is the package.
//
// # What it proves
//
// The same packaged function, the iris sample (samples/iris, a real ONNX
// model) packaged by packager.Package and run from its unzipped Lambda zip,
// answers every row of the table alike over
//
//   - plain HTTP ($PORT),
//   - every Lambda HTTP event shape: a function URL, an API Gateway HTTP
//     API (payload 2.0) and REST API (payload 1.0) on a named stage, an
//     ALB target group in single- and in multi-value header mode, each
//     built from the real event aws-lambda-go captured for that shape,
//     posted to a Runtime API server in the test (internal/testutil's
//     LambdaAPI) and read back from the shape's response,
//   - CloudEvents in binary mode (ce-* headers, the body as data) and in
//     structured mode (application/cloudevents+json, the data in the
//     envelope), as Knative Eventing delivers them,
//
// where "alike" is: the same status, the same error text ({"error": ...})
// and, for a success, the same JSON body (numbers to a tolerance), the same
// Content-Type and Allow. The rows cover every route and method a
// function serves, good bodies and bad ones (malformed, truncated, empty,
// over the function's limit and over Lambda's, wrong shape, wrong
// datatype, unknown model, unknown route, wrong content type).
//
// Plain HTTP is the reference. Where a carrier's own rules make its answer
// differ, the row says so for that carrier, with the rule: a CloudEvent
// reply carries the prediction as its data; Knative Eventing retries 404,
// so an event for an unknown model is answered 422; Lambda and CloudEvents
// take a path the HTTP carrier answers 404 as the function's own route; a
// structured CloudEvent's request body is its envelope. Where a front end
// in front of the function (Lambda's 6 MB payload limit, an ALB's 1 MB body
// limit) would answer before the function does, the row says that too;
// the function's own answer, checked here, is the one it gives should the
// front end let the request through.
//
// # What it runs
//
// One packaging of samples/iris and two processes of its bootstrap: an
// HTTP server (for the HTTP and CloudEvents columns) and a Lambda runtime
// under the Runtime API double (for the Lambda columns). Real Lambda, API
// Gateway, ALBs and Knative cannot run here: the events are the captured
// ones with the row's method, path, query, headers and body, and the
// CloudEvents are what Knative's broker posts. Requests go one at a time;
// nothing is timed. The test is skipped with -short.
package parity
