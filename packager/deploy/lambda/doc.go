// Package lambda deploys a function to AWS Lambda behind a function URL,
// with the AWS SDK for Go v2: the zip packager/lambdazip writes becomes a
// provided.al2023 function.
//
// Deploy is idempotent: it reads the function, its URL config and (for a
// public URL) its resource policy, and writes only what differs from
// cortex.yaml:
//
//	GetFunction                       missing: CreateFunction, wait until Active
//	                                  else, when the code's SHA-256 or the
//	                                  architecture differs: UpdateFunctionCode;
//	                                  when runtime, handler, memory, timeout,
//	                                  environment or role differ:
//	                                  UpdateFunctionConfiguration; each
//	                                  followed by a wait until the update is
//	                                  Successful
//	GetFunctionUrlConfig              missing: CreateFunctionUrlConfig;
//	                                  other auth type: UpdateFunctionUrlConfig
//	GetPolicy (auth NONE, or to undo) AddPermission lambda:InvokeFunctionUrl
//	                                  and lambda:InvokeFunction (public URL),
//	                                  or RemovePermission of both (AWS_IAM)
//
// A URL is public (auth NONE) only when targets.lambda.url_auth says NONE;
// AWS then needs both permissions for anyone to call it. The environment
// keeps variables others set on the function; the spec's win.
//
// URL finds a deployed function's URL and whether it takes only signed
// requests (auth type AWS_IAM); SigningTransport signs them with Signature
// Version 4, which is how `cortex predict NAME --target lambda` calls a
// private function.
//
// Throttling (429 TooManyRequestsException) is retried by the SDK's
// standard retryer; AccessDeniedException and credential errors come back
// as an *AccessError naming the call, with AWS's message.
package lambda
