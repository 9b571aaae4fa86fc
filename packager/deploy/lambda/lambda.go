package lambda

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/cortexfn/cortex/packager/lambdazip"
	"github.com/cortexfn/cortex/packager/spec"
)

// API is the part of the Lambda client Deploy, Get, List, Delete,
// Rollback and URL call; *lambda.Client implements it.
type API interface {
	GetFunction(context.Context, *lambda.GetFunctionInput, ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error)
	GetFunctionConfiguration(context.Context, *lambda.GetFunctionConfigurationInput, ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error)
	CreateFunction(context.Context, *lambda.CreateFunctionInput, ...func(*lambda.Options)) (*lambda.CreateFunctionOutput, error)
	UpdateFunctionCode(context.Context, *lambda.UpdateFunctionCodeInput, ...func(*lambda.Options)) (*lambda.UpdateFunctionCodeOutput, error)
	UpdateFunctionConfiguration(context.Context, *lambda.UpdateFunctionConfigurationInput, ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error)
	GetFunctionUrlConfig(context.Context, *lambda.GetFunctionUrlConfigInput, ...func(*lambda.Options)) (*lambda.GetFunctionUrlConfigOutput, error)
	CreateFunctionUrlConfig(context.Context, *lambda.CreateFunctionUrlConfigInput, ...func(*lambda.Options)) (*lambda.CreateFunctionUrlConfigOutput, error)
	UpdateFunctionUrlConfig(context.Context, *lambda.UpdateFunctionUrlConfigInput, ...func(*lambda.Options)) (*lambda.UpdateFunctionUrlConfigOutput, error)
	GetPolicy(context.Context, *lambda.GetPolicyInput, ...func(*lambda.Options)) (*lambda.GetPolicyOutput, error)
	AddPermission(context.Context, *lambda.AddPermissionInput, ...func(*lambda.Options)) (*lambda.AddPermissionOutput, error)
	RemovePermission(context.Context, *lambda.RemovePermissionInput, ...func(*lambda.Options)) (*lambda.RemovePermissionOutput, error)
	ListFunctions(context.Context, *lambda.ListFunctionsInput, ...func(*lambda.Options)) (*lambda.ListFunctionsOutput, error)
	DeleteFunctionUrlConfig(context.Context, *lambda.DeleteFunctionUrlConfigInput, ...func(*lambda.Options)) (*lambda.DeleteFunctionUrlConfigOutput, error)
	DeleteFunction(context.Context, *lambda.DeleteFunctionInput, ...func(*lambda.Options)) (*lambda.DeleteFunctionOutput, error)
	PublishVersion(context.Context, *lambda.PublishVersionInput, ...func(*lambda.Options)) (*lambda.PublishVersionOutput, error)
	ListVersionsByFunction(context.Context, *lambda.ListVersionsByFunctionInput, ...func(*lambda.Options)) (*lambda.ListVersionsByFunctionOutput, error)
	GetAlias(context.Context, *lambda.GetAliasInput, ...func(*lambda.Options)) (*lambda.GetAliasOutput, error)
	CreateAlias(context.Context, *lambda.CreateAliasInput, ...func(*lambda.Options)) (*lambda.CreateAliasOutput, error)
	UpdateAlias(context.Context, *lambda.UpdateAliasInput, ...func(*lambda.Options)) (*lambda.UpdateAliasOutput, error)
	GetFunctionEventInvokeConfig(context.Context, *lambda.GetFunctionEventInvokeConfigInput, ...func(*lambda.Options)) (*lambda.GetFunctionEventInvokeConfigOutput, error)
	PutFunctionEventInvokeConfig(context.Context, *lambda.PutFunctionEventInvokeConfigInput, ...func(*lambda.Options)) (*lambda.PutFunctionEventInvokeConfigOutput, error)
	DeleteFunctionEventInvokeConfig(context.Context, *lambda.DeleteFunctionEventInvokeConfigInput, ...func(*lambda.Options)) (*lambda.DeleteFunctionEventInvokeConfigOutput, error)
}

var _ API = (*lambda.Client)(nil)

// The fixed parts of every function cortex deploys.
const (
	Runtime = types.RuntimeProvidedal2023
	Handler = "bootstrap"
	// TagFunction tags the function with its cortex name.
	TagFunction = "cortex.function"
	// Alias serves the function: Deploy publishes a version and points
	// the alias at it, Rollback points it at an earlier one, and the
	// function URL belongs to it. The SAM template uses the same alias.
	Alias = lambdazip.Alias
)

// Statement ids of the two permissions a public function URL needs.
const (
	SidURL    = "cortex-function-url-public"
	SidInvoke = "cortex-function-url-invoke"
)

