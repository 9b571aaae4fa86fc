//go:build !nodeploy

package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/cortexfn/cortex/packager/deploy/lambda/lambdatest"
)

// TestDeployLambdaImage is cortex deploy --target lambda --registry R for
// a function whose cortex.yaml asks for a container image: --registry is
// the one flag Knative's deploy has too; the image goes to
// R/echo-go:lambda (go-containerregistry's registry in process, as the
// ECR repository), the function is created with PackageType Image and the
// image by digest (lambdatest.Fake, as AWS cannot run here), and dist/
// holds the image layout and no zip.
func TestDeployLambdaImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a function")
	}
	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	f := lambdatest.New()
	srv := httptest.NewServer(f)
	defer srv.Close()
	fakeAWS(t, srv.URL)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	fn := filepath.Join(t.TempDir(), "echo-go")
	if err := os.CopyFS(fn, os.DirFS(echoDir)); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(fn, "dist"))
	p := filepath.Join(fn, "cortex.yaml")
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, append(b, "targets: {lambda: {package: image}}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}

	_, errOut, err := run(t, "", "deploy", fn, "--target", "lambda", "--registry", host+"/cortex", "--role", "arn:aws:iam::123456789012:role/cortex")
	if err != nil {
		t.Fatalf("deploy --target lambda: %v\n%s", err, errOut)
	}
	dig, err := crane.Digest(host + "/cortex/echo-go:lambda")
	if err != nil {
		t.Fatalf("the registry has no image: %v", err)
	}
	create := f.Bodies["CreateFunction"]
	code, _ := create["Code"].(map[string]any)
	if create["PackageType"] != "Image" || code["ImageUri"] != host+"/cortex/echo-go@"+dig {
		t.Errorf("CreateFunction PackageType %v, Code %v; want Image and %s/cortex/echo-go@%s", create["PackageType"], code, host, dig)
	}
	for _, name := range []string{"lambda-image", "template.yaml"} {
		if _, err := os.Stat(filepath.Join(fn, "dist", name)); err != nil {
			t.Errorf("dist/%s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(fn, "dist", "lambda.zip")); err == nil {
		t.Error("dist/ holds lambda.zip: the image replaces it")
	}
}
