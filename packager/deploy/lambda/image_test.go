package lambda_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/spf13/pflag"

	"github.com/cortexfn/cortex/packager"
	"github.com/cortexfn/cortex/packager/deploy"
	"github.com/cortexfn/cortex/packager/deploy/lambda"
	"github.com/cortexfn/cortex/packager/deploy/lambda/lambdatest"
	"github.com/cortexfn/cortex/packager/lambdaimage"
	"github.com/cortexfn/cortex/packager/lambdazip"
	"github.com/cortexfn/cortex/packager/oci"
	"github.com/cortexfn/cortex/packager/spec"
)

// inProcessRegistry is go-containerregistry's registry, in process, as
// the Amazon ECR repository the image goes to (ECR cannot run here). It
// counts the manifests pushed to it.
func inProcessRegistry(t *testing.T) (host string, manifestPuts *atomic.Int32) {
	t.Helper()
	puts := &atomic.Int32{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "PUT" && strings.Contains(r.URL.Path, "/manifests/") {
			puts.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), puts
}

// lambdaLayout writes a small image, configured for Lambda as cortex
// package does (packager/lambdaimage), as an OCI layout, and returns it
// with the image's digest. seed makes different images.
func lambdaLayout(t *testing.T, seed int64) (string, v1.Hash) {
	t.Helper()
	img, err := random.Image(256, 2, random.WithSource(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "arm64"
	cf.Config.Entrypoint = []string{"/app/iris"}
	cf.Config.Env = []string{"PORT=8080"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	if img, err = lambdaimage.Image(img, "CORTEX_CONFIG="+lambdazip.ImageConfigPath); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "lambda-image")
	if err := oci.WriteLayout(dir, img, "latest"); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return dir, d
}

// pullFrom is what the fake asks when Lambda would pull an image: the
// registry must hold it, as one image manifest Lambda can run.
func pullFrom(uri string) error {
	ref, err := name.NewDigest(uri)
	if err != nil {
		return err
	}
	desc, err := remote.Get(ref)
	if err != nil {
		return err
	}
	if desc.MediaType.IsIndex() {
		return errors.New("the image manifest, config or layer media type is not supported")
	}
	img, err := desc.Image()
	if err != nil {
		return err
	}
	return lambdaimage.Check(img, "arm64", 0)
}

// imageFunction is the function iris as a container image function.
func imageFunction(image string) lambda.Function {
	fn := function("", "AWS_IAM")
	fn.Zip, fn.Image = "", image
	fn.Env["CORTEX_CONFIG"] = lambdazip.ImageConfigPath
	return fn
}

// TestDeployImage pushes a Lambda image to a registry and deploys it:
// CreateFunction has PackageType Image and the image by digest, where the
// registry holds it, and no runtime or handler; the same image again
// changes nothing; a new one is UpdateFunctionCode with its ImageUri and
// a new version behind the alias; a rollback serves the first image's
// version again; get shows the image.
func TestDeployImage(t *testing.T) {
	ctx := context.Background()
	host, puts := inProcessRegistry(t)
	repo := host + "/cortex/iris"
	f := lambdatest.New()
	f.PullImage = pullFrom
	api := client(t, f)

	lay1, d1 := lambdaLayout(t, 1)
	ref1, err := lambda.Push(ctx, lay1, repo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := repo + "@" + d1.String(); ref1 != want {
		t.Fatalf("pushed %s, want %s", ref1, want)
	}
	if _, err := remote.Head(mustTag(t, repo+":"+lambda.ImageTag)); err != nil {
		t.Errorf("the registry has no %s tag: %v", lambda.ImageTag, err)
	}
	res, err := lambda.Deploy(ctx, api, imageFunction(ref1), fast)
	if err != nil {
		t.Fatal(err)
	}
	create := f.Bodies["CreateFunction"]
	code, _ := create["Code"].(map[string]any)
	if create["PackageType"] != "Image" || code["ImageUri"] != ref1 || code["ZipFile"] != nil {
		t.Errorf("CreateFunction PackageType %v, Code %v; want Image and ImageUri %s", create["PackageType"], code, ref1)
	}
	if create["Runtime"] != nil || create["Handler"] != nil {
		t.Errorf("CreateFunction has runtime %v and handler %v: an image function has neither", create["Runtime"], create["Handler"])
	}
	if env := create["Environment"].(map[string]any)["Variables"].(map[string]any); env["CORTEX_CONFIG"] != lambdazip.ImageConfigPath {
		t.Errorf("CORTEX_CONFIG=%v, want %s", env["CORTEX_CONFIG"], lambdazip.ImageConfigPath)
	}
	if res.Action != "created" || res.Version != "1" || res.URL == "" {
		t.Errorf("result %+v, want created, version 1, a URL", res)
	}

	f.Reset()
	if res, err = lambda.Deploy(ctx, api, imageFunction(ref1), fast); err != nil {
		t.Fatal(err)
	}
	if res.Action != "unchanged" || strings.Contains(strings.Join(f.Log(), " "), "Update") {
		t.Errorf("the same image again: %s, calls %v; want unchanged and no update", res.Action, f.Log())
	}

	lay2, d2 := lambdaLayout(t, 2)
	ref2, err := lambda.Push(ctx, lay2, repo, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Reset()
	if res, err = lambda.Deploy(ctx, api, imageFunction(ref2), fast); err != nil {
		t.Fatal(err)
	}
	if got := f.Bodies["UpdateFunctionCode"]; got["ImageUri"] != ref2 || got["ZipFile"] != nil {
		t.Errorf("UpdateFunctionCode %v, want ImageUri %s", got, ref2)
	}
	if res.Action != "updated" || res.Version != "2" {
		t.Errorf("result %+v, want updated to version 2", res)
	}
	if pub := f.Bodies["PublishVersion"]; pub["CodeSha256"] != nil || !strings.Contains(fmt.Sprint(pub["Description"]), d2.String()) {
		t.Errorf("PublishVersion %v: want no CodeSha256 and the image's digest in the description", pub)
	}
	i, err := lambda.Get(ctx, api, "iris")
	if err != nil {
		t.Fatal(err)
	}
	if i.PackageType != "Image" || i.Image != ref2 || i.Version != "2" {
		t.Errorf("get: package %s, image %s, version %s; want Image, %s, 2", i.PackageType, i.Image, i.Version, ref2)
	}

	rb, err := lambda.Rollback(ctx, api, "iris", lambda.RollbackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rb.Version != "1" || f.Funcs["iris"].Images["1"] != ref1 {
		t.Errorf("rollback to %s, whose image is %s; want 1 and %s", rb.Version, f.Funcs["iris"].Images["1"], ref1)
	}
	if n := puts.Load(); n != 2 {
		t.Errorf("%d manifests pushed, want 2 (one per image)", n)
	}
}

// TestDeployImageNotPushed: Lambda refuses an image the registry does not
// hold, and the deploy says so.
func TestDeployImageNotPushed(t *testing.T) {
	host, _ := inProcessRegistry(t)
	f := lambdatest.New()
	f.PullImage = pullFrom
	_, d := lambdaLayout(t, 3)
	_, err := lambda.Deploy(context.Background(), client(t, f), imageFunction(host+"/cortex/iris@"+d.String()), fast)
	if err == nil || !strings.Contains(err.Error(), "InvalidParameterValueException") {
		t.Errorf("deploy of an image not pushed: %v, want Lambda's refusal", err)
	}
}

// TestDeployPackageTypeSwitch: Lambda cannot change a function's package
// type, so a deploy that would is refused before it changes anything,
// with the fix.
func TestDeployPackageTypeSwitch(t *testing.T) {
	ctx := context.Background()
	host, _ := inProcessRegistry(t)
	lay, _ := lambdaLayout(t, 4)
	ref, err := lambda.Push(ctx, lay, host+"/cortex/iris", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		first, then lambda.Function
		have, want  string
	}{
		{"zip to image", function(zipFile(t, "zip"), "AWS_IAM"), imageFunction(ref), "Zip", "Image"},
		{"image to zip", imageFunction(ref), function(zipFile(t, "zip"), "AWS_IAM"), "Image", "Zip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := lambdatest.New()
			api := client(t, f)
			if _, err := lambda.Deploy(ctx, api, tc.first, fast); err != nil {
				t.Fatal(err)
			}
			f.Reset()
			_, err := lambda.Deploy(ctx, api, tc.then, fast)
			var pe *lambda.PackageTypeError
			if !errors.Is(err, lambda.ErrPackageType) || !errors.As(err, &pe) || string(pe.Have) != tc.have || string(pe.Want) != tc.want {
				t.Fatalf("got %v, want a PackageTypeError from %s to %s", err, tc.have, tc.want)
			}
			for _, want := range []string{"cortex delete iris --target lambda", "targets.lambda.package: " + strings.ToLower(tc.have)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q does not say %q", err, want)
				}
			}
			if log := f.Log(); len(log) != 1 || log[0] != "GetFunction" {
				t.Errorf("calls %v, want only GetFunction", log)
			}
		})
	}
}

// TestPushRefusesWhatLambdaRefuses: Push checks the image against
// Lambda's rules before it sends anything.
func TestPushRefusesWhatLambdaRefuses(t *testing.T) {
	host, puts := inProcessRegistry(t)
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config.Entrypoint = "linux", "amd64", []string{"/app/iris"}
	img, _ = mutate.ConfigFile(img, cf)
	idx, err := oci.Index(img)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "index")
	if err := oci.WriteIndexLayout(dir, idx, "latest"); err != nil {
		t.Fatal(err)
	}
	if _, err := lambda.Push(context.Background(), dir, host+"/cortex/iris", nil); !errors.Is(err, lambdaimage.ErrNotLambda) {
		t.Errorf("push of an image index: %v, want ErrNotLambda", err)
	}
	noEntry := filepath.Join(t.TempDir(), "noentry")
	cf.Config.Entrypoint = nil
	bare, _ := mutate.ConfigFile(img, cf)
	if err := oci.WriteLayout(noEntry, bare, "latest"); err != nil {
		t.Fatal(err)
	}
	if _, err := lambda.Push(context.Background(), noEntry, host+"/cortex/iris", nil); !errors.Is(err, lambdaimage.ErrNotLambda) || !strings.Contains(err.Error(), "entrypoint") {
		t.Errorf("push of an image without an entrypoint: %v, want ErrNotLambda naming the entrypoint", err)
	}
	if n := puts.Load(); n != 0 {
		t.Errorf("%d manifests pushed, want none", n)
	}
}

// TestPlatformDeploysImage is cortex deploy --target lambda --registry R
// for a function whose cortex.yaml asks for an image, through the
// platform's flags and the standard AWS configuration (pointed at the
// fake with AWS_ENDPOINT_URL_LAMBDA): the packaged image is pushed to R
// and the function created from it there.
func TestPlatformDeploysImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a function: -short")
	}
	host, puts := inProcessRegistry(t)
	f := lambdatest.New()
	f.PullImage = func(uri string) error {
		ref, err := name.NewDigest(uri)
		if err != nil {
			return err
		}
		_, err = remote.Head(ref)
		return err
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	home := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_LAMBDA": srv.URL, "AWS_REGION": lambdatest.Region, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY": "secret", "AWS_CONFIG_FILE": filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "credentials"), "DOCKER_CONFIG": home, "AWS_PROFILE": "",
	} {
		t.Setenv(k, v)
	}

	dir := filepath.Join(t.TempDir(), "echo-go")
	if err := os.CopyFS(dir, os.DirFS("../../../samples/echo-go")); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "dist"))
	p := filepath.Join(dir, spec.FileName)
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, append(b, "targets: {lambda: {package: image}}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := spec.Load(dir)
	if err != nil {
		t.Fatal(err)
	}

	fs := pflag.NewFlagSet("deploy", pflag.ContinueOnError)
	open := lambda.Platform().Flags(fs, deploy.CommandDeploy)
	if err := fs.Parse([]string{"--registry", host + "/cortex", "--role", fast.Role}); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	tg := open(&progress)
	r, err := tg.Deploy(context.Background(), &deploy.Function{Dir: dir, Spec: s, Build: packager.BuildOptions{}}, deploy.DeployOptions{})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	var out, errOut bytes.Buffer
	if err := r.WriteText(&out, &errOut); err != nil {
		t.Fatal(err)
	}
	code, _ := f.Bodies["CreateFunction"]["Code"].(map[string]any)
	uri, _ := code["ImageUri"].(string)
	if f.Bodies["CreateFunction"]["PackageType"] != "Image" || !strings.HasPrefix(uri, host+"/cortex/echo-go@sha256:") {
		t.Errorf("CreateFunction %v, want PackageType Image and an image in %s/cortex/echo-go", f.Bodies["CreateFunction"], host)
	}
	if puts.Load() != 1 || !strings.Contains(progress.String(), "pushed "+uri) {
		t.Errorf("%d manifests pushed; progress:\n%s", puts.Load(), progress.String())
	}
	if !strings.Contains(out.String(), "lambda-url") {
		t.Errorf("stdout %q, want the function URL", out.String())
	}
}