// Function is what to deploy.
type Function struct {
	Name string
	// Zip is the path of the Lambda zip (bootstrap at its root).
	Zip string
	// Image, when set, makes the function a container image function
	// (PackageType Image) of this image, by digest (REPO@sha256:...,
	// pushed to Amazon ECR: see Push), in place of the zip.
	Image string
	// Arch is x86_64 or arm64.
	Arch string
	// Memory in MB, Timeout in seconds.
	Memory, Timeout int32
	// Env is the function's environment.
	Env map[string]string
	// Secrets are the names in Env whose values are secrets
	// (wasm.secret_env's, and auth's token). No value is printed or recorded: Deploy's errors
	// have them masked (AWS quotes the whole environment in some of its
	// own, e.g. one over its 4 KB limit). SecretNamesVar records the names
	// on the function, for the next deploy to drop those no longer named.
	Secrets []string
	// URLAuth is AWS_IAM or NONE (public).
	URLAuth string
	// InvokeMode is the URL's invoke mode, BUFFERED (default) or
	// RESPONSE_STREAM; the function learns it from its environment
	// ($CORTEX_LAMBDA_INVOKE_MODE, which FromSpec sets).
	InvokeMode string
	// Async is the event-invoke configuration of the alias (Lambda's
	// asynchronous invoke); nil removes it, for Lambda's defaults.
	Async *spec.LambdaAsync
}

// SecretNamesVar is the variable in which a deploy records the names of
// the secrets it set, so the next one can drop those no longer named.
const SecretNamesVar = "CORTEX_SECRET_NAMES"

// ErrTokenWithIAM: a function that requires a bearer token (auth) behind
// a function URL whose auth type is AWS_IAM, where a caller's
// Authorization header holds its AWS signature and cannot hold the token
// too.
var ErrTokenWithIAM = errors.New("lambda: the function requires a bearer token (auth in cortex.yaml), which callers send in the Authorization header, but its function URL's auth type is AWS_IAM, whose signed requests hold their AWS signature there: set targets.lambda.url_auth: NONE in cortex.yaml (the token guards the function), or remove auth")

// FromSpecWithSecrets is FromSpec with the values of the spec's secret
// variables (wasm.secret_env's and auth's token) taken from lookup (the
// deploying command's environment, as for cortex serve): a missing one is
// an error naming the variable and its cortex.yaml line, and so is a
// token the function would refuse (runtime.CheckToken). A function that
// requires a token behind an AWS_IAM function URL is ErrTokenWithIAM.
func FromSpecWithSecrets(s *spec.Spec, zip string, lookup func(string) (string, bool)) (Function, error) {
	fn := FromSpec(s, zip)
	if s.Auth.TokenEnv != "" && fn.URLAuth != spec.URLAuthNone {
		return Function{}, ErrTokenWithIAM
	}
	values, err := s.SecretValues(lookup)
	if err != nil {
		return Function{}, err
	}
	for _, name := range slices.Sorted(maps.Keys(values)) {
		fn.Env[name] = values[name]
		fn.Secrets = append(fn.Secrets, name)
	}
	if len(fn.Secrets) > 0 {
		fn.Env[SecretNamesVar] = strings.Join(fn.Secrets, ",")
	}
	return fn, nil
}

// FromSpec is the Function cortex.yaml describes, from the zip at zip.
func FromSpec(s *spec.Spec, zip string) Function {
	return Function{
		Name:    s.Name,
		Zip:     zip,
		Arch:    s.Targets.Lambda.Arch,
		Memory:  int32(s.Targets.Lambda.Memory),
		Timeout: int32(lambdazip.Timeout(s)),
		Env: map[string]string{"CORTEX_CONFIG": lambdazip.ConfigPath,
			"CORTEX_LAMBDA_INVOKE_MODE": cmp.Or(s.Targets.Lambda.InvokeMode, spec.DefaultInvokeMode)},
		URLAuth:    s.Targets.Lambda.URLAuth,
		InvokeMode: cmp.Or(s.Targets.Lambda.InvokeMode, spec.DefaultInvokeMode),
		Async:      s.Targets.Lambda.Async,
	}
}

// Options says how Deploy works. The zero value deploys, polling every
// second for up to five minutes.
type Options struct {
	// Role is the execution role's ARN: required to create a function,
	// and applied on update when set.
	Role string
	// DryRun makes the read calls and lists the writes it would make.
	DryRun bool
	// PollInterval is how often to read the function's state while it
	// becomes Active or its update Successful. Default 1s.
	PollInterval time.Duration
	// Timeout bounds each of those waits. Default 5m.
	Timeout time.Duration
	// Progress receives a line per call and state change.
	Progress io.Writer
}

// Call is one Lambda API call Deploy made, or would make in a dry run.
type Call struct {
	Op     string `json:"op"`
	Detail string `json:"detail,omitempty"`
	// Planned: a dry run did not make this call.
	Planned bool `json:"planned,omitempty"`
}

// Result is what Deploy did. It marshals to what `--output json` prints.
type Result struct {
	Name string `json:"name"`
	ARN  string `json:"arn,omitempty"`
	// DryRun: nothing was written; Calls lists what would be.
	DryRun bool `json:"dry_run,omitempty"`
	// Action is "created", "updated" or "unchanged" (with DryRun: "create",
	// "update" or "unchanged").
	Action string `json:"action"`
	// Version is the published version the alias serves; a dry run that
	// would publish one leaves it empty.
	Version  string `json:"version,omitempty"`
	URL      string `json:"url,omitempty"`
	AuthType string `json:"auth_type"`
	Calls    []Call `json:"calls"`
}

