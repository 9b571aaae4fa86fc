package lambda_test

// Like lambda_test.go, these run Get, List and Delete through the real SDK
// client against lambdatest.Fake: AWS cannot run here.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/packager/deploy/lambda"
	"github.com/cortexfn/cortex/packager/deploy/lambda/lambdatest"
)

// irisURL is the URL of iris's alias live; the fake gives the function
// itself https://irisabc.lambda-url...
const irisURL = "https://irislive.lambda-url." + region + ".on.aws/"

var cortexEnv = map[string]any{"CORTEX_CONFIG": "/var/task/cortex.json"}

// deployed is a fake holding the function iris, deployed by cortex with
// the given URL auth, and a client to it.
func deployed(t *testing.T, auth string) (*lambdatest.Fake, lambda.API) {
	t.Helper()
	f := lambdatest.New()
	api := client(t, f)
	if _, err := lambda.Deploy(context.Background(), api, function(zipFile(t, "zip"), auth), fast); err != nil {
		t.Fatal(err)
	}
	f.Reset()
	return f, api
}

func TestGet(t *testing.T) {
	for _, auth := range []string{"AWS_IAM", "NONE"} {
		t.Run(auth, func(t *testing.T) {
			f, api := deployed(t, auth)
			got, err := lambda.Get(context.Background(), api, "iris")
			if err != nil {
				t.Fatal(err)
			}
			want := &lambda.Info{
				Name: "iris", ARN: "arn:aws:lambda:" + region + ":" + account + ":function:iris",
				Version: "1", URL: irisURL, URLAuth: auth, State: "Active", LastUpdateStatus: "Successful",
				LastModified: "2026-01-01T00:00:00.000+0000", Memory: 1024, Timeout: 35, Arch: "arm64",
				Runtime: "provided.al2023", CodeSHA256: sha([]byte("zip")), PackageType: "Zip", DeployedByCortex: true,
			}
			check(t, "info", got, want)
			check(t, "calls", f.Log(), []string{"GetFunction", "GetAlias", "GetFunctionUrlConfig:live"})
		})
	}
}

func TestGetJSON(t *testing.T) {
	_, api := deployed(t, "AWS_IAM")
	i, err := lambda.Get(context.Background(), api, "iris")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(i)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "arn", "version", "url", "url_auth", "state", "last_update_status", "last_modified",
		"memory_mb", "timeout_s", "arch", "code_sha256", "deployed_by_cortex"} {
		if _, ok := m[k]; !ok {
			t.Errorf("the JSON has no %q: %s", k, b)
		}
	}
}

func TestGetFailedAndWithoutURL(t *testing.T) {
	f, api := deployed(t, "AWS_IAM")
	cfg := f.Funcs["iris"].Config
	cfg["State"], cfg["StateReasonCode"], cfg["StateReason"] = "Failed", "InvalidRuntime", "The runtime parameter of provided.al2 is no longer supported"
	cfg["LastUpdateStatus"], cfg["LastUpdateStatusReasonCode"], cfg["LastUpdateStatusReason"] = "Failed", "InvalidZipFileException", "bad zip"
	delete(f.Funcs["iris"].URLs, "live")
	got, err := lambda.Get(context.Background(), api, "iris")
	if err != nil {
		t.Fatal(err)
	}
	check(t, "state", got.State, "Failed")
	check(t, "state reason", got.StateReason, "InvalidRuntime: The runtime parameter of provided.al2 is no longer supported")
	check(t, "update reason", got.LastUpdateReason, "InvalidZipFileException: bad zip")
	check(t, "url", got.URL, "")
	check(t, "url auth", got.URLAuth, "")
}

