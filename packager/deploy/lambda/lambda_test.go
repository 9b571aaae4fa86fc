package lambda_test

// AWS itself cannot run here (no account, no network), so these tests run
// the deployer, through the real AWS SDK client and its HTTP, signing,
// retry and error decoding, against lambdatest.Fake: a local server that
// implements the part of the Lambda REST API the deployer calls, with
// Lambda's paths, status codes, error headers and asynchronous states
// (Pending -> Active after a create, InProgress -> Successful after an
// update), published versions, aliases, and the Qualifier that puts a
// function URL and resource-policy statements on an alias. The log names a
// call on a qualifier op:qualifier (GetFunctionUrlConfig:live).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/cortexfn/cortex/packager/deploy/lambda"
	"github.com/cortexfn/cortex/packager/deploy/lambda/lambdatest"
	"github.com/cortexfn/cortex/packager/spec"
)

// The fake's account and region.
const (
	region  = lambdatest.Region
	account = lambdatest.Account
)

var sha = lambdatest.SHA

// client is the real SDK client pointed at the fake, with static
// credentials and no back-off between retries (the retry count and the
// throttle handling are the SDK's own).
func client(t *testing.T, f *lambdatest.Fake) *awslambda.Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		},
	}
	return awslambda.NewFromConfig(cfg, func(o *awslambda.Options) { o.BaseEndpoint = aws.String(srv.URL) })
}

func zipFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lambda.zip")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func function(zip, auth string) lambda.Function {
	return lambda.Function{Name: "iris", Zip: zip, Arch: "arm64", Memory: 1024, Timeout: 35,
		Env: map[string]string{"CORTEX_CONFIG": "/var/task/cortex.json"}, URLAuth: auth}
}

var fast = lambda.Options{Role: "arn:aws:iam::123456789012:role/cortex", PollInterval: time.Millisecond, Timeout: 10 * time.Second}

func check(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

func TestDeployPublicCreateThenIdempotent(t *testing.T) {
	f := lambdatest.New()
	api := client(t, f)
	ctx := context.Background()
	zip := zipFile(t, "zip v1")

	res, err := lambda.Deploy(ctx, api, function(zip, "NONE"), fast)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "first deploy calls", f.Log(), []string{
		"GetFunction", "CreateFunction", "GetFunctionConfiguration", "GetFunctionConfiguration",
		"PublishVersion", "CreateAlias",
		"CreateFunctionUrlConfig:live", "AddPermission:live", "AddPermission:live",
	})
	check(t, "action", res.Action, "created")
	check(t, "version", res.Version, "1")
	check(t, "url", res.URL, irisURL)
	check(t, "publish expects the zip's code", f.Bodies["PublishVersion"]["CodeSha256"], sha([]byte("zip v1")))
	check(t, "publish says who", f.Bodies["PublishVersion"]["Description"], "cortex deploy of iris, code sha256 "+sha([]byte("zip v1")))
	check(t, "alias", f.Funcs["iris"].Aliases["live"]["FunctionVersion"], "1")
	check(t, "no URL on the function itself", f.Funcs["iris"].URLs[""], map[string]any(nil))
	check(t, "arn", res.ARN, "arn:aws:lambda:"+region+":"+account+":function:iris")

	cfg := f.Funcs["iris"].Config
	check(t, "runtime", cfg["Runtime"], "provided.al2023")
	check(t, "handler", cfg["Handler"], "bootstrap")
	check(t, "architectures", cfg["Architectures"], []any{"arm64"})
	check(t, "memory", cfg["MemorySize"], 1024.0)
	check(t, "timeout", cfg["Timeout"], 35.0)
	check(t, "role", cfg["Role"], fast.Role)
	check(t, "env", cfg["Environment"], map[string]any{"Variables": map[string]any{"CORTEX_CONFIG": "/var/task/cortex.json"}})
	check(t, "url auth", f.Funcs["iris"].URLs["live"]["AuthType"], "NONE")
	var actions []any
	for _, s := range f.Funcs["iris"].Policies["live"] {
		actions = append(actions, s["Action"])
	}
	check(t, "permissions", actions, []any{"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"})
	check(t, "InvokeFunction only via the URL", f.Bodies["AddPermission"]["InvokedViaFunctionUrl"], true)

	// The same zip and spec again: reads only.
	f.Reset()
	res, err = lambda.Deploy(ctx, api, function(zip, "NONE"), fast)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "second deploy calls", f.Log(), []string{"GetFunction", "GetAlias", "GetFunction:1", "GetFunctionUrlConfig:live", "GetPolicy:live", "GetFunctionEventInvokeConfig:live"})
	check(t, "second action", res.Action, "unchanged")
	check(t, "second version", res.Version, "1")
	check(t, "second url", res.URL, irisURL)
	check(t, "versions", len(f.Funcs["iris"].Versions), 1)
}

