// Package knative adds CloudEvents, as Knative Eventing delivers them, to a
// function's HTTP server: Wrap serves every CloudEvent with the engine and
// hands any other request to the plain HTTP handler.
//
// # Requests
//
// A POST is a CloudEvent when it is in binary mode (a Ce-Specversion
// header; the body is the data and Content-Type its datacontenttype) or in
// structured mode (Content-Type application/cloudevents+json; the whole
// event is the body). Any other request, such as one without Ce-Specversion
// whose Content-Type is not application/cloudevents..., is plain HTTP: it
// goes to the next handler unchanged, with the HTTP carrier's routes and
// answers. A CloudEvent is a prediction whatever its path: the event's data
// is the body, and the request the predictor sees is the one the HTTP
// carrier builds for the same HTTP request (method, path, query, headers,
// ?model=), with Carrier functions.CarrierCloudEvent, ContentType the
// event's datacontenttype (also set as the Content-Type header in
// structured mode) and Attributes holding every context attribute and
// extension as "ce-<name>" ("ce-id", "ce-type", "ce-source", "ce-subject",
// "ce-time", ...), the time in RFC 3339.
//
// Batches (application/cloudevents-batch+json) are refused with 400 Bad
// Request, which Knative Eventing does not retry: it delivers events one at
// a time, and a batch reply has no standard shape. Structured formats other
// than JSON are refused with 415. The data is bounded by Engine.MaxBody
// like an HTTP body (413); a structured envelope may be a third larger, for
// base64 data.
//
// # Replies
//
// A prediction is answered with 200 and a reply CloudEvent in the mode of
// the request: type "<in-type>.prediction", source the function ($K_SERVICE,
// else the engine's name, or WithSource), subject the incoming subject, the
// same specversion, the prediction's Content-Type as datacontenttype and
// its body as data. The reply's id is derived from the incoming source and
// id, so a redelivered event (Knative delivers at least once) gets the same
// reply id and consumers can drop the duplicate; the prediction itself is
// pure. An empty prediction, or a request with "Prefer: return=minimal",
// is answered 202 without an event.
//
// # Errors
//
// Errors are {"error": "..."} bodies, as on every carrier, with a status
// chosen for Knative Eventing's retries: 5xx and 429 are retried, other 4xx
// are not. Knative also retries 404, 408 and 409, which for a prediction
// mean a permanent problem (an unknown model, say), so those become 422.
//
// Every answer to a CloudEvent, error or not, carries X-Request-Id: the
// caller's, else the id the engine gave the request, else (for an event
// refused before it reaches the engine) a new one.
package knative