func TestGetMissing(t *testing.T) {
	f := lambdatest.New()
	_, err := lambda.Get(context.Background(), client(t, f), "iris")
	if !errors.Is(err, lambda.ErrNotFound) {
		t.Fatalf("error %v, want ErrNotFound", err)
	}
	for _, want := range []string{`"iris"`, "region " + region, "cortex deploy --target lambda"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	check(t, "calls", f.Log(), []string{"GetFunction"})
}

func TestList(t *testing.T) {
	tests := []struct {
		name     string
		pageSize int
		calls    []string
	}{
		{"one page", 50, []string{
			"ListFunctions", "GetFunction", "GetAlias", "GetFunctionUrlConfig:live", "GetFunction",
			"GetFunction", "GetAlias", "GetFunctionUrlConfig:live",
		}},
		{"a function per page", 1, []string{
			"ListFunctions", "GetFunction", "GetAlias", "GetFunctionUrlConfig:live", // echo
			"ListFunctions", "GetFunction", // hand: no tag
			"ListFunctions", "GetFunction", "GetAlias", "GetFunctionUrlConfig:live", // iris
			"ListFunctions", // python: other runtime
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, api := deployed(t, "AWS_IAM")
			echo := function(zipFile(t, "echo zip"), "NONE")
			echo.Name = "echo"
			if _, err := lambda.Deploy(context.Background(), api, echo, fast); err != nil {
				t.Fatal(err)
			}
			f.Add("hand", "provided.al2023", cortexEnv, nil)
			f.Add("python", "python3.13", cortexEnv, map[string]any{"cortex.function": "python"})
			f.PageSize = tt.pageSize
			f.Reset()

			got, err := lambda.List(context.Background(), api)
			if err != nil {
				t.Fatal(err)
			}
			var rows []string
			for _, i := range got {
				rows = append(rows, fmt.Sprintf("%s %s %s %s %s %v", i.Name, i.State, i.Version, i.URLAuth, i.URL, i.DeployedByCortex))
			}
			check(t, "functions", rows, []string{
				"echo Active 1 NONE https://echolive.lambda-url." + region + ".on.aws/ true",
				"iris Active 1 AWS_IAM " + irisURL + " true",
			})
			check(t, "calls", f.Log(), tt.calls)
		})
	}
}

func TestListNone(t *testing.T) {
	f := lambdatest.New()
	f.Add("hand", "provided.al2023", cortexEnv, nil)
	got, err := lambda.List(context.Background(), client(t, f))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	check(t, "json", string(b), "[]")
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name  string
		auth  string
		noURL bool
		calls []string
	}{
		{"public", "NONE", false, []string{"GetFunction", "GetFunctionUrlConfig:live", "DeleteFunctionUrlConfig:live", "DeleteFunction"}},
		{"private", "AWS_IAM", false, []string{"GetFunction", "GetFunctionUrlConfig:live", "DeleteFunctionUrlConfig:live", "DeleteFunction"}},
		{"no URL", "AWS_IAM", true, []string{"GetFunction", "GetFunctionUrlConfig:live", "DeleteFunction"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, api := deployed(t, tt.auth)
			if tt.noURL {
				delete(f.Funcs["iris"].URLs, "live")
			}
			var progress bytes.Buffer
			res, err := lambda.Delete(context.Background(), api, "iris", lambda.DeleteOptions{Progress: &progress})
			if err != nil {
				t.Fatal(err)
			}
			check(t, "calls", f.Log(), tt.calls)
			check(t, "recorded calls", ops(res.Calls), unqualified(tt.calls))
			check(t, "arn", res.ARN, "arn:aws:lambda:"+region+":"+account+":function:iris")
			if _, ok := f.Funcs["iris"]; ok {
				t.Error("the function is still there")
			}
			if !strings.Contains(progress.String(), "DeleteFunction iris") || !strings.Contains(progress.String(), "deleted Lambda function iris") {
				t.Errorf("progress:\n%s", progress.String())
			}

			// Again: the function is gone, and Delete says so.
			f.Reset()
			res, err = lambda.Delete(context.Background(), api, "iris", lambda.DeleteOptions{})
			if !errors.Is(err, lambda.ErrNotFound) || !strings.Contains(err.Error(), `no Lambda function "iris"`) {
				t.Fatalf("second delete: %v, want ErrNotFound", err)
			}
			check(t, "second delete result", res, (*lambda.DeleteResult)(nil))
			check(t, "second delete calls", f.Log(), []string{"GetFunction"})
		})
	}
}

// unqualified is the fake's log without the qualifiers, as Call.Op has it.
func unqualified(log []string) []string {
	var out []string
	for _, op := range log {
		op, _, _ = strings.Cut(op, ":")
		out = append(out, op)
	}
	return out
}

func ops(cs []lambda.Call) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Op)
	}
	return out
}

