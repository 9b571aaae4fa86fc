// Package functions is the SDK a Cortex function author imports.
//
// A predictor is just a type with two jobs: initialise a model and serve a
// prediction. The only required method is Predict:
//
//	type Predictor interface {
//		Predict(ctx context.Context, req *Request) (*Response, error)
//	}
//
// Optional capabilities are separate one-method interfaces that the runtime
// finds by type assertion: [Initializer] (load the model once, before the
// function reports ready), [Closer] (release it on shutdown) and
// [BatchPredictor] (serve a gathered batch in one call) and [Streamer]
// (send the output as it is produced: tokens, frames; [TypedStream] turns
// a function that yields values into one). A predictor that
// serves named models, or publishes the tensors they take, implements
// Catalog from package functions/oip as well.
//
// A prediction is just a request: the body, query and headers arrive as the
// caller sent them, whatever carried them (plain HTTP, a Lambda event or a
// CloudEvent), and the predictor may answer with any status, content type and
// body. An error that carries a status ([Error], built with [Errorf]) reaches
// the caller with that status and a JSON body {"error": "..."}; any other
// error becomes a 500 whose detail goes to the log, not to the caller.
//
// A predictor says what its route takes and answers with a [Schema] (it is
// a [SchemaProvider]); [Typed] derives one from its Go types and holds every
// request to it, answering a body that fails it with a 422 that lists every
// failing field ([Error.Fields], sent as the error body's "fields").
//
// Beside the standard library, this package imports two JSON Schema
// libraries, and only for that: github.com/invopop/jsonschema, which
// reflects a schema from Go types, and github.com/santhosh-tekuri/jsonschema,
// which validates a body against it (with golang.org/x/text, which it
// words its errors with). The entry point that serves a predictor lives in package
// github.com/cortexfn/cortex/runtime (runtime.Main), because it needs the
// runtime and the carriers.
package functions