func TestDeployUpdate(t *testing.T) {
	f := lambdatest.New()
	api := client(t, f)
	ctx := context.Background()
	if _, err := lambda.Deploy(ctx, api, function(zipFile(t, "zip v1"), "AWS_IAM"), fast); err != nil {
		t.Fatal(err)
	}
	// Someone adds an environment variable; the update keeps it.
	f.Funcs["iris"].Config["Environment"] = map[string]any{"Variables": map[string]any{"CORTEX_CONFIG": "/var/task/cortex.json", "LOG_LEVEL": "debug"}}
	f.Reset()
	fn := function(zipFile(t, "zip v2"), "AWS_IAM")
	fn.Memory = 2048
	res, err := lambda.Deploy(ctx, api, fn, fast)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "update calls", f.Log(), []string{
		"GetFunction",
		"UpdateFunctionConfiguration", "GetFunctionConfiguration", "GetFunctionConfiguration",
		"UpdateFunctionCode", "GetFunctionConfiguration", "GetFunctionConfiguration",
		"GetAlias", "PublishVersion", "UpdateAlias",
		"GetFunctionUrlConfig:live", "GetPolicy:live", "GetFunctionEventInvokeConfig:live",
	})
	check(t, "action", res.Action, "updated")
	check(t, "version", res.Version, "2")
	check(t, "alias", f.Funcs["iris"].Aliases["live"]["FunctionVersion"], "2")
	check(t, "version 2's memory", f.Funcs["iris"].Versions[1]["MemorySize"], 2048.0)
	check(t, "version 1 keeps its code", f.Funcs["iris"].Versions[0]["CodeSha256"], sha([]byte("zip v1")))
	check(t, "the alias update says which revision it changes", f.Bodies["UpdateAlias"]["RevisionId"], "rev-1")
	cfg := f.Funcs["iris"].Config
	check(t, "memory", cfg["MemorySize"], 2048.0)
	check(t, "code", cfg["CodeSha256"], sha([]byte("zip v2")))
	check(t, "env keeps others' variables", cfg["Environment"], map[string]any{"Variables": map[string]any{"CORTEX_CONFIG": "/var/task/cortex.json", "LOG_LEVEL": "debug"}})
	check(t, "the update body names only the changed fields", keys(f.Bodies["UpdateFunctionConfiguration"]), []string{"MemorySize"})
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDeployPublicThenPrivate(t *testing.T) {
	f := lambdatest.New()
	api := client(t, f)
	ctx := context.Background()
	zip := zipFile(t, "zip v1")
	if _, err := lambda.Deploy(ctx, api, function(zip, "NONE"), fast); err != nil {
		t.Fatal(err)
	}
	f.Reset()
	res, err := lambda.Deploy(ctx, api, function(zip, "AWS_IAM"), fast)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "calls", f.Log(), []string{"GetFunction", "GetAlias", "GetFunction:1",
		"GetFunctionUrlConfig:live", "UpdateFunctionUrlConfig:live", "GetPolicy:live", "RemovePermission:live", "RemovePermission:live", "GetFunctionEventInvokeConfig:live"})
	check(t, "auth", f.Funcs["iris"].URLs["live"]["AuthType"], "AWS_IAM")
	check(t, "policy", len(f.Funcs["iris"].Policies["live"]), 0)
	check(t, "action", res.Action, "updated")
	check(t, "no new version for a URL change", res.Version, "1")
}

func TestDeployThrottlingIsRetried(t *testing.T) {
	f := lambdatest.New()
	f.FailNext("CreateFunction", 2, 429, "TooManyRequestsException", "Rate exceeded")
	f.FailNext("GetFunctionConfiguration", 1, 429, "TooManyRequestsException", "Rate exceeded")
	res, err := lambda.Deploy(context.Background(), client(t, f), function(zipFile(t, "zip"), "AWS_IAM"), fast)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "calls", f.Log(), []string{
		"GetFunction", "CreateFunction", "CreateFunction", "CreateFunction",
		"GetFunctionConfiguration", "GetFunctionConfiguration", "GetFunctionConfiguration",
		"PublishVersion", "CreateAlias", "CreateFunctionUrlConfig:live",
	})
	check(t, "action", res.Action, "created")
}

