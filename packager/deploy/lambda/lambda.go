package lambda

import (
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

	"github.com/cortexfn/cortex/packager/lambdazip"
	"github.com/cortexfn/cortex/packager/spec"
)

// API is the part of the Lambda client Deploy, Get, List, Delete and URL
// call; *lambda.Client implements it.
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
}

var _ API = (*lambda.Client)(nil)

// The fixed parts of every function cortex deploys.
const (
	Runtime = types.RuntimeProvidedal2023
	Handler = "bootstrap"
	// TagFunction tags the function with its cortex name.
	TagFunction = "cortex.function"
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
	// Arch is x86_64 or arm64.
	Arch string
	// Memory in MB, Timeout in seconds.
	Memory, Timeout int32
	// Env is the function's environment.
	Env map[string]string
	// URLAuth is AWS_IAM or NONE (public).
	URLAuth string
}

// FromSpec is the Function cortex.yaml describes, from the zip at zip.
func FromSpec(s *spec.Spec, zip string) Function {
	return Function{
		Name:    s.Name,
		Zip:     zip,
		Arch:    s.Targets.Lambda.Arch,
		Memory:  int32(s.Targets.Lambda.Memory),
		Timeout: int32(lambdazip.Timeout(s)),
		Env:     map[string]string{"CORTEX_CONFIG": lambdazip.ConfigPath},
		URLAuth: s.Targets.Lambda.URLAuth,
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
	Action   string `json:"action"`
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

// urlConfig reads the function's URL config: nil when it has none.
func (r *recorder) urlConfig(ctx context.Context, api API, name string) (*lambda.GetFunctionUrlConfigOutput, error) {
	var out *lambda.GetFunctionUrlConfigOutput
	err := r.read("GetFunctionUrlConfig", name, func() (err error) {
		out, err = api.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(name)})
		return err
	})
	if isNotFound(err) {
		return nil, nil
	}
	return out, err
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
func Deploy(ctx context.Context, api API, fn Function, o Options) (*Result, error) {
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
	zip, err := os.ReadFile(fn.Zip)
	if err != nil {
		return nil, fmt.Errorf("reading the Lambda zip: %w", err)
	}
	sum := sha256.Sum256(zip)
	codeSHA := base64.StdEncoding.EncodeToString(sum[:])
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
		err = d.write("CreateFunction", fmt.Sprintf("%s (%s, %s, %d MB, %ds, %d-byte zip)", fn.Name, Runtime, fn.Arch, fn.Memory, fn.Timeout, len(zip)), func() error {
			out, err := api.CreateFunction(ctx, &lambda.CreateFunctionInput{
				FunctionName:  name,
				Role:          aws.String(o.Role),
				Runtime:       Runtime,
				Handler:       aws.String(Handler),
				Architectures: arch,
				MemorySize:    aws.Int32(fn.Memory),
				Timeout:       aws.Int32(fn.Timeout),
				Environment:   &types.Environment{Variables: fn.Env},
				Code:          &types.FunctionCode{ZipFile: zip},
				PackageType:   types.PackageTypeZip,
				Description:   aws.String("Cortex function " + fn.Name),
				Tags:          map[string]string{TagFunction: fn.Name},
			})
			if err == nil {
				d.res.ARN = aws.ToString(out.FunctionArn)
			}
			return err
		})
		if err != nil {
			return d.res, err
		}
		if err := d.waitReady(ctx, fn.Name); err != nil {
			return d.res, err
		}
	} else {
		c := cur.Configuration
		d.res.ARN = aws.ToString(c.FunctionArn)
		if c.LastUpdateStatus == types.LastUpdateStatusInProgress || c.State == types.StatePending {
			// Lambda refuses a change while another is in progress.
			if err := d.waitReady(ctx, fn.Name); err != nil {
				return d.res, err
			}
		}
		env := map[string]string{}
		if c.Environment != nil {
			maps.Copy(env, c.Environment.Variables)
		}
		maps.Copy(env, fn.Env)
		var changes []string
		upd := &lambda.UpdateFunctionConfigurationInput{FunctionName: name}
		if c.Runtime != Runtime {
			upd.Runtime, changes = Runtime, append(changes, "runtime")
		}
		if aws.ToString(c.Handler) != Handler {
			upd.Handler, changes = aws.String(Handler), append(changes, "handler")
		}
		if aws.ToInt32(c.MemorySize) != fn.Memory {
			upd.MemorySize, changes = aws.Int32(fn.Memory), append(changes, "memory")
		}
		if aws.ToInt32(c.Timeout) != fn.Timeout {
			upd.Timeout, changes = aws.Int32(fn.Timeout), append(changes, "timeout")
		}
		if c.Environment == nil || !maps.Equal(c.Environment.Variables, env) {
			upd.Environment, changes = &types.Environment{Variables: env}, append(changes, "environment")
		}
		if o.Role != "" && aws.ToString(c.Role) != o.Role {
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
			if err := d.waitReady(ctx, fn.Name); err != nil {
				return d.res, err
			}
		}
		if aws.ToString(c.CodeSha256) != codeSHA || !slices.Equal(c.Architectures, arch) {
			d.res.Action = action(o.DryRun, "update")
			err := d.write("UpdateFunctionCode", fmt.Sprintf("%s (%s, %d-byte zip, sha256 %s)", fn.Name, fn.Arch, len(zip), codeSHA), func() error {
				_, err := api.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: name, ZipFile: zip, Architectures: arch})
				return err
			})
			if err != nil {
				return d.res, err
			}
			if err := d.waitReady(ctx, fn.Name); err != nil {
				return d.res, err
			}
		}
	}

	if err := d.url(ctx, fn, exists); err != nil {
		return d.res, err
	}
	if err := d.permissions(ctx, fn, exists); err != nil {
		return d.res, err
	}
	return d.res, nil
}

