// Package lambda deploys a function to AWS Lambda as a published version
// behind the function URL of an alias, rolls it back to an earlier
// version, and shows and deletes deployed functions, with the AWS SDK for
// Go v2: the zip packager/lambdazip writes becomes a provided.al2023
// function, or the container image packager/lambdaimage makes (with
// targets.lambda.package image, or a zip over Lambda's limits) a
// PackageType Image function.
//
// An image is pushed first (Push: go-containerregistry's remote, to
// REGISTRY/NAME:ImageTag, with the docker config's credentials and
// credential helpers, as cortex package --registry pushes; for Amazon ECR
// that is docker login with aws ecr get-login-password, or the
// docker-credential-ecr-login helper: cortex builds no ECR token flow of
// its own, and the AWS SDK's ECR client is not a dependency). The function
// then names the image by digest: CreateFunction with PackageType Image
// and Code.ImageUri (no runtime or handler: the image's entrypoint, the
// function binary, is its own runtime interface client), and
// UpdateFunctionCode with ImageUri when GetFunction's Code.ResolvedImageUri
// (or ImageUri) is another digest. Lambda cannot change a function's
// package type: a deploy that would is a *PackageTypeError, before any
// write, saying to delete the function first. Versions, the alias, the
// URL, rollback, get and delete are the same for both; PublishVersion of
// an image function is sent without CodeSha256, which for an image is
// Lambda's own hash.
//
// Deploy is idempotent: it reads the function, its alias live (Alias),
// the alias's URL config and (for a public URL) the alias's resource
// policy, and writes only what differs from cortex.yaml:
//
//	GetFunction                       missing: CreateFunction, wait until Active
//	                                  else, when the code's SHA-256 or the
//	                                  architecture differs: UpdateFunctionCode;
//	                                  when runtime, handler, memory, timeout,
//	                                  environment or role differ:
//	                                  UpdateFunctionConfiguration; each
//	                                  followed by a wait until the update is
//	                                  Successful
//	GetAlias live                     missing (an earlier cortex deployed the
//	                                  function): GetFunctionUrlConfig and
//	                                  GetPolicy of the function itself, then
//	                                  DeleteFunctionUrlConfig and
//	                                  RemovePermission of what is there: the
//	                                  URL moves to the alias, with a new address
//	GetFunction:VERSION               only when nothing above changed: the
//	                                  version the alias serves; the same code
//	                                  and configuration as $LATEST: no publish
//	PublishVersion                    with the zip's SHA-256 as CodeSha256;
//	                                  then CreateAlias live, or UpdateAlias
//	                                  live (with its RevisionId) when it
//	                                  served another version
//	GetFunctionUrlConfig:live         missing: CreateFunctionUrlConfig:live;
//	                                  other auth type: UpdateFunctionUrlConfig:live
//	GetPolicy:live (auth NONE,        AddPermission:live lambda:InvokeFunctionUrl
//	or to undo)                       and lambda:InvokeFunction (public URL),
//	                                  or RemovePermission:live of both (AWS_IAM)
//	GetFunctionEventInvokeConfig:live PutFunctionEventInvokeConfig:live when it
//	                                  differs from targets.lambda.async (every
//	                                  value stated, Lambda's defaults where the
//	                                  spec has none); DeleteFunctionEventInvokeConfig:live
//	                                  when the spec has no targets.lambda.async
//
// (NAME:QUALIFIER is the Qualifier parameter; a new alias has no URL or
// policy to read.) Lambda answers PublishVersion with the newest version
// when $LATEST has not changed since it was published, so a deploy after
// a rollback points the alias back at it without a new version. A URL is
// public (auth NONE) only when targets.lambda.url_auth says NONE; AWS
// then needs both permissions for anyone to call it. The environment
// keeps variables others set on the function; the spec's win. A dry run
// makes the reads and lists the writes it would make.
//
// Rollback points the alias at an earlier published version, which the
// alias's URL then serves:
//
//	Rollback  GetAlias live (missing: GetFunction, to tell ErrNotFound
//	          from ErrNoAlias), ListVersionsByFunction, every page,
//	          UpdateAlias live (with its RevisionId), GetFunctionUrlConfig:live
//
// The version is RollbackOptions.Version, or the newest published version
// older than the one the alias serves.
//
// Get, List and Delete are `cortex get` and `cortex delete` for Lambda.
// Cortex knows its functions by the cortex.function tag (TagFunction) that
// Deploy puts on them:
//
//	Get     GetFunction (configuration, state, tags), GetAlias live (the
//	        version it serves), GetFunctionUrlConfig:live
//	List    ListFunctions, every page; for each provided.al2023 function
//	        with CORTEX_CONFIG in its environment, GetFunction (the tag,
//	        and the state ListFunctions does not report), then for each
//	        tagged one GetAlias and GetFunctionUrlConfig:live
//	Delete  GetFunction, GetFunctionUrlConfig:live;
//	        DeleteFunctionUrlConfig:live when there is a URL, then
//	        DeleteFunction (which takes the versions, aliases, other URL
//	        configs and resource policies, and so the public URL's
//	        permissions, with it)
//
// Delete refuses a function without the tag (ErrNotCortex) unless forced,
// and with DryRun lists the deletes it would make, as Deploy does.
// GetFunction returns tags only to a caller allowed lambda:ListTags; tags
// it withholds are an *AccessError for ListTags.
//
// URL finds the alias's function URL and whether it takes only signed
// requests (auth type AWS_IAM); SigningTransport signs them with Signature
// Version 4, which is how `cortex predict NAME --target lambda` calls a
// private function. A function an earlier cortex deployed has its URL on
// the function itself: URL does not find it until a deploy moves it.
//
// The waits after a create or an update are the SDK's FunctionActive and
// FunctionUpdated waiters, polling every Options.PollInterval, with a
// progress line per state change and the reason of a failed state or
// update in the error.
//
// Platform is Lambda as `cortex deploy`, get, delete, rollback and predict
// offer it (a deploy.Target): --region and --profile on each, --role and
// --registry on deploy (the flag Knative's deploy has, shared: one
// --registry, for whichever target runs). Its Deploy loads the AWS
// configuration, then packages the Lambda output and nothing else: the
// zip, or the Lambda image alone (no other platform, no Knative output).
//
// Throttling (429 TooManyRequestsException) is retried by the SDK's
// standard retryer; AccessDeniedException and credential errors come back
// as an *AccessError naming the call, with AWS's message.
package lambda