// AccessError is a call AWS refused: missing IAM permission or bad
// credentials.
type AccessError struct {
	Op      string
	Code    string
	Message string
}

func (e *AccessError) Error() string {
	hint := "the caller's IAM policy must allow lambda:" + e.Op
	if e.Code != "AccessDeniedException" && e.Code != "AccessDenied" {
		hint = "check your AWS credentials (AWS_PROFILE, aws sso login, or the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY pair) and region"
	}
	return fmt.Sprintf("AWS refused %s (%s): %s; %s", e.Op, e.Code, e.Message, hint)
}

// ErrPackageType: the function exists with the other package type (a
// zip function now deployed as an image, or the reverse), which Lambda
// cannot change.
var ErrPackageType = errors.New("lambda: the function has the other package type")

// PackageTypeError is ErrPackageType for one function.
type PackageTypeError struct {
	Name       string
	Have, Want types.PackageType
}

func (e *PackageTypeError) Error() string {
	return fmt.Sprintf("the Lambda function %s has package type %s and this deploy needs %s, which Lambda cannot change: "+
		"delete it and deploy again (cortex delete %s --target lambda; its versions go, and its function URL gets a new address), "+
		"or set targets.lambda.package: %s in cortex.yaml", e.Name, e.Have, e.Want, e.Name, strings.ToLower(string(e.Have)))
}

func (e *PackageTypeError) Unwrap() error { return ErrPackageType }

// ErrNoRole: the function does not exist and no role was given.
var ErrNoRole = errors.New("lambda: creating a function needs an execution role: pass --role arn:aws:iam::ACCOUNT:role/NAME (a role lambda.amazonaws.com may assume, with the AWSLambdaBasicExecutionRole policy)")

type deployer struct {
	recorder
	api API
	o   Options
	res *Result
}

// recorder makes the Lambda calls of one Deploy or Delete and records
// them; in a dry run it makes the reads and only records the writes.
type recorder struct {
	dryRun   bool
	progress io.Writer
	// calls receives a Call per call; nil records nothing.
	calls *[]Call
}

func (r *recorder) say(format string, args ...any) {
	if r.progress != nil {
		fmt.Fprintf(r.progress, format+"\n", args...)
	}
}

func (r *recorder) record(c Call) {
	if r.calls != nil {
		*r.calls = append(*r.calls, c)
	}
}

// read records and makes a read call.
func (r *recorder) read(op, detail string, call func() error) error {
	r.record(Call{Op: op, Detail: detail})
	return classify(op, call())
}

// write records a write call and, unless this is a dry run, makes it.
func (r *recorder) write(op, detail string, call func() error) error {
	r.record(Call{Op: op, Detail: detail, Planned: r.dryRun})
	if r.dryRun {
		r.say("would call %s %s", op, detail)
		return nil
	}
	r.say("%s %s", op, detail)
	return classify(op, call())
}

// getFunction reads the function's configuration and tags. A missing
// function is an error wrapping ErrNotFound.
func (r *recorder) getFunction(ctx context.Context, api API, name string) (*lambda.GetFunctionOutput, error) {
	var out *lambda.GetFunctionOutput
	err := r.read("GetFunction", name, func() (err error) {
		out, err = api.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
		return err
	})
	if isNotFound(err) {
		return nil, notFound(api, name)
	}
	return out, err
}

// urlConfig reads the URL config of the function, or of its alias or
// version qualifier: nil when it has none.
func (r *recorder) urlConfig(ctx context.Context, api API, name, qualifier string) (*lambda.GetFunctionUrlConfigOutput, error) {
	var out *lambda.GetFunctionUrlConfigOutput
	err := r.read("GetFunctionUrlConfig", qualified(name, qualifier), func() (err error) {
		out, err = api.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(name), Qualifier: optional(qualifier)})
		return err
	})
	if isNotFound(err) {
		return nil, nil
	}
	return out, err
}

// alias reads the function's alias Alias: nil when there is none. Lambda
// says ResourceNotFoundException for a missing function too: a caller
// that has not read the function yet must tell them apart.
func (r *recorder) alias(ctx context.Context, api API, name string) (*lambda.GetAliasOutput, error) {
	var out *lambda.GetAliasOutput
	err := r.read("GetAlias", qualified(name, Alias), func() (err error) {
		out, err = api.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(name), Name: aws.String(Alias)})
		return err
	})
	if isNotFound(err) {
		return nil, nil
	}
	return out, err
}

// qualified is how calls name a function's alias or version: name:qualifier.
func qualified(name, qualifier string) string {
	if qualifier == "" {
		return name
	}
	return name + ":" + qualifier
}

// optional is qualifier as an optional request field: "" leaves it out.
func optional(qualifier string) *string {
	if qualifier == "" {
		return nil
	}
	return aws.String(qualifier)
}

