package lambda_test

// Like lambda_test.go, these run Deploy's versions and alias, and
// Rollback, through the real SDK client against lambdatest.Fake: AWS cannot run
// here.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/packager/deploy/lambda"
	"github.com/cortexfn/cortex/packager/deploy/lambda/lambdatest"
)

// releases is a fake holding iris deployed n times, each with a new zip
// ("zip 1" ... "zip n"), so versions 1..n with the alias at n.
func releases(t *testing.T, n int, auth string) (*lambdatest.Fake, lambda.API) {
	t.Helper()
	f := lambdatest.New()
	api := client(t, f)
	for i := 1; i <= n; i++ {
		res, err := lambda.Deploy(context.Background(), api, function(zipFile(t, fmt.Sprintf("zip %d", i)), auth), fast)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "deployed version", res.Version, fmt.Sprint(i))
	}
	f.Reset()
	return f, api
}

func TestRollback(t *testing.T) {
	tests := []struct {
		name     string
		version  string
		pageSize int
		want     string
		calls    []string
	}{
		{"previous", "", 50, "2", []string{"GetAlias", "ListVersionsByFunction", "UpdateAlias", "GetFunctionUrlConfig:live"}},
		{"named", "1", 50, "1", []string{"GetAlias", "ListVersionsByFunction", "UpdateAlias", "GetFunctionUrlConfig:live"}},
		// $LATEST and three versions, two a page.
		{"versions over pages", "", 2, "2", []string{"GetAlias", "ListVersionsByFunction", "ListVersionsByFunction", "UpdateAlias", "GetFunctionUrlConfig:live"}},
		{"the version it serves", "3", 50, "3", []string{"GetAlias", "ListVersionsByFunction", "GetFunctionUrlConfig:live"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, api := releases(t, 3, "NONE")
			f.PageSize = tt.pageSize
			var progress bytes.Buffer
			res, err := lambda.Rollback(context.Background(), api, "iris", lambda.RollbackOptions{Version: tt.version, Progress: &progress})
			if err != nil {
				t.Fatal(err)
			}
			check(t, "calls", f.Log(), tt.calls)
			check(t, "recorded calls", ops(res.Calls), unqualified(tt.calls))
			check(t, "from", res.From, "3")
			check(t, "version", res.Version, tt.want)
			check(t, "alias", f.Funcs["iris"].Aliases["live"]["FunctionVersion"], tt.want)
			check(t, "url: the same, now serving the old version", res.URL, irisURL)
			wantAction := "updated"
			if tt.want == "3" {
				wantAction = "unchanged"
			}
			check(t, "action", res.Action, wantAction)
			if wantAction == "updated" && !strings.Contains(progress.String(), "UpdateAlias iris:live (version 3 -> "+tt.want+")") {
				t.Errorf("progress:\n%s", progress.String())
			}
		})
	}
}

func TestRollbackStepsBackToTheFirst(t *testing.T) {
	f, api := releases(t, 3, "AWS_IAM")
	for _, want := range []string{"2", "1"} {
		res, err := lambda.Rollback(context.Background(), api, "iris", lambda.RollbackOptions{})
		if err != nil {
			t.Fatal(err)
		}
		check(t, "version", res.Version, want)
	}
	f.Reset()
	_, err := lambda.Rollback(context.Background(), api, "iris", lambda.RollbackOptions{})
	if !errors.Is(err, lambda.ErrNoOlderVersion) || !strings.Contains(err.Error(), "nothing to roll back to") || !strings.Contains(err.Error(), "serves version 1") {
		t.Fatalf("error %v, want ErrNoOlderVersion", err)
	}
	check(t, "no write", f.Log(), []string{"GetAlias", "ListVersionsByFunction"})
	check(t, "alias", f.Funcs["iris"].Aliases["live"]["FunctionVersion"], "1")
}

func TestRollbackUnknownVersion(t *testing.T) {
	f, api := releases(t, 3, "AWS_IAM")
	_, err := lambda.Rollback(context.Background(), api, "iris", lambda.RollbackOptions{Version: "7"})
	if err == nil || !strings.Contains(err.Error(), `no published version "7"; its versions: 1, 2, 3`) {
		t.Fatalf("error %v, want one listing the versions", err)
	}
	check(t, "no write", f.Log(), []string{"GetAlias", "ListVersionsByFunction"})
	check(t, "alias", f.Funcs["iris"].Aliases["live"]["FunctionVersion"], "3")
}

