// Package openapicheck holds the tests that validate the OpenAPI documents
// a function serves at /openapi.json (adapters/http.OpenAPI) with real
// OpenAPI tooling: the document against the OpenAPI 3.1 specification's
// schema (libopenapi-validator), every schema in it against JSON Schema
// 2020-12 with its references resolved, and real requests and answers of
// the HTTP carrier against the document.
//
// It is a tool-side package of tests only: the validators are heavy, and
// a function binary must not depend on them (see internal/depcheck), so
// they are kept out of the SDK's packages and their tests, whose
// dependencies would land in sdk.mod.
package openapicheck
