// Package spec reads, defaults and validates cortex.yaml, the one file that
// describes a function, and converts it to the runtime's configuration.
//
// The three steps are separate so that each can be used alone:
//
//	s, err := spec.Parse(data, "cortex.yaml") // YAML -> Spec; types, unknown keys
//	s.SetDefaults()                           // every zero field -> its default
//	err = s.Validate()                        // every problem at once
//
// Load does all three for a function directory and also checks the files
// the spec names (they must exist inside the directory). Every problem is a
// [Problem] with the field path and the line it came from, collected in a
// [*ValidationError], so a user fixes a spec in one round:
//
//	cortex.yaml:7: limits.max_body: "6 MB" is not a size; use a number of bytes or a unit like 6MiB, 512Ki
//	cortex.yaml:9: predictor.modle: unknown key; did you mean "model"?
//
// # Keys
//
// Every key is defined once, in the table [Keys] returns (keys.go): its
// type, default, allowed values, description and an example. The parser
// takes its known keys from that table, and docs/cortex-yaml.md
// ([WriteReference]) and `cortex explain` are rendered from it; the tests
// drive the parser and the validator with every entry, so the reference
// cannot drift from the code.
//
// # Defaults
//
// Defaults are chosen so a function that says only its name and predictor is
// safe to deploy (see SetDefaults for the full list): it scales to zero and
// to at most 10 replicas, runs 64 predictions at once with 128 more queued,
// bounds a request to 6 MiB and 30s, and asks for 1 CPU and 1 GiB.
//
// The target concurrency (the in-flight requests per replica the autoscaler
// aims for) defaults to limits.max_concurrency rather than Knative's 100: a
// replica never runs more than max_concurrency predictions at once, so a
// higher target would let requests pile up in the queue before the
// autoscaler reacts. Knative scales at 70% of the target, so replicas are
// added before the queue fills.
package spec