func TestRollbackDryRun(t *testing.T) {
	f, api := releases(t, 2, "AWS_IAM")
	var progress bytes.Buffer
	res, err := lambda.Rollback(context.Background(), api, "iris", lambda.RollbackOptions{DryRun: true, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "server saw reads only", f.Log(), []string{"GetAlias", "ListVersionsByFunction", "GetFunctionUrlConfig:live"})
	var plan []string
	for _, c := range res.Calls {
		plan = append(plan, fmt.Sprintf("%s planned=%v", c.Op, c.Planned))
	}
	check(t, "plan", plan, []string{"GetAlias planned=false", "ListVersionsByFunction planned=false",
		"UpdateAlias planned=true", "GetFunctionUrlConfig planned=false"})
	check(t, "result", fmt.Sprintf("%v %s %s %s", res.DryRun, res.Action, res.From, res.Version), "true update 2 1")
	check(t, "alias", f.Funcs["iris"].Aliases["live"]["FunctionVersion"], "2")
	if !strings.Contains(progress.String(), "would call UpdateAlias iris:live (version 2 -> 1)") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

func TestRollbackMissing(t *testing.T) {
	f := lambdatest.New()
	api := client(t, f)
	_, err := lambda.Rollback(context.Background(), api, "iris", lambda.RollbackOptions{})
	if !errors.Is(err, lambda.ErrNotFound) {
		t.Fatalf("error %v, want ErrNotFound", err)
	}
	check(t, "calls", f.Log(), []string{"GetAlias", "GetFunction"})

	// Deployed by an earlier cortex: no alias, no versions.
	f.Add("iris", "provided.al2023", cortexEnv, map[string]any{"cortex.function": "iris"})
	_, err = lambda.Rollback(context.Background(), api, "iris", lambda.RollbackOptions{})
	if !errors.Is(err, lambda.ErrNoAlias) || !strings.Contains(err.Error(), "deploy it again") {
		t.Fatalf("error %v, want ErrNoAlias saying to deploy again", err)
	}
}

// TestRollbackThenDeploy: a deploy after a rollback serves the deployed
// zip again. Lambda answers PublishVersion with the newest version when
// $LATEST has not changed since it was published, so the same zip makes
// no new version; a new zip does.
func TestRollbackThenDeploy(t *testing.T) {
	f, api := releases(t, 2, "AWS_IAM")
	if _, err := lambda.Rollback(context.Background(), api, "iris", lambda.RollbackOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Reset()
	res, err := lambda.Deploy(context.Background(), api, function(zipFile(t, "zip 2"), "AWS_IAM"), fast)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "calls", f.Log(), []string{"GetFunction", "GetAlias", "GetFunction:1", "PublishVersion", "UpdateAlias",
		"GetFunctionUrlConfig:live", "GetPolicy:live", "GetFunctionEventInvokeConfig:live"})
	check(t, "version", res.Version, "2")
	check(t, "action", res.Action, "updated")
	check(t, "alias", f.Funcs["iris"].Aliases["live"]["FunctionVersion"], "2")
	check(t, "versions", len(f.Funcs["iris"].Versions), 2)

	f.Reset()
	res, err = lambda.Deploy(context.Background(), api, function(zipFile(t, "zip 2"), "AWS_IAM"), fast)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "then idempotent", f.Log(), []string{"GetFunction", "GetAlias", "GetFunction:2", "GetFunctionUrlConfig:live", "GetPolicy:live", "GetFunctionEventInvokeConfig:live"})
	check(t, "then unchanged", res.Action, "unchanged")

	if _, err := lambda.Rollback(context.Background(), api, "iris", lambda.RollbackOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err = lambda.Deploy(context.Background(), api, function(zipFile(t, "zip 3"), "AWS_IAM"), fast)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "a new zip after a rollback", res.Version, "3")
}

// asEarlierCortex turns iris into what cortex left before aliases: the
// URL and its permissions on the function itself, no versions.
func asEarlierCortex(fn *lambdatest.Func) {
	fn.URLs[""] = fn.URLs["live"]
	fn.URLs[""]["FunctionUrl"] = "https://irisabc.lambda-url." + region + ".on.aws/"
	fn.Policies[""] = fn.Policies["live"]
	delete(fn.URLs, "live")
	delete(fn.Policies, "live")
	fn.Aliases = map[string]map[string]any{}
	fn.Versions, fn.Changed = nil, true
}

func TestDeployMovesAnEarlierURLToTheAlias(t *testing.T) {
	for _, auth := range []string{"NONE", "AWS_IAM"} {
		t.Run(auth, func(t *testing.T) {
			f, api := releases(t, 1, auth)
			asEarlierCortex(f.Funcs["iris"])
			var progress bytes.Buffer
			o := fast
			o.Progress = &progress
			res, err := lambda.Deploy(context.Background(), api, function(zipFile(t, "zip 1"), auth), o)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"GetFunction", "GetAlias", "GetFunctionUrlConfig", "DeleteFunctionUrlConfig", "GetPolicy"}
			if auth == "NONE" {
				want = append(want, "RemovePermission", "RemovePermission")
			}
			want = append(want, "PublishVersion", "CreateAlias", "CreateFunctionUrlConfig:live")
			if auth == "NONE" {
				want = append(want, "AddPermission:live", "AddPermission:live")
			}
			check(t, "calls", f.Log(), want)
			check(t, "url", res.URL, irisURL)
			check(t, "version", res.Version, "1")
			check(t, "action", res.Action, "updated")
			fn := f.Funcs["iris"]
			check(t, "the function's own URL is gone", fn.URLs[""], map[string]any(nil))
			check(t, "the function's own permissions are gone", len(fn.Policies[""]), 0)
			check(t, "the alias's URL auth", fn.URLs["live"]["AuthType"], auth)
			if !strings.Contains(progress.String(), "https://irisabc.lambda-url."+region+".on.aws/") ||
				!strings.Contains(progress.String(), "moves to the alias live") {
				t.Errorf("progress does not say the URL moves:\n%s", progress.String())
			}

			f.Reset()
			res, err = lambda.Deploy(context.Background(), api, function(zipFile(t, "zip 1"), auth), fast)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "then unchanged", res.Action, "unchanged")
			want = []string{"GetFunction", "GetAlias", "GetFunction:1", "GetFunctionUrlConfig:live", "GetPolicy:live", "GetFunctionEventInvokeConfig:live"}
			check(t, "then reads only", f.Log(), want)
		})
	}
}

