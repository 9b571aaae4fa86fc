// Package modelfetch fetches the models a function names by reference
// (predictor.model: oci://, https://, s3://) into the machine's model
// cache when the function starts, and tells the runtime where they are.
//
// The cache is content-addressed and shared by every function process on
// the machine (a directory, $CORTEX_MODEL_CACHE; see DefaultDir): an
// entry is a directory named by the digest of what it holds
// (sha256/HEX/ for a file fetched by digest, oci/sha256/HEX/ for an OCI
// image by its manifest's digest), so a model used by several functions
// or versions is stored once. Starts that need the same entry at the
// same time fetch it once: each takes an flock on the entry's lock file,
// the first fetches, the others wait and find it complete.
//
// Nothing half-written is ever trusted. A fetch writes into a staging
// directory inside the cache, hashes every byte in order as it is written
// (or, for a blob fetched in ranges from the start with WithRanges, in
// one pass afterwards), checks the digest, fsyncs, renames the directory
// into place and writes its completion marker last.
//
// A blob streams in one request; a large one whose request turns out
// slow has the rest of its bytes fetched in parallel ranges (split.go,
// WithRangesWhenSlow), which pay on slow connections and cost on fast
// ones. A directory without the marker (a process
// killed mid-fetch) is removed and fetched again by the next start, and
// staging directories left behind are removed then too.
//
// https:// is built in. Other schemes register a Fetcher (Register): the
// oci and s3 subpackages do in their init, and the generated main of a
// function blank-imports one only when the function's spec names a
// reference of its scheme, so a function without such references links
// neither go-containerregistry nor the AWS SDK (ARCHITECTURE.md,
// Rationale). This package imports only the standard library.
package modelfetch