// classify turns the errors a user must act on into an *AccessError.
func classify(op string, err error) error {
	var ae smithy.APIError
	if err == nil || !errors.As(err, &ae) {
		return err
	}
	switch ae.ErrorCode() {
	case "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException",
		"ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch":
		return &AccessError{Op: op, Code: ae.ErrorCode(), Message: ae.ErrorMessage()}
	}
	return fmt.Errorf("%s: %w", op, err)
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

// Deploy creates or updates fn and its function URL. See the package
// documentation for the calls it makes.
func Deploy(ctx context.Context, api API, fn Function, o Options) (res *Result, err error) {
	defer func() {
		if err != nil {
			err = maskSecrets(err, fn)
		}
	}()
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if fn.URLAuth == "" {
		fn.URLAuth = spec.URLAuthIAM
	}
	if fn.URLAuth != spec.URLAuthIAM && fn.URLAuth != spec.URLAuthNone {
		return nil, fmt.Errorf("url auth %q: use %s or %s", fn.URLAuth, spec.URLAuthIAM, spec.URLAuthNone)
	}
	fn.InvokeMode = cmp.Or(fn.InvokeMode, spec.DefaultInvokeMode)
	if fn.InvokeMode != spec.InvokeBuffered && fn.InvokeMode != spec.InvokeResponseStream {
		return nil, fmt.Errorf("invoke mode %q: use %s or %s", fn.InvokeMode, spec.InvokeBuffered, spec.InvokeResponseStream)
	}
	if fn.Async != nil {
		if _, err := wantEventInvoke(fn.Async); err != nil {
			return nil, err
		}
	}
	c, err := readCode(fn)
	if err != nil {
		return nil, err
	}
	d := &deployer{api: api, o: o, res: &Result{Name: fn.Name, AuthType: fn.URLAuth, Action: "unchanged", DryRun: o.DryRun}}
	d.recorder = recorder{dryRun: o.DryRun, progress: o.Progress, calls: &d.res.Calls}
	name := aws.String(fn.Name)
	arch := []types.Architecture{types.Architecture(fn.Arch)}

	cur, err := d.getFunction(ctx, api, fn.Name)
	exists := true
	switch {
	case errors.Is(err, ErrNotFound):
		exists = false
	case err != nil:
		return nil, err
	}

	if !exists {
		if o.Role == "" {
			return nil, ErrNoRole
		}
		d.res.Action = action(o.DryRun, "create")
		in := &lambda.CreateFunctionInput{
			FunctionName:  name,
			Role:          aws.String(o.Role),
			Architectures: arch,
			MemorySize:    aws.Int32(fn.Memory),
			Timeout:       aws.Int32(fn.Timeout),
			Environment:   &types.Environment{Variables: fn.Env},
			Code:          &types.FunctionCode{ZipFile: c.zip},
			PackageType:   c.packageType(),
			Description:   aws.String("Cortex function " + fn.Name),
			Tags:          map[string]string{TagFunction: fn.Name},
		}
		what := fmt.Sprintf("%s, %s, %d MB, %ds, %s", Runtime, fn.Arch, fn.Memory, fn.Timeout, c)
		if c.image != "" {
			in.Code = &types.FunctionCode{ImageUri: aws.String(c.image)}
			what = fmt.Sprintf("%s, %d MB, %ds, %s", fn.Arch, fn.Memory, fn.Timeout, c)
		} else {
			in.Runtime, in.Handler = Runtime, aws.String(Handler)
		}
		err = d.write("CreateFunction", fmt.Sprintf("%s (%s)", fn.Name, what), func() error {
			out, err := api.CreateFunction(ctx, in)
			if err == nil {
				d.res.ARN = aws.ToString(out.FunctionArn)
			}
			return err
		})
		if err != nil {
			return d.res, err
		}
		if err := d.waitReady(ctx, fn.Name, true); err != nil {
			return d.res, err
		}
	} else {
		cfg := cur.Configuration
		d.res.ARN = aws.ToString(cfg.FunctionArn)
		if have := cmp.Or(cfg.PackageType, types.PackageTypeZip); have != c.packageType() {
			return d.res, &PackageTypeError{Name: fn.Name, Have: have, Want: c.packageType()}
		}
		if cfg.LastUpdateStatus == types.LastUpdateStatusInProgress || cfg.State == types.StatePending {
			// Lambda refuses a change while another is in progress.
			if err := d.waitReady(ctx, fn.Name, false); err != nil {
				return d.res, err
			}
		}
		env := map[string]string{}
		if cfg.Environment != nil {
			maps.Copy(env, cfg.Environment.Variables)
		}
		// The secrets an earlier deploy set go, unless still named.
		if prev := env[SecretNamesVar]; prev != "" {
			for _, name := range strings.Split(prev, ",") {
				delete(env, name)
			}
			delete(env, SecretNamesVar)
		}
		maps.Copy(env, fn.Env)
		var changes []string
		upd := &lambda.UpdateFunctionConfigurationInput{FunctionName: name}
		// An image function has no runtime or handler: its image's
		// entrypoint is both.
		if c.image == "" && cfg.Runtime != Runtime {
			upd.Runtime, changes = Runtime, append(changes, "runtime")
		}
		if c.image == "" && aws.ToString(cfg.Handler) != Handler {
			upd.Handler, changes = aws.String(Handler), append(changes, "handler")
		}
		if aws.ToInt32(cfg.MemorySize) != fn.Memory {
			upd.MemorySize, changes = aws.Int32(fn.Memory), append(changes, "memory")
		}
		if aws.ToInt32(cfg.Timeout) != fn.Timeout {
			upd.Timeout, changes = aws.Int32(fn.Timeout), append(changes, "timeout")
		}
		if cfg.Environment == nil || !maps.Equal(cfg.Environment.Variables, env) {
			upd.Environment, changes = &types.Environment{Variables: env}, append(changes, "environment")
		}
		if o.Role != "" && aws.ToString(cfg.Role) != o.Role {
			upd.Role, changes = aws.String(o.Role), append(changes, "role")
		}
		if len(changes) > 0 {
			d.res.Action = action(o.DryRun, "update")
			err := d.write("UpdateFunctionConfiguration", fn.Name+" ("+strings.Join(changes, ", ")+")", func() error {
				_, err := api.UpdateFunctionConfiguration(ctx, upd)
				return err
			})
			if err != nil {
				return d.res, err
			}
			if err := d.waitReady(ctx, fn.Name, false); err != nil {
				return d.res, err
			}
		}
		if !c.same(cur) || !slices.Equal(cfg.Architectures, arch) {
			d.res.Action = action(o.DryRun, "update")
			in := &lambda.UpdateFunctionCodeInput{FunctionName: name, ZipFile: c.zip, Architectures: arch}
			if c.image != "" {
				in.ZipFile, in.ImageUri = nil, aws.String(c.image)
			}
			err := d.write("UpdateFunctionCode", fmt.Sprintf("%s (%s, %s)", fn.Name, fn.Arch, c), func() error {
				_, err := api.UpdateFunctionCode(ctx, in)
				return err
			})
			if err != nil {
				return d.res, err
			}
			if err := d.waitReady(ctx, fn.Name, false); err != nil {
				return d.res, err
			}
		}
	}

	var alias *lambda.GetAliasOutput
	if exists {
		if alias, err = d.alias(ctx, api, fn.Name); err != nil {
			return d.res, err
		}
		if alias == nil {
			if err := d.migrate(ctx, fn.Name); err != nil {
				return d.res, err
			}
		}
	}
	var live *types.FunctionConfiguration
	if cur != nil {
		live = cur.Configuration
	}
	if err := d.release(ctx, fn.Name, c, live, alias); err != nil {
		return d.res, err
	}
	if err := d.url(ctx, fn, alias != nil); err != nil {
		return d.res, err
	}
	if err := d.permissions(ctx, fn, alias != nil); err != nil {
		return d.res, err
	}
	if err := d.eventInvoke(ctx, fn, alias != nil); err != nil {
		return d.res, err
	}
	return d.res, nil
}

// code is what a deploy sends as the function's code: a zip, or a
// container image by digest.
type code struct {
	zip []byte
	// sha is the zip's SHA-256, base64, as Lambda reports CodeSha256.
	sha string
	// image is REPO@sha256:HEX.
	image string
}

// readCode reads fn's zip, or checks its image reference.
func readCode(fn Function) (code, error) {
	if fn.Image != "" {
		if _, err := name.NewDigest(fn.Image); err != nil {
			return code{}, fmt.Errorf("the Lambda function's image %q is not a digest reference (REPO@sha256:HEX): %w", fn.Image, err)
		}
		return code{image: fn.Image}, nil
	}
	zip, err := os.ReadFile(fn.Zip)
	if err != nil {
		return code{}, fmt.Errorf("reading the Lambda zip: %w", err)
	}
	sum := sha256.Sum256(zip)
	return code{zip: zip, sha: base64.StdEncoding.EncodeToString(sum[:])}, nil
}

func (c code) packageType() types.PackageType {
	if c.image != "" {
		return types.PackageTypeImage
	}
	return types.PackageTypeZip
}

// same reports whether the function already runs this code: the zip's
// SHA-256, or the image Lambda resolved (or was given) by digest.
func (c code) same(cur *lambda.GetFunctionOutput) bool {
	if c.image == "" {
		return aws.ToString(cur.Configuration.CodeSha256) == c.sha
	}
	return cur.Code != nil && (aws.ToString(cur.Code.ResolvedImageUri) == c.image || aws.ToString(cur.Code.ImageUri) == c.image)
}

// id names the code in a version's description and the progress lines.
func (c code) id() string {
	if c.image != "" {
		return "image " + c.image
	}
	return "code sha256 " + c.sha
}

func (c code) String() string {
	if c.image != "" {
		return "image " + c.image
	}
	return fmt.Sprintf("%d-byte zip, sha256 %s", len(c.zip), c.sha)
}

func action(dry bool, a string) string {
	if dry {
		return a
	}
	return a + "d"
}

// waitReady waits until the function is Active with no update in
// progress, with the SDK's waiters: FunctionActive after a create (created),
// FunctionUpdated otherwise. Both read GetFunctionConfiguration; the V2
// waiters read GetFunction, which also returns the tags and a presigned
// link to the code, and needs a wider permission. The waiter polls every
// PollInterval until Timeout; judge prints a progress line when the state
// changes, records the call, and reports a failed create or update with
// AWS's reason where the waiter would say only that it failed.
func (d *deployer) waitReady(ctx context.Context, name string, created bool) error {
	if d.o.DryRun {
		return nil
	}
	in := &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)}
	w := waiting{d: d, name: name}
	var err error
	if created {
		_, err = lambda.NewFunctionActiveWaiter(d.api, func(o *lambda.FunctionActiveWaiterOptions) {
			o.MinDelay, o.MaxDelay = d.o.PollInterval, d.o.PollInterval
			o.Retryable = w.judge(o.Retryable)
		}).WaitForOutput(ctx, in, d.o.Timeout)
	} else {
		_, err = lambda.NewFunctionUpdatedWaiter(d.api, func(o *lambda.FunctionUpdatedWaiterOptions) {
			o.MinDelay, o.MaxDelay = d.o.PollInterval, d.o.PollInterval
			o.Retryable = w.judge(o.Retryable)
		}).WaitForOutput(ctx, in, d.o.Timeout)
	}
	switch {
	case err == nil || w.judged:
		return err
	case ctx.Err() != nil:
		// Interrupted: the caller's context error, so a Ctrl-C reads as one.
		return fmt.Errorf("waiting for %s: %w (last: %s)", name, ctx.Err(), w.last)
	}
	// The waiter's own deadline, whether it passed in a call or between.
	return fmt.Errorf("timed out after %s waiting for %s (%s)", d.o.Timeout, name, w.last)
}

