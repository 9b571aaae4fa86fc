//go:build !nodeploy

package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/packager/deploy/lambda/lambdatest"
)

// TestDeployLambdaWritesTheZipOnly deploys echo-go with --target lambda
// and checks what it leaves in dist/: the zip, its SAM template and the
// summary, and nothing of the image (no oci/, image.tar or knative.yaml). AWS cannot run here: the
// deploy goes through the real AWS SDK client to lambdatest.Fake, the
// fake packager/deploy/lambda's tests run against.
func TestDeployLambdaWritesTheZipOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a function")
	}
	f := lambdatest.New()
	srv := httptest.NewServer(f)
	defer srv.Close()
	fakeAWS(t, srv.URL)
	fn := filepath.Join(t.TempDir(), "echo-go")
	if err := os.CopyFS(fn, os.DirFS(echoDir)); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(fn, "dist"))

	out, errOut, err := run(t, "", "deploy", fn, "--target", "lambda", "--role", "arn:aws:iam::123456789012:role/cortex")
	if err != nil {
		t.Fatalf("deploy --target lambda: %v\n%s", err, errOut)
	}
	if want := "https://echo-golive.lambda-url." + lambdatest.Region + ".on.aws/\n"; out != want {
		t.Errorf("stdout %q, want the URL %q", out, want)
	}
	if want := "created Lambda function echo-go: the alias live serves version 1 (URL auth AWS_IAM)"; !strings.Contains(errOut, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut)
	}

	entries, err := os.ReadDir(filepath.Join(fn, "dist"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	for _, want := range []string{"lambda.zip", "template.yaml", "summary.json"} {
		if !slices.Contains(got, want) {
			t.Errorf("dist/ holds %v, without %s", got, want)
		}
	}
	// What only the image, or the Knative Service made of it, writes.
	for _, image := range []string{"oci", "image.tar", "knative.yaml"} {
		if slices.Contains(got, image) {
			t.Errorf("dist/ holds %v, with %s: a Lambda deploy built the image", got, image)
		}
	}

	zip, err := os.ReadFile(filepath.Join(fn, "dist", "lambda.zip"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Funcs["echo-go"].Config["CodeSha256"], lambdatest.SHA(zip); got != want {
		t.Errorf("the function's code %v, want dist/lambda.zip's %s", got, want)
	}
	if got, want := strings.Join(f.Log(), " "), "GetFunction CreateFunction GetFunctionConfiguration GetFunctionConfiguration "+
		"PublishVersion CreateAlias CreateFunctionUrlConfig:live"; got != want {
		t.Errorf("calls:\n got %s\nwant %s", got, want)
	}
}
