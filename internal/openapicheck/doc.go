// Package openapicheck holds the tests that validate the OpenAPI documents
// a function serves at /openapi.json (adapters/http.OpenAPI) with real
// OpenAPI tooling: the document as OpenAPI 3.1 with kin-openapi (every
// reference resolved, unknown fields refused) and against the OpenAPI 3.1
// specification's published JSON Schema (testdata/oas31-schema.json), every
// schema in it against JSON Schema 2020-12 with its references resolved,
// and real requests and answers of the HTTP carrier against the document
// (kin-openapi's openapi3filter).
//
// It is a tool-side package of tests only: the validators are heavy, and
// a function binary must not depend on them (see internal/depcheck), so
// they are kept out of the SDK's packages and their tests, whose
// dependencies would land in sdk.mod. kin-openapi replaced libopenapi and
// libopenapi-validator here because those took about half of the module's
// cold -race compile time for this one package (issue 17).
package openapicheck