// waiting is one waitReady: the last state it printed, and whether the
// error that ended it is judge's.
type waiting struct {
	d      *deployer
	name   string
	last   string
	judged bool
}

// retryable is how a waiter judges one GetFunctionConfiguration: retry,
// done (false, nil), or failed (an error).
type retryable = func(context.Context, *lambda.GetFunctionConfigurationInput, *lambda.GetFunctionConfigurationOutput, error) (bool, error)

// judge wraps a waiter's rule: a failed state or update is an error with
// AWS's reason, a function still Pending or updating is waited for (what
// a create followed by an update needs, whichever waiter runs), and the
// rest is the waiter's rule.
func (w *waiting) judge(rule retryable) retryable {
	return func(ctx context.Context, in *lambda.GetFunctionConfigurationInput, c *lambda.GetFunctionConfigurationOutput, err error) (bool, error) {
		w.d.record(Call{Op: "GetFunctionConfiguration", Detail: w.name})
		fail := func(err error) (bool, error) {
			w.judged = true
			return false, err
		}
		if err != nil {
			if ctx.Err() != nil {
				// The wait's deadline or the caller's: waitReady says which.
				return false, err
			}
			return fail(classify("GetFunctionConfiguration", err))
		}
		if state := fmt.Sprintf("state %s, last update %s", c.State, c.LastUpdateStatus); state != w.last {
			w.d.say("%s: %s", w.name, state)
			w.last = state
		}
		switch {
		case c.State == types.StateFailed:
			return fail(fmt.Errorf("%s failed to become active: %s: %s", w.name, c.StateReasonCode, aws.ToString(c.StateReason)))
		case c.LastUpdateStatus == types.LastUpdateStatusFailed:
			return fail(fmt.Errorf("the update of %s failed: %s: %s", w.name, c.LastUpdateStatusReasonCode, aws.ToString(c.LastUpdateStatusReason)))
		case c.State == types.StatePending || c.LastUpdateStatus == types.LastUpdateStatusInProgress:
			return true, nil
		}
		retry, err := rule(ctx, in, c, nil)
		if err != nil {
			return fail(err)
		}
		return retry, nil
	}
}

