// Package deploy is the seam between `cortex deploy`, get, delete,
// rollback and predict and the platforms they act on: the Target
// interface, the options every target understands, the Report a call
// returns, and the Platforms a CLI offers.
//
// A platform is one package with a Platform function:
//
//   - packager/deploy/knative: a function's Knative Service, applied with
//     the Knative Serving clientset and the user's kubeconfig.
//   - packager/deploy/lambda: an AWS Lambda function, a published version
//     per deploy behind the alias live and its function URL, with the AWS
//     SDK for Go v2.
//
// A command parses its flags (each platform adds its own with
// Platforms.Flags), opens the target --target names, makes one call and
// prints the Report: as data (encoding/json, or YAML through it) for
// --output json or yaml, else with its WriteText. So adding a platform is
// a package and a line in the CLI's Platforms.
//
// A target packages what it deploys itself (Function.Package), asking the
// packager for its own outputs only (Knative: the manifest and the push;
// Lambda: the zip), so it can refuse an option or fail to reach its
// platform before anything is built. A target prints progress to the
// writer it was opened with, never to stdout; an option it cannot honour
// is an error that says which target it is for.
//
// This package brings the packager, and the platforms client-go, the
// Knative clientset and the AWS SDK: only cmd/cortex may import them
// (DESIGN.md, dependency rule), never a function binary (functions,
// runtime, adapters). Logs are not part of Target: no command shows them
// yet; when one does, a platform that has them implements a one-method
// interface the command finds by type assertion.
package deploy