func TestDeployAccessDenied(t *testing.T) {
	f := lambdatest.New()
	msg := "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: lambda:CreateFunction on resource: arn:aws:lambda:eu-west-1:123456789012:function:iris because no identity-based policy allows the lambda:CreateFunction action"
	f.FailNext("CreateFunction", 1, 403, "AccessDeniedException", msg)
	_, err := lambda.Deploy(context.Background(), client(t, f), function(zipFile(t, "zip"), "AWS_IAM"), fast)
	var ae *lambda.AccessError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T), want an *AccessError", err, err)
	}
	check(t, "op", ae.Op, "CreateFunction")
	check(t, "code", ae.Code, "AccessDeniedException")
	for _, want := range []string{"AWS refused CreateFunction", msg, "IAM policy must allow lambda:CreateFunction"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	check(t, "not retried, nothing after it", f.Log(), []string{"GetFunction", "CreateFunction"})
}

func TestDeployBadCredentials(t *testing.T) {
	f := lambdatest.New()
	f.FailNext("GetFunction", 1, 403, "UnrecognizedClientException", "The security token included in the request is invalid.")
	_, err := lambda.Deploy(context.Background(), client(t, f), function(zipFile(t, "zip"), "AWS_IAM"), fast)
	var ae *lambda.AccessError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "check your AWS credentials") {
		t.Fatalf("error %v, want an *AccessError about credentials", err)
	}
}

func TestDeployDryRun(t *testing.T) {
	f := lambdatest.New()
	o := fast
	o.DryRun = true
	res, err := lambda.Deploy(context.Background(), client(t, f), function(zipFile(t, "zip"), "NONE"), o)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "server saw reads only", f.Log(), []string{"GetFunction"})
	var plan []string
	for _, c := range res.Calls {
		plan = append(plan, fmt.Sprintf("%s planned=%v", c.Op, c.Planned))
	}
	check(t, "plan", plan, []string{
		"GetFunction planned=false", "CreateFunction planned=true", "PublishVersion planned=true", "CreateAlias planned=true",
		"CreateFunctionUrlConfig planned=true", "AddPermission planned=true", "AddPermission planned=true",
	})
	check(t, "action", res.Action, "create")
}

func TestDeployNeedsRoleToCreate(t *testing.T) {
	f := lambdatest.New()
	o := fast
	o.Role = ""
	_, err := lambda.Deploy(context.Background(), client(t, f), function(zipFile(t, "zip"), "AWS_IAM"), o)
	if !errors.Is(err, lambda.ErrNoRole) {
		t.Fatalf("error %v, want ErrNoRole", err)
	}
}

func TestDeployFailedUpdate(t *testing.T) {
	f := lambdatest.New()
	api := client(t, f)
	ctx := context.Background()
	if _, err := lambda.Deploy(ctx, api, function(zipFile(t, "v1"), "AWS_IAM"), fast); err != nil {
		t.Fatal(err)
	}
	f.Funcs["iris"].Config["State"] = "Failed"
	f.Funcs["iris"].Config["StateReasonCode"] = "InvalidRuntime"
	f.Funcs["iris"].Config["StateReason"] = "The runtime parameter of provided.al2 is no longer supported"
	f.Funcs["iris"].Pending = 1 << 30
	_, err := lambda.Deploy(ctx, api, function(zipFile(t, "v2"), "AWS_IAM"), fast)
	if err == nil || !strings.Contains(err.Error(), "InvalidRuntime: The runtime parameter") {
		t.Fatalf("error %v, want the state reason", err)
	}
}