// migrate takes the function URL, and a public URL's permissions, off
// the unqualified function, where cortex put them before it served
// functions from the alias Alias. The alias gets a URL of its own: a
// function URL's address cannot move.
func (d *deployer) migrate(ctx context.Context, name string) error {
	u, err := d.urlConfig(ctx, d.api, name, "")
	if err != nil {
		return err
	}
	if u != nil {
		d.res.Action = orUpdate(d.res.Action, d.o.DryRun)
		d.say("%s has its function URL %s on the function itself, as an earlier cortex deployed it: "+
			"the URL moves to the alias %s, with a new address, and the old one stops working", name, aws.ToString(u.FunctionUrl), Alias)
		err := d.write("DeleteFunctionUrlConfig", name+" ("+aws.ToString(u.FunctionUrl)+": the URL moves to the alias "+Alias+")", func() error {
			_, err := d.api.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String(name)})
			if isNotFound(err) {
				return nil
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	have, err := d.policy(ctx, name, "")
	if err != nil {
		return err
	}
	return d.removePublic(ctx, name, "", have, "the URL moves to the alias "+Alias)
}

// release publishes $LATEST as a version and points the alias at it. When
// this deploy changed nothing and the alias serves a version with
// $LATEST's code and configuration, it writes nothing; otherwise Lambda
// answers PublishVersion with the newest version when $LATEST has not
// changed since it was published, as after a rollback. latest is
// $LATEST as Deploy read it (nil: created by this deploy).
func (d *deployer) release(ctx context.Context, name string, c code, latest *types.FunctionConfiguration, alias *lambda.GetAliasOutput) error {
	if alias != nil {
		d.res.Version = aws.ToString(alias.FunctionVersion)
		if d.res.Action == "unchanged" && latest != nil {
			served, err := d.getFunctionAt(ctx, name, d.res.Version)
			if err != nil {
				return err
			}
			if sameRelease(served.Configuration, latest) {
				return nil
			}
		}
	}
	d.res.Action = orUpdate(d.res.Action, d.o.DryRun)
	version := ""
	in := &lambda.PublishVersionInput{
		FunctionName: aws.String(name),
		Description:  aws.String("cortex deploy of " + name + ", " + c.id()),
	}
	if c.image == "" {
		// Publish only the code this deploy sent. An image function's
		// CodeSha256 is Lambda's to compute; its version records the
		// image by digest.
		in.CodeSha256 = aws.String(c.sha)
	}
	err := d.write("PublishVersion", fmt.Sprintf("%s (%s)", name, c.id()), func() error {
		out, err := d.api.PublishVersion(ctx, in)
		if err == nil {
			version = aws.ToString(out.Version)
		}
		return err
	})
	if err != nil {
		return err
	}
	d.res.Version = version
	target := "version " + version
	if d.o.DryRun {
		target = "the published version"
	}
	switch {
	case alias == nil:
		err = d.write("CreateAlias", qualified(name, Alias)+" ("+target+")", func() error {
			_, err := d.api.CreateAlias(ctx, &lambda.CreateAliasInput{
				FunctionName: aws.String(name), Name: aws.String(Alias), FunctionVersion: aws.String(version),
				Description: aws.String("what cortex serves: cortex deploy and cortex rollback move it"),
			})
			return err
		})
	case aws.ToString(alias.FunctionVersion) != version:
		err = d.write("UpdateAlias", fmt.Sprintf("%s (version %s -> %s)", qualified(name, Alias), aws.ToString(alias.FunctionVersion), strings.TrimPrefix(target, "version ")), func() error {
			_, err := d.api.UpdateAlias(ctx, &lambda.UpdateAliasInput{
				FunctionName: aws.String(name), Name: aws.String(Alias), FunctionVersion: aws.String(version), RevisionId: alias.RevisionId,
			})
			return err
		})
	}
	return err
}

// getFunctionAt reads a version of the function.
func (d *deployer) getFunctionAt(ctx context.Context, name, version string) (*lambda.GetFunctionOutput, error) {
	var out *lambda.GetFunctionOutput
	err := d.read("GetFunction", qualified(name, version), func() (err error) {
		out, err = d.api.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name), Qualifier: aws.String(version)})
		return err
	})
	if err == nil && out.Configuration == nil {
		err = fmt.Errorf("GetFunction %s: no configuration", qualified(name, version))
	}
	return out, err
}