// TestRegistryFlagShared: --registry is one flag that Knative's image and
// Lambda's share; Lambda adds it only when no other platform has.
func TestRegistryFlagShared(t *testing.T) {
	fs := pflag.NewFlagSet("deploy", pflag.ContinueOnError)
	fs.String("registry", "", "repository to push the image to")
	lambda.Platform().Flags(fs, deploy.CommandDeploy) // would panic on a second --registry
	if f := fs.Lookup("registry"); !strings.Contains(f.Usage, "targets.lambda.registry") {
		t.Errorf("--registry's help %q does not mention targets.lambda.registry", f.Usage)
	}
	alone := pflag.NewFlagSet("deploy", pflag.ContinueOnError)
	lambda.Platform().Flags(alone, deploy.CommandDeploy)
	if alone.Lookup("registry") == nil {
		t.Error("no --registry when Lambda is the only platform")
	}
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

// TestDeployImageDryRun: a dry run of a new image function lists the
// CreateFunction it would make, naming the image, and makes none.
func TestDeployImageDryRun(t *testing.T) {
	f := lambdatest.New()
	const ref = "registry.example/cortex/iris@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	o := fast
	o.DryRun = true
	res, err := lambda.Deploy(context.Background(), client(t, f), imageFunction(ref), o)
	if err != nil {
		t.Fatal(err)
	}
	var create *lambda.Call
	for i, c := range res.Calls {
		if c.Op == "CreateFunction" {
			create = &res.Calls[i]
		}
	}
	if create == nil || !create.Planned || !strings.Contains(create.Detail, "image "+ref) {
		t.Errorf("calls %+v, want a planned CreateFunction naming the image", res.Calls)
	}
	if len(f.Funcs) != 0 {
		t.Errorf("the dry run created %v", f.Funcs)
	}
}