func TestURL(t *testing.T) {
	f := lambdatest.New()
	api := client(t, f)
	if _, err := lambda.URL(context.Background(), api, "iris"); err == nil {
		t.Fatal("URL of a missing function: no error")
	}
	if _, err := lambda.Deploy(context.Background(), api, function(zipFile(t, "zip"), "AWS_IAM"), fast); err != nil {
		t.Fatal(err)
	}
	u, err := lambda.URL(context.Background(), api, "iris")
	check(t, "endpoint", u, lambda.Endpoint{URL: irisURL, IAM: true})
	check(t, "err", err, nil)
	if _, err := lambda.Deploy(context.Background(), api, function(zipFile(t, "zip"), "NONE"), fast); err != nil {
		t.Fatal(err)
	}
	u, err = lambda.URL(context.Background(), api, "iris")
	check(t, "public endpoint", u, lambda.Endpoint{URL: irisURL, IAM: false})
	check(t, "err", err, nil)
}

// TestDeployWaitProgress: the waits after a create print a line per state
// change, and each read is in the result's calls.
func TestDeployWaitProgress(t *testing.T) {
	f := lambdatest.New()
	var progress bytes.Buffer
	o := fast
	o.Progress = &progress
	res, err := lambda.Deploy(context.Background(), client(t, f), function(zipFile(t, "zip"), "AWS_IAM"), o)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, line := range strings.Split(progress.String(), "\n") {
		if strings.HasPrefix(line, "iris: state ") {
			states = append(states, line)
		}
	}
	check(t, "state lines", states, []string{"iris: state Pending, last update InProgress", "iris: state Active, last update Successful"})
	var reads int
	for _, c := range res.Calls {
		if c.Op == "GetFunctionConfiguration" {
			reads++
		}
	}
	check(t, "GetFunctionConfiguration calls recorded", reads, 2)
}

// TestDeployWaitEnds: a function whose update never ends times the deploy
// out, saying the last state; an interrupted wait is the context's error.
func TestDeployWaitEnds(t *testing.T) {
	f := lambdatest.New()
	api := client(t, f)
	if _, err := lambda.Deploy(context.Background(), api, function(zipFile(t, "v1"), "AWS_IAM"), fast); err != nil {
		t.Fatal(err)
	}
	f.Funcs["iris"].Config["LastUpdateStatus"] = "InProgress"
	f.Funcs["iris"].Pending = 1 << 30

	o := fast
	o.Timeout = 50 * time.Millisecond
	_, err := lambda.Deploy(context.Background(), api, function(zipFile(t, "v2"), "AWS_IAM"), o)
	if want := "timed out after 50ms waiting for iris (state Active, last update InProgress)"; err == nil || err.Error() != want {
		t.Errorf("stuck update: %v, want %q", err, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err = lambda.Deploy(ctx, api, function(zipFile(t, "v2"), "AWS_IAM"), fast)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted wait: %v, want context.Canceled", err)
	}
}

// A stage's secrets (wasm.secret_env) go into the function's environment
// from the deploying command's, never into what a dry run or the result
// prints; a secret dropped from cortex.yaml leaves the function on the next
// deploy, while others' variables stay.
func TestDeploySecrets(t *testing.T) {
	f := lambdatest.New()
	api := client(t, f)
	ctx := context.Background()
	s := &spec.Spec{Name: "iris", Predictor: spec.Predictor{Type: spec.TypeONNX, Model: "model/iris.onnx"},
		Wasm: spec.Wasm{SecretEnv: []spec.SecretEnv{{Name: "API_TOKEN", Secret: "creds", Key: "token"}}}}
	s.SetDefaults()
	env := map[string]string{"API_TOKEN": "s3cr3t-value"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	if _, err := lambda.FromSpecWithSecrets(s, "x", func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "API_TOKEN") {
		t.Errorf("a missing secret: %v, want an error naming API_TOKEN", err)
	}
	fn, err := lambda.FromSpecWithSecrets(s, zipFile(t, "zip v1"), lookup)
	if err != nil {
		t.Fatal(err)
	}
	// AWS quotes the whole environment in some errors: the value is masked.
	f.FailNext("CreateFunction", 1, 400, "InvalidParameterValueException",
		`Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {"API_TOKEN":"s3cr3t-value"}`)
	if _, err := lambda.Deploy(ctx, api, fn, fast); err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), `"API_TOKEN":"***"`) {
		t.Errorf("an AWS error quoting the environment: %v, want the value masked", err)
	}
	f.Reset()
	res, err := lambda.Deploy(ctx, api, fn, fast)
	if err != nil {
		t.Fatal(err)
	}
	vars := f.Funcs["iris"].Config["Environment"].(map[string]any)["Variables"].(map[string]any)
	check(t, "the secret's value", vars["API_TOKEN"], "s3cr3t-value")
	check(t, "the secrets cortex set", vars[lambda.SecretNamesVar], "API_TOKEN")
	if b, _ := json.Marshal(res); strings.Contains(string(b), "s3cr3t") {
		t.Errorf("the result shows the secret: %s", b)
	}
	// A dry run of a change lists the calls, without the value.
	env["API_TOKEN"] = "n3w-s3cr3t"
	fn, _ = lambda.FromSpecWithSecrets(s, zipFile(t, "zip v1"), lookup)
	dry := fast
	dry.DryRun = true
	res, err = lambda.Deploy(ctx, api, fn, dry)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(res); strings.Contains(string(b), "s3cr3t") || !strings.Contains(string(b), "environment") {
		t.Errorf("the dry run shows the secret or not the change: %s", b)
	}
	// The secret leaves cortex.yaml; someone's own variable stays.
	vars["LOG_LEVEL"] = "debug"
	s.Wasm.SecretEnv = nil
	fn, _ = lambda.FromSpecWithSecrets(s, zipFile(t, "zip v2"), lookup)
	if _, err := lambda.Deploy(ctx, api, fn, fast); err != nil {
		t.Fatal(err)
	}
	check(t, "env after the secret left", f.Funcs["iris"].Config["Environment"], map[string]any{"Variables": map[string]any{"CORTEX_CONFIG": "/var/task/cortex.json", "CORTEX_LAMBDA_INVOKE_MODE": "BUFFERED", "LOG_LEVEL": "debug"}})
}