// sameRelease reports whether two versions of a function have the same
// code and the configuration Deploy sets.
func sameRelease(a, b *types.FunctionConfiguration) bool {
	env := func(c *types.FunctionConfiguration) map[string]string {
		if c.Environment == nil {
			return nil
		}
		return c.Environment.Variables
	}
	return aws.ToString(a.CodeSha256) == aws.ToString(b.CodeSha256) &&
		slices.Equal(a.Architectures, b.Architectures) &&
		a.Runtime == b.Runtime &&
		aws.ToString(a.Handler) == aws.ToString(b.Handler) &&
		aws.ToInt32(a.MemorySize) == aws.ToInt32(b.MemorySize) &&
		aws.ToInt32(a.Timeout) == aws.ToInt32(b.Timeout) &&
		aws.ToString(a.Role) == aws.ToString(b.Role) &&
		maps.Equal(env(a), env(b))
}

// url creates or updates the function URL config of the alias.
// aliasExisted: the alias was there before this deploy, so it may have a
// URL already.
func (d *deployer) url(ctx context.Context, fn Function, aliasExisted bool) error {
	name := aws.String(fn.Name)
	at := qualified(fn.Name, Alias)
	auth := types.FunctionUrlAuthType(fn.URLAuth)
	mode := types.InvokeMode(fn.InvokeMode)
	var cur *lambda.GetFunctionUrlConfigOutput
	if aliasExisted {
		var err error
		if cur, err = d.urlConfig(ctx, d.api, fn.Name, Alias); err != nil {
			return err
		}
		if cur != nil {
			d.res.URL = aws.ToString(cur.FunctionUrl)
		}
	}
	switch {
	case cur == nil:
		d.res.Action = orUpdate(d.res.Action, d.o.DryRun)
		return d.write("CreateFunctionUrlConfig", at+" (auth "+fn.URLAuth+", invoke mode "+fn.InvokeMode+")", func() error {
			out, err := d.api.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: name, Qualifier: aws.String(Alias), AuthType: auth, InvokeMode: mode})
			if err == nil {
				d.res.URL = aws.ToString(out.FunctionUrl)
			}
			return err
		})
	case cur.AuthType != auth || cmp.Or(cur.InvokeMode, types.InvokeModeBuffered) != mode:
		d.res.Action = orUpdate(d.res.Action, d.o.DryRun)
		return d.write("UpdateFunctionUrlConfig", fmt.Sprintf("%s (auth %s -> %s, invoke mode %s -> %s)", at, cur.AuthType, fn.URLAuth, cmp.Or(cur.InvokeMode, types.InvokeModeBuffered), mode), func() error {
			out, err := d.api.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: name, Qualifier: aws.String(Alias), AuthType: auth, InvokeMode: mode})
			if err == nil {
				d.res.URL = aws.ToString(out.FunctionUrl)
			}
			return err
		})
	}
	return nil
}

