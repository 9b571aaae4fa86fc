package lambda_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/packager/deploy/lambda"
	"github.com/cortexfn/cortex/packager/deploy/lambda/lambdatest"
	"github.com/cortexfn/cortex/packager/spec"
)

// TestDeployEventInvokeConfig: targets.lambda.async becomes the alias's
// event-invoke configuration (Lambda's asynchronous invoke), put once,
// left alone while it matches, replaced when it changes, and deleted when
// the section is removed.
func TestDeployEventInvokeConfig(t *testing.T) {
	f := lambdatest.New()
	api := client(t, f)
	ctx := context.Background()
	fn := function(zipFile(t, "zip v1"), "AWS_IAM")
	zero := 0
	fn.Async = &spec.LambdaAsync{MaxRetries: &zero, MaxEventAge: time.Hour,
		OnSuccess: "arn:aws:sqs:" + region + ":" + account + ":done",
		OnFailure: "arn:aws:sns:" + region + ":" + account + ":failed"}

	res, err := lambda.Deploy(ctx, api, fn, fast)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "first deploy calls", f.Log(), []string{
		"GetFunction", "CreateFunction", "GetFunctionConfiguration", "GetFunctionConfiguration",
		"PublishVersion", "CreateAlias", "CreateFunctionUrlConfig:live", "PutFunctionEventInvokeConfig:live",
	})
	check(t, "action", res.Action, "created")
	check(t, "sent", f.Bodies["PutFunctionEventInvokeConfig"], map[string]any{
		"MaximumRetryAttempts": 0.0, "MaximumEventAgeInSeconds": 3600.0,
		"DestinationConfig": map[string]any{
			"OnSuccess": map[string]any{"Destination": fn.Async.OnSuccess},
			"OnFailure": map[string]any{"Destination": fn.Async.OnFailure},
		},
	})
	if f.Funcs["iris"].EventInvoke["live"] == nil || f.Funcs["iris"].EventInvoke[""] != nil {
		t.Errorf("event-invoke configs = %v, want one on the alias live only", f.Funcs["iris"].EventInvoke)
	}

	// Unchanged: read, not written.
	f.Reset()
	if res, err = lambda.Deploy(ctx, api, fn, fast); err != nil {
		t.Fatal(err)
	}
	check(t, "unchanged deploy calls", f.Log(), []string{"GetFunction", "GetAlias", "GetFunction:1", "GetFunctionUrlConfig:live", "GetPolicy:live", "GetFunctionEventInvokeConfig:live"})
	check(t, "unchanged action", res.Action, "unchanged")

	// Changed: the whole configuration is put again; a value cortex.yaml
	// leaves out is Lambda's default, stated.
	f.Reset()
	fn.Async = &spec.LambdaAsync{OnFailure: "arn:aws:s3:::failed-events"}
	if res, err = lambda.Deploy(ctx, api, fn, fast); err != nil {
		t.Fatal(err)
	}
	check(t, "changed action", res.Action, "updated")
	check(t, "changed sent", f.Bodies["PutFunctionEventInvokeConfig"], map[string]any{
		"MaximumRetryAttempts": 2.0, "MaximumEventAgeInSeconds": 21600.0,
		"DestinationConfig": map[string]any{"OnFailure": map[string]any{"Destination": "arn:aws:s3:::failed-events"}},
	})
	var put string
	for _, c := range res.Calls {
		if c.Op == "PutFunctionEventInvokeConfig" {
			put = c.Detail
		}
	}
	if !strings.Contains(put, "max retries 0, max event age 3600s") || !strings.Contains(put, "-> max retries 2, max event age 21600s, on failure arn:aws:s3:::failed-events") {
		t.Errorf("put's detail = %q, want the old and the new configuration", put)
	}

	// A dry run without the section plans the delete and makes none.
	f.Reset()
	fn.Async = nil
	dry := fast
	dry.DryRun = true
	if res, err = lambda.Deploy(ctx, api, fn, dry); err != nil {
		t.Fatal(err)
	}
	if last := res.Calls[len(res.Calls)-1]; last.Op != "DeleteFunctionEventInvokeConfig" || !last.Planned {
		t.Errorf("dry run's last call = %+v, want a planned DeleteFunctionEventInvokeConfig", last)
	}
	if f.Funcs["iris"].EventInvoke["live"] == nil {
		t.Error("a dry run deleted the event-invoke config")
	}

	// Removed from cortex.yaml: deleted.
	f.Reset()
	if res, err = lambda.Deploy(ctx, api, fn, fast); err != nil {
		t.Fatal(err)
	}
	check(t, "removed deploy calls", f.Log(), []string{"GetFunction", "GetAlias", "GetFunction:1", "GetFunctionUrlConfig:live", "GetPolicy:live",
		"GetFunctionEventInvokeConfig:live", "DeleteFunctionEventInvokeConfig:live"})
	check(t, "removed action", res.Action, "updated")
	check(t, "configs left", len(f.Funcs["iris"].EventInvoke), 0)
}

// TestDeployEventInvokeRefused: a configuration Lambda would refuse
// stops the deploy before its first call, naming the key and the fix.
func TestDeployEventInvokeRefused(t *testing.T) {
	three := 3
	for _, tt := range []struct {
		name  string
		async spec.LambdaAsync
		want  string
	}{
		{"retries", spec.LambdaAsync{MaxRetries: &three}, "targets.lambda.async.max_retries 3 is out of range: Lambda retries an asynchronous invoke 0 to 2 times"},
		{"age", spec.LambdaAsync{MaxEventAge: 7 * time.Hour}, "targets.lambda.async.max_event_age 7h0m0s is out of range: Lambda keeps an event 60s to 6h"},
		{"destination", spec.LambdaAsync{OnSuccess: "arn:aws:s3:::bucket"}, "targets.lambda.async.on_success: \"arn:aws:s3:::bucket\" is an S3 bucket, which Lambda takes as an on_failure destination only"},
		{"not an arn", spec.LambdaAsync{OnFailure: "failed-queue"}, "targets.lambda.async.on_failure: \"failed-queue\" is not an ARN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := lambdatest.New()
			fn := function(zipFile(t, "zip"), "AWS_IAM")
			fn.Async = &tt.async
			_, err := lambda.Deploy(context.Background(), client(t, f), fn, fast)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
			check(t, "calls", f.Log(), []string(nil))
		})
	}
}

// TestFromSpecAsync: FromSpec carries targets.lambda.async, with its
// defaults, to the deploy.
func TestFromSpecAsync(t *testing.T) {
	s, err := spec.Parse([]byte("name: iris\npredictor: {type: go, path: ./p}\ntargets: {lambda: {async: {on_failure: \"arn:aws:sqs:eu-west-1:123456789012:q\"}}}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	s.SetDefaults()
	a := lambda.FromSpec(s, "x.zip").Async
	if a == nil || *a.MaxRetries != 2 || a.MaxEventAge != 6*time.Hour || a.OnFailure != "arn:aws:sqs:eu-west-1:123456789012:q" {
		t.Errorf("FromSpec's Async = %+v", a)
	}
}