func action(dry bool, a string) string {
	if dry {
		return a
	}
	return a + "d"
}

// waitReady polls the function until it is Active with no update in
// progress, and reports a failed create or update with AWS's reason.
func (d *deployer) waitReady(ctx context.Context, name string) error {
	if d.o.DryRun {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	last := ""
	for {
		var c *lambda.GetFunctionConfigurationOutput
		err := d.read("GetFunctionConfiguration", name, func() (err error) {
			c, err = d.api.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("waiting for %s: %w (last: %s)", name, ctx.Err(), last)
			}
			return err
		}
		state := fmt.Sprintf("state %s, last update %s", c.State, c.LastUpdateStatus)
		if state != last {
			d.say("%s: %s", name, state)
			last = state
		}
		switch {
		case c.State == types.StateFailed:
			return fmt.Errorf("%s failed to become active: %s: %s", name, c.StateReasonCode, aws.ToString(c.StateReason))
		case c.LastUpdateStatus == types.LastUpdateStatusFailed:
			return fmt.Errorf("the update of %s failed: %s: %s", name, c.LastUpdateStatusReasonCode, aws.ToString(c.LastUpdateStatusReason))
		case c.State == types.StateActive && c.LastUpdateStatus != types.LastUpdateStatusInProgress:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s waiting for %s (%s)", d.o.Timeout, name, last)
		case <-time.After(d.o.PollInterval):
		}
	}
}

// url creates or updates the function URL config.
func (d *deployer) url(ctx context.Context, fn Function, exists bool) error {
	name := aws.String(fn.Name)
	auth := types.FunctionUrlAuthType(fn.URLAuth)
	var cur *lambda.GetFunctionUrlConfigOutput
	if exists {
		var err error
		if cur, err = d.urlConfig(ctx, d.api, fn.Name); err != nil {
			return err
		}
		if cur != nil {
			d.res.URL = aws.ToString(cur.FunctionUrl)
		}
	}
	switch {
	case cur == nil:
		d.res.Action = orUpdate(d.res.Action, d.o.DryRun)
		return d.write("CreateFunctionUrlConfig", fn.Name+" (auth "+fn.URLAuth+")", func() error {
			out, err := d.api.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: name, AuthType: auth})
			if err == nil {
				d.res.URL = aws.ToString(out.FunctionUrl)
			}
			return err
		})
	case cur.AuthType != auth:
		d.res.Action = orUpdate(d.res.Action, d.o.DryRun)
		return d.write("UpdateFunctionUrlConfig", fmt.Sprintf("%s (auth %s -> %s)", fn.Name, cur.AuthType, fn.URLAuth), func() error {
			out, err := d.api.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: name, AuthType: auth})
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

// permissions gives a public URL the two permissions anyone needs to call
// it, or takes them back from a URL that is no longer public.
func (d *deployer) permissions(ctx context.Context, fn Function, exists bool) error {
	public := fn.URLAuth == spec.URLAuthNone
	if !public && !exists {
		return nil
	}
	name := aws.String(fn.Name)
	have := map[string]bool{}
	if exists {
		var out *lambda.GetPolicyOutput
		err := d.read("GetPolicy", fn.Name, func() (err error) {
			out, err = d.api.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: name})
			return err
		})
		switch {
		case isNotFound(err):
		case err != nil:
			return err
		default:
			var p struct{ Statement []struct{ Sid string } }
			if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &p); err != nil {
				return fmt.Errorf("reading the resource policy of %s: %w", fn.Name, err)
			}
			for _, s := range p.Statement {
				have[s.Sid] = true
			}
		}
	}
	if !public {
		for _, sid := range []string{SidURL, SidInvoke} {
			if !have[sid] {
				continue
			}
			d.res.Action = orUpdate(d.res.Action, d.o.DryRun)
			err := d.write("RemovePermission", fn.Name+" "+sid+" (the URL is no longer public)", func() error {
				_, err := d.api.RemovePermission(ctx, &lambda.RemovePermissionInput{FunctionName: name, StatementId: aws.String(sid)})
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	perms := []struct {
		sid string
		in  *lambda.AddPermissionInput
	}{
		{SidURL, &lambda.AddPermissionInput{
			FunctionName: name, StatementId: aws.String(SidURL), Action: aws.String("lambda:InvokeFunctionUrl"),
			Principal: aws.String("*"), FunctionUrlAuthType: types.FunctionUrlAuthTypeNone,
		}},
		{SidInvoke, &lambda.AddPermissionInput{
			FunctionName: name, StatementId: aws.String(SidInvoke), Action: aws.String("lambda:InvokeFunction"),
			Principal: aws.String("*"), InvokedViaFunctionUrl: aws.Bool(true),
		}},
	}
	for _, p := range perms {
		if have[p.sid] {
			continue
		}
		d.res.Action = orUpdate(d.res.Action, d.o.DryRun)
		err := d.write("AddPermission", fmt.Sprintf("%s %s (%s for everyone: the URL is public)", fn.Name, p.sid, aws.ToString(p.in.Action)), func() error {
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

// URL returns the function URL of the Lambda function called name.
func URL(ctx context.Context, api API, name string) (Endpoint, error) {
	out, err := (&recorder{}).urlConfig(ctx, api, name)
	if err != nil {
		return Endpoint{}, err
	}
	if out == nil {
		return Endpoint{}, fmt.Errorf("the Lambda function %q has no function URL (or does not exist): deploy it with cortex deploy --target lambda", name)
	}
	return Endpoint{URL: aws.ToString(out.FunctionUrl), IAM: out.AuthType == types.FunctionUrlAuthTypeAwsIam}, nil
}