func TestDeployDryRunOfAnUpdate(t *testing.T) {
	f, api := releases(t, 1, "NONE")
	asEarlierCortex(f.Funcs["iris"])
	o := fast
	o.DryRun = true
	res, err := lambda.Deploy(context.Background(), api, function(zipFile(t, "zip 2"), "NONE"), o)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "server saw reads only", f.Log(), []string{"GetFunction", "GetAlias", "GetFunctionUrlConfig", "GetPolicy"})
	var plan []string
	for _, c := range res.Calls {
		if c.Planned {
			plan = append(plan, c.Op+" "+c.Detail)
		}
	}
	sum := sha([]byte("zip 2"))
	check(t, "plan", plan, []string{
		"UpdateFunctionCode iris (arm64, 5-byte zip, sha256 " + sum + ")",
		"DeleteFunctionUrlConfig iris (https://irisabc.lambda-url." + region + ".on.aws/: the URL moves to the alias live)",
		"RemovePermission iris " + lambda.SidURL + " (the URL moves to the alias live)",
		"RemovePermission iris " + lambda.SidInvoke + " (the URL moves to the alias live)",
		"PublishVersion iris (code sha256 " + sum + ")",
		"CreateAlias iris:live (the published version)",
		"CreateFunctionUrlConfig iris:live (auth NONE, invoke mode BUFFERED)",
		"AddPermission iris:live " + lambda.SidURL + " (lambda:InvokeFunctionUrl for everyone: the URL is public)",
		"AddPermission iris:live " + lambda.SidInvoke + " (lambda:InvokeFunction for everyone: the URL is public)",
	})
	check(t, "nothing changed", f.Funcs["iris"].URLs["live"], map[string]any(nil))
}