func TestDeleteURLAlreadyGone(t *testing.T) {
	f, api := deployed(t, "NONE")
	f.FailNext("DeleteFunctionUrlConfig", 1, 404, "ResourceNotFoundException", "The resource you requested does not exist.")
	if _, err := lambda.Delete(context.Background(), api, "iris", lambda.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	check(t, "calls", f.Log(), []string{"GetFunction", "GetFunctionUrlConfig:live", "DeleteFunctionUrlConfig:live", "DeleteFunction"})
}

func TestDeleteDryRun(t *testing.T) {
	f, api := deployed(t, "NONE")
	var progress bytes.Buffer
	res, err := lambda.Delete(context.Background(), api, "iris", lambda.DeleteOptions{DryRun: true, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "server saw reads only", f.Log(), []string{"GetFunction", "GetFunctionUrlConfig:live"})
	var plan []string
	for _, c := range res.Calls {
		plan = append(plan, fmt.Sprintf("%s planned=%v", c.Op, c.Planned))
	}
	check(t, "plan", plan, []string{
		"GetFunction planned=false", "GetFunctionUrlConfig planned=false",
		"DeleteFunctionUrlConfig planned=true", "DeleteFunction planned=true",
	})
	check(t, "dry run", res.DryRun, true)
	if fn := f.Funcs["iris"]; fn == nil || fn.URLs["live"] == nil || len(fn.Policies["live"]) != 2 {
		t.Errorf("a dry run changed the function: %+v", fn)
	}
	if !strings.Contains(progress.String(), "would call DeleteFunction iris") || strings.Contains(progress.String(), "deleted") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

func TestDeleteNotCortex(t *testing.T) {
	f := lambdatest.New()
	api := client(t, f)
	f.Add("hand", "provided.al2023", cortexEnv, map[string]any{"team": "ml"})
	_, err := lambda.Delete(context.Background(), api, "hand", lambda.DeleteOptions{})
	if !errors.Is(err, lambda.ErrNotCortex) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("error %v, want ErrNotCortex naming --force", err)
	}
	check(t, "refused before any write", f.Log(), []string{"GetFunction"})
	if f.Funcs["hand"] == nil {
		t.Fatal("deleted without Force")
	}
	if _, err := lambda.Delete(context.Background(), api, "hand", lambda.DeleteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if f.Funcs["hand"] != nil {
		t.Error("Force did not delete it")
	}
}

func TestDeleteTagsHidden(t *testing.T) {
	f, api := deployed(t, "AWS_IAM")
	f.HideTags = true
	_, err := lambda.Delete(context.Background(), api, "iris", lambda.DeleteOptions{})
	var ae *lambda.AccessError
	if !errors.As(err, &ae) || ae.Op != "ListTags" || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("error %v, want an *AccessError for ListTags naming --force", err)
	}
	check(t, "refused before any write", f.Log(), []string{"GetFunction"})
	if _, err := lambda.Delete(context.Background(), api, "iris", lambda.DeleteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if f.Funcs["iris"] != nil {
		t.Error("Force did not delete it")
	}
}

func TestManageAccessDenied(t *testing.T) {
	tests := []struct {
		name  string
		op    string
		call  func(lambda.API) error
		calls []string
	}{
		{"get", "GetFunction", func(api lambda.API) error {
			_, err := lambda.Get(context.Background(), api, "iris")
			return err
		}, []string{"GetFunction"}},
		{"list", "ListFunctions", func(api lambda.API) error {
			_, err := lambda.List(context.Background(), api)
			return err
		}, []string{"ListFunctions"}},
		{"delete", "DeleteFunction", func(api lambda.API) error {
			_, err := lambda.Delete(context.Background(), api, "iris", lambda.DeleteOptions{})
			return err
		}, []string{"GetFunction", "GetFunctionUrlConfig:live", "DeleteFunctionUrlConfig:live", "DeleteFunction"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, api := deployed(t, "AWS_IAM")
			msg := "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: lambda:" + tt.op
			f.FailNext(tt.op, 1, 403, "AccessDeniedException", msg)
			err := tt.call(api)
			var ae *lambda.AccessError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T), want an *AccessError", err, err)
			}
			check(t, "op", ae.Op, tt.op)
			for _, want := range []string{"AWS refused " + tt.op, msg, "IAM policy must allow lambda:" + tt.op} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			check(t, "not retried, nothing after it", f.Log(), tt.calls)
		})
	}
}
