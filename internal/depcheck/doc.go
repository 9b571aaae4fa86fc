// Package depcheck holds the test that keeps the dependency rule of
// DESIGN.md true: what goes into a function binary (functions, runtime,
// adapters) never pulls in Kubernetes, Knative, AWS SDK or
// go-containerregistry code (but for the two model fetchers,
// runtime/modelfetch/oci and /s3, which may link exactly
// go-containerregistry and the AWS SDK, and which only a generated main
// whose spec names such a model imports), functions imports only the standard library
// and its JSON Schema libraries (Typed's schemas and 422s: issue 21),
// and the core runtime builds without cgo.
//
// It owns those rules and nothing else; it is a test-only package and
// must not be imported.
package depcheck
