// Package lambda deploys a function to AWS Lambda behind a function URL,
// and shows and deletes deployed functions, with the AWS SDK for Go v2: the
// zip packager/lambdazip writes becomes a provided.al2023 function.
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
// Get, List and Delete are `cortex get` and `cortex delete` for Lambda.
// Cortex knows its functions by the cortex.function tag (TagFunction) that
// Deploy puts on them:
//
//	Get     GetFunction (configuration, state, tags), GetFunctionUrlConfig
//	List    ListFunctions, every page; for each provided.al2023 function
//	        with CORTEX_CONFIG in its environment, GetFunction (the tag,
//	        and the state ListFunctions does not report), then for each
//	        tagged one GetFunctionUrlConfig
//	Delete  GetFunction, GetFunctionUrlConfig; DeleteFunctionUrlConfig
//	        when there is a URL, then DeleteFunction (which takes the
//	        resource policy, and so the public URL's permissions, with it)
//
// Delete refuses a function without the tag (ErrNotCortex) unless forced,
// and with DryRun lists the deletes it would make, as Deploy does.
// GetFunction returns tags only to a caller allowed lambda:ListTags; tags
// it withholds are an *AccessError for ListTags.
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
