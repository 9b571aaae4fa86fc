// Package deploy is the root of the deployers `cortex deploy` drives: it
// holds no code of its own.
//
//   - packager/deploy/knative applies a function's Knative Service
//     (built by packager/knative) with the Knative Serving clientset and
//     manages it afterwards: get, delete, rollback, canary traffic.
//   - packager/deploy/lambda creates or updates an AWS Lambda function from
//     the zip packager/lambdazip writes, and its function URL, with the AWS
//     SDK for Go v2.
//
// Both print progress to an io.Writer, never to stdout, and return a result
// that marshals to what `--output json` prints. Only packager and
// cmd/cortex may import them (DESIGN.md, dependency rule): they bring
// client-go, the Knative clientset and the AWS SDK.
package deploy
