//go:build !nodeploy

package main

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/cortexfn/cortex/packager/deploy/lambda/lambdatest"
	"github.com/cortexfn/cortex/packager/sign"
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

// TestDeployVerifiesTheSignature: with --verify, cortex deploy refuses an
// image that is not signed with the key's private half, pushing nothing,
// and deploys the one cortex package --sign pushed (the build is
// reproducible, so the digests agree). A client dry run needs no cluster;
// the registry is go-containerregistry's, in process.
func TestDeployVerifiesTheSignature(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a function")
	}
	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	repo := strings.TrimPrefix(reg.URL, "http://") + "/acme"
	keys := t.TempDir()
	priv, pub, err := sign.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, otherPub, err := sign.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"cosign.key": priv, "cosign.pub": pub, "other.pub": otherPub} {
		if err := os.WriteFile(filepath.Join(keys, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fn := filepath.Join(t.TempDir(), "echo-go")
	if err := os.CopyFS(fn, os.DirFS(echoDir)); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(fn, "dist"))
	deployArgs := []string{"deploy", fn, "--dry-run", "--registry", repo, "--verify", filepath.Join(keys, "cosign.pub")}

	_, errOut, err := run(t, "", deployArgs...)
	if err == nil || !strings.Contains(err.Error(), "refusing to deploy") || !strings.Contains(err.Error(), "cortex package --sign") {
		t.Fatalf("deploy --verify of an unsigned image: %v\n%s", err, errOut)
	}
	if tags, _ := crane.ListTags(repo+"/echo-go", crane.Insecure); len(tags) != 0 {
		t.Errorf("a refused deploy pushed %v", tags)
	}

	if _, errOut, err := run(t, "", "package", fn, "--registry", repo, "--sign", filepath.Join(keys, "cosign.key")); err != nil {
		t.Fatalf("package --sign: %v\n%s", err, errOut)
	}
	out, errOut, err := run(t, "", deployArgs...)
	if err != nil || !strings.Contains(errOut, "signature verified") || !strings.Contains(out, "image: "+repo+"/echo-go@sha256:") {
		t.Errorf("deploy --verify of the signed image: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	deployArgs[len(deployArgs)-1] = filepath.Join(keys, "other.pub")
	if _, errOut, err := run(t, "", deployArgs...); err == nil || !strings.Contains(err.Error(), "refusing to deploy") {
		t.Errorf("deploy --verify with another key: %v\n%s", err, errOut)
	}
	if _, errOut, err := run(t, "", "deploy", fn, "--target", "lambda", "--verify", filepath.Join(keys, "cosign.pub")); err == nil || !strings.Contains(err.Error(), "--verify is for Knative") {
		t.Errorf("deploy --target lambda --verify: %v\n%s", err, errOut)
	}
}

// TestDeployDryRunNeedsNoCluster: a client dry run packages and prints the
// Service with no kubeconfig and no registry; a real deploy without a
// cluster fails before it packages anything.
func TestDeployDryRunNeedsNoCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a function")
	}
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	// A newcomer's cortex cache is empty; their Go build and module caches
	// are the machine's, as e2e/outside keeps them (with HOME alone moved,
	// go would compile the standard library and every module afresh: 80 s
	// of a race-instrumented test run spent on what no cortex code does).
	for _, name := range []string{"GOCACHE", "GOMODCACHE"} {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv(name, strings.TrimSpace(string(out)))
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CORTEX_CACHE", t.TempDir())
	fn := filepath.Join(t.TempDir(), "echo-go")
	if err := os.CopyFS(fn, os.DirFS(echoDir)); err != nil {
		t.Fatal(err)
	}

	_, errOut, err := run(t, "", "deploy", fn, "--registry", "example.com/acme")
	if err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Errorf("deploy without a cluster: %v, want an error about the kubeconfig", err)
	}
	if strings.Contains(errOut, "building") || strings.Contains(errOut, "assembling") {
		t.Errorf("deploy packaged before finding there is no cluster:\n%s", errOut)
	}

	out, errOut, err := run(t, "", "deploy", fn, "--dry-run", "-o", "yaml")
	if err != nil {
		t.Fatalf("deploy --dry-run: %v\n%s", err, errOut)
	}
	for _, want := range []string{"dry_run: true", "kind: Service", "name: echo-go", "image: cortex.local/echo-go@sha256:"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy --dry-run -o yaml lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := run(t, "", "deploy", fn, "--dry-run=later"); err == nil || !strings.Contains(err.Error(), "use client") {
		t.Errorf("--dry-run=later: %v", err)
	}
}