// orUpdate is the Action after a change to a function that may already
// have been created or updated by this deploy.
func orUpdate(a string, dry bool) string {
	if a == "unchanged" {
		return action(dry, "update")
	}
	return a
}

// policy reads the statement ids of the resource policy of the function,
// or of its alias or version qualifier.
func (d *deployer) policy(ctx context.Context, name, qualifier string) (map[string]bool, error) {
	have := map[string]bool{}
	var out *lambda.GetPolicyOutput
	err := d.read("GetPolicy", qualified(name, qualifier), func() (err error) {
		out, err = d.api.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String(name), Qualifier: optional(qualifier)})
		return err
	})
	switch {
	case isNotFound(err):
		return have, nil
	case err != nil:
		return nil, err
	}
	var p struct{ Statement []struct{ Sid string } }
	if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &p); err != nil {
		return nil, fmt.Errorf("reading the resource policy of %s: %w", qualified(name, qualifier), err)
	}
	for _, s := range p.Statement {
		have[s.Sid] = true
	}
	return have, nil
}

// removePublic removes the two permissions of a public URL, those of them
// the policy has, saying why.
func (d *deployer) removePublic(ctx context.Context, name, qualifier string, have map[string]bool, why string) error {
	for _, sid := range []string{SidURL, SidInvoke} {
		if !have[sid] {
			continue
		}
		d.res.Action = orUpdate(d.res.Action, d.o.DryRun)
		err := d.write("RemovePermission", qualified(name, qualifier)+" "+sid+" ("+why+")", func() error {
			_, err := d.api.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: aws.String(name), Qualifier: optional(qualifier), StatementId: aws.String(sid)})
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// permissions gives a public URL the two permissions anyone needs to call
// it, or takes them back from a URL that is no longer public, on the
// alias. aliasExisted: the alias was there before this deploy, so it may
// have a policy.
func (d *deployer) permissions(ctx context.Context, fn Function, aliasExisted bool) error {
	public := fn.URLAuth == spec.URLAuthNone
	if !public && !aliasExisted {
		return nil
	}
	have := map[string]bool{}
	if aliasExisted {
		var err error
		if have, err = d.policy(ctx, fn.Name, Alias); err != nil {
			return err
		}
	}
	if !public {
		return d.removePublic(ctx, fn.Name, Alias, have, "the URL is no longer public")
	}
	name, qualifier := aws.String(fn.Name), aws.String(Alias)
	perms := []struct {
		sid string
		in  *lambda.AddPermissionInput
	}{
		{SidURL, &lambda.AddPermissionInput{
			FunctionName: name, Qualifier: qualifier, StatementId: aws.String(SidURL), Action: aws.String("lambda:InvokeFunctionUrl"),
			Principal: aws.String("*"), FunctionUrlAuthType: types.FunctionUrlAuthTypeNone,
		}},
		{SidInvoke, &lambda.AddPermissionInput{
			FunctionName: name, Qualifier: qualifier, StatementId: aws.String(SidInvoke), Action: aws.String("lambda:InvokeFunction"),
			Principal: aws.String("*"), InvokedViaFunctionUrl: aws.Bool(true),
		}},
	}
	for _, p := range perms {
		if have[p.sid] {
			continue
		}
		d.res.Action = orUpdate(d.res.Action, d.o.DryRun)
		err := d.write("AddPermission", fmt.Sprintf("%s %s (%s for everyone: the URL is public)", qualified(fn.Name, Alias), p.sid, aws.ToString(p.in.Action)), func() error {
			_, err := d.api.AddPermission(ctx, p.in)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Endpoint is a function URL and how a caller authenticates to it.
type Endpoint struct {
	URL string
	// IAM is true when the URL's auth type is AWS_IAM: every request must
	// be signed with Signature Version 4 (see SigningTransport).
	IAM bool
}

// URL returns the function URL of the alias Alias of the Lambda function
// called name.
func URL(ctx context.Context, api API, name string) (Endpoint, error) {
	out, err := (&recorder{}).urlConfig(ctx, api, name, Alias)
	if err != nil {
		return Endpoint{}, err
	}
	if out == nil {
		return Endpoint{}, fmt.Errorf("the Lambda function %q has no function URL on its alias %s (it does not exist, or an earlier cortex deployed it): deploy it with cortex deploy --target lambda", name, Alias)
	}
	return Endpoint{URL: aws.ToString(out.FunctionUrl), IAM: out.AuthType == types.FunctionUrlAuthTypeAwsIam}, nil
}

// maskSecrets returns err with every secret value of fn replaced by ***,
// or err itself when its text holds none.
func maskSecrets(err error, fn Function) error {
	msg := err.Error()
	masked := msg
	for _, name := range fn.Secrets {
		if v := fn.Env[name]; v != "" {
			masked = strings.ReplaceAll(masked, v, "***")
		}
	}
	if masked == msg {
		return err
	}
	return errors.New(masked)
}
