// Package oip holds the Open Inference Protocol v2 (KServe V2, Triton) types
// and a codec for them, plus the conversion from and to the KServe V1
// protocol.
//
// A request's tensors are decoded straight into typed Go slices: the data of
// an FP32 input becomes a []float32, that of an INT64 input an []int64, and
// so on, with no []any in between. [DecodeRequest] checks what a model
// server must not trust: datatype names, negative dimensions, that the
// number of elements matches the shape, that each value fits its datatype
// (300 is not a UINT8) and a bound on the total number of elements. Every
// problem is a 400 [functions.Error] that names the input and says what was
// expected and what came: the request is not a well-formed inference
// request, whatever model it is for.
//
// The data of a tensor may be sent flat or nested in row-major order; both
// decode to the same flat slice. A nested array must be regular (not
// ragged).
//
// Go types per datatype: BOOL []bool, UINT8..UINT64 []uint8..[]uint64,
// INT8..INT64 []int8..[]int64, FP32 []float32, FP64 []float64, BYTES
// []string. FP16 and BF16 values are carried as []float32 (checked against
// their narrower range); converting them to their bit patterns is left to
// whoever hands them to a model.
//
// JSON cannot carry NaN or infinities: an output that holds one encodes it
// as null.
//
// A request that decodes can still not fit the model it is for: an input
// the model does not have, a datatype or shape other than the model's, an
// input left out, an output the model does not have. [CheckRequest] finds
// every such misfit at once, against the model's [ModelMetadata], and
// answers one 422 that lists them with their JSON paths
// ($.inputs[0].shape: [1,3] does not match the model's [-1,4]), in Go and
// without allocating, for the hot path. [RequestSchema] and
// [ResponseSchema] give the same model's request and response as JSON
// Schemas, for documents and forms.
//
// A predictor that serves named models, or describes its tensors,
// implements [Catalog]; the runtime checks every request's model against
// it and converts KServe V1 requests with the inputs it describes.
//
// This package imports only the standard library and package functions, so
// a Go predictor can use it at no extra cost.
package oip