// auth's token goes into the function's environment from the deploying
// command's, like a stage's secret: masked in AWS's errors, never in the
// result; a function that requires a token behind an AWS_IAM URL, or
// with a token it would refuse, is not deployed.
func TestDeployAuthToken(t *testing.T) {
	const token = "0123456789abcdef-demo-token"
	f := lambdatest.New()
	api := client(t, f)
	ctx := context.Background()
	s := &spec.Spec{Name: "iris", Predictor: spec.Predictor{Type: spec.TypeONNX, Model: "model/iris.onnx"},
		Auth: spec.Auth{TokenEnv: "DEMO_TOKEN", Secret: "demo-token", Key: "token"}}
	s.SetDefaults()
	env := map[string]string{"DEMO_TOKEN": token}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	if _, err := lambda.FromSpecWithSecrets(s, "x", lookup); !errors.Is(err, lambda.ErrTokenWithIAM) {
		t.Errorf("a token behind an AWS_IAM URL: %v, want ErrTokenWithIAM", err)
	}
	s.Targets.Lambda.URLAuth = spec.URLAuthNone
	if _, err := lambda.FromSpecWithSecrets(s, "x", func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "auth.token_env: $DEMO_TOKEN is not set") {
		t.Errorf("a missing token: %v, want an error naming auth.token_env and DEMO_TOKEN", err)
	}
	if _, err := lambda.FromSpecWithSecrets(s, "x", func(string) (string, bool) { return "short", true }); err == nil || !strings.Contains(err.Error(), "$DEMO_TOKEN is 5 characters") || strings.Contains(err.Error(), "short") {
		t.Errorf("a short token: %v, want an error that says so without it", err)
	}
	fn, err := lambda.FromSpecWithSecrets(s, zipFile(t, "zip v1"), lookup)
	if err != nil {
		t.Fatal(err)
	}
	f.FailNext("CreateFunction", 1, 400, "InvalidParameterValueException",
		`Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {"DEMO_TOKEN":"`+token+`"}`)
	if _, err := lambda.Deploy(ctx, api, fn, fast); err == nil || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), `"DEMO_TOKEN":"***"`) {
		t.Errorf("an AWS error quoting the environment: %v, want the token masked", err)
	}
	f.Reset()
	res, err := lambda.Deploy(ctx, api, fn, fast)
	if err != nil {
		t.Fatal(err)
	}
	vars := f.Funcs["iris"].Config["Environment"].(map[string]any)["Variables"].(map[string]any)
	check(t, "the token", vars["DEMO_TOKEN"], token)
	check(t, "the secrets cortex set", vars[lambda.SecretNamesVar], "DEMO_TOKEN")
	check(t, "the URL's auth type", res.AuthType, "NONE")
	if b, _ := json.Marshal(res); strings.Contains(string(b), token) {
		t.Errorf("the result shows the token: %s", b)
	}
}
