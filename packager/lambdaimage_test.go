//go:build !race

// Built only without -race, as e2e_test.go: these tests run the Lambda
// image under runc, and one packages a function of over 250 MB.

package packager_test

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/packager"
	"github.com/cortexfn/cortex/packager/lambdaimage"
	"github.com/cortexfn/cortex/packager/lambdazip"
	"github.com/cortexfn/cortex/packager/spec"
)

const echoGo = "../samples/echo-go"

// lambdaImageFunction is the echo-go sample with targets.lambda set as
// given (YAML flow mapping contents).
func lambdaImageFunction(t *testing.T, lambda string) string {
	t.Helper()
	return lambdaImageFunctionOf(t, echoGo, lambda)
}

// lambdaImageFunctionOf is a copy of the sample with targets.lambda set as
// given.
func lambdaImageFunctionOf(t *testing.T, sample, lambda string) string {
	t.Helper()
	dir := copyDir(t, sample)
	p := filepath.Join(dir, spec.FileName)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(b, "targets: {lambda: {"+lambda+"}}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestLambdaImageManifest: targets.lambda.package image writes the image
// Lambda runs, and no zip: one OCI image manifest (no index) for the
// architecture of targets.lambda.arch, gzip layers, the binary as
// entrypoint with no command, /app as working directory, CORTEX_CONFIG
// and no PORT; and a SAM template of PackageType Image whose ImageUri is
// the image in the registry given, by digest.
func TestLambdaImageManifest(t *testing.T) {
	dir := lambdaImageFunction(t, "package: image, arch: arm64")
	r := pkg(t, dir, packager.Options{Outputs: []packager.Output{packager.OutputLambda}, Registry: "registry.example/acme"})
	l := r.Lambda
	if l == nil || l.Package != spec.LambdaPackageImage || l.Image == nil || l.Zip != "" || l.Reason != "" {
		t.Fatalf("Result.Lambda = %+v, want an image asked for by cortex.yaml", l)
	}
	if _, err := os.Stat(filepath.Join(r.Out, "lambda.zip")); !os.IsNotExist(err) {
		t.Errorf("dist holds lambda.zip (%v): the image replaces it", err)
	}
	idx, err := layout.ImageIndexFromPath(l.Image.Layout)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].MediaType != types.OCIManifestSchema1 {
		t.Fatalf("the layout holds %+v, want one OCI image manifest", m.Manifests)
	}
	if got := m.Manifests[0].Digest.String(); got != l.Image.Digest {
		t.Errorf("the layout's image is %s, the result says %s", got, l.Image.Digest)
	}
	if want := "registry.example/acme/echo-go@" + l.Image.Digest; l.Image.Ref != want {
		t.Errorf("Ref = %q, want %q", l.Image.Ref, want)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	if err := lambdaimage.Check(img, "arm64", l.Image.Uncompressed); err != nil {
		t.Error(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.OS != "linux" || cf.Architecture != "arm64" || l.Image.Arch != "arm64" {
		t.Errorf("platform %s/%s (result %s), want linux/arm64", cf.OS, cf.Architecture, l.Image.Arch)
	}
	if !slices.Equal(c.Entrypoint, []string{"/app/echo-go"}) || len(c.Cmd) != 0 || c.WorkingDir != "/app" {
		t.Errorf("entrypoint %q, cmd %q, workdir %q; want [/app/echo-go], none, /app", c.Entrypoint, c.Cmd, c.WorkingDir)
	}
	if !slices.Contains(c.Env, "CORTEX_CONFIG="+lambdazip.ImageConfigPath) || slices.ContainsFunc(c.Env, func(e string) bool { return strings.HasPrefix(e, "PORT=") }) {
		t.Errorf("env %q: want CORTEX_CONFIG=%s and no PORT", c.Env, lambdazip.ImageConfigPath)
	}
	if c.Labels[lambdaimage.Label] != "image" || c.Labels["dev.cortexfn.function"] != "echo-go" {
		t.Errorf("labels %v", c.Labels)
	}
	layers, _ := img.Layers()
	if len(layers) != len(cf.History) {
		t.Errorf("%d layers, %d history entries: Lambda wants one per layer", len(layers), len(cf.History))
	}
	for i, layer := range layers {
		if mt, _ := layer.MediaType(); mt != types.OCILayer {
			t.Errorf("layer %d is %s, want gzip", i, mt)
		}
	}
	sam, err := os.ReadFile(l.Template)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PackageType: Image", "Default: \"" + l.Image.Ref + "\"", "Ref: ImageUri", "- arm64", "CORTEX_CONFIG: " + lambdazip.ImageConfigPath} {
		if !strings.Contains(string(sam), want) {
			t.Errorf("template.yaml lacks %q:\n%s", want, sam)
		}
	}
	for _, unwanted := range []string{"Runtime:", "Handler:", "CodeUri:"} {
		if strings.Contains(string(sam), unwanted) {
			t.Errorf("template.yaml has %q, which an image function has not:\n%s", unwanted, sam)
		}
	}
	if b, err := os.ReadFile(l.SBOM); err != nil || !strings.Contains(string(b), l.Image.Digest) {
		t.Errorf("the SBOM %s does not name the image %s (%v)", l.SBOM, l.Image.Digest, err)
	}
	var sum strings.Builder
	if err := r.WriteSummary(&sum); err != nil || !strings.Contains(sum.String(), "lambda    "+l.Image.Layout+" (container image "+l.Image.Digest[:19]) {
		t.Errorf("summary (%v):\n%s", err, sum.String())
	}
}

// TestLambdaImageAnswersAnEvent runs the Lambda image as Lambda would:
// umoci unpacks it, runc runs its entrypoint with a read-only root, a
// writable /tmp, a user that is not the image's, and the address of a
// Runtime API double in $AWS_LAMBDA_RUNTIME_API. The binary is its own
// runtime interface client: it asks the API for the event (a function
// URL request, as aws-lambda-go captured one, with a sample's example
// request) and posts the answer. echo-go is a static Go binary; iris an
// ONNX function, with ONNX Runtime and the C libraries in the image.
func TestLambdaImageAnswersAnEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: -short")
	}
	for _, tt := range []struct {
		sample, example, want string
	}{
		{echoGo, "greet.json", `"message":"Hello, Ada!"`},
		{iris, "setosa.json", `"model_name":"iris"`},
	} {
		name := filepath.Base(tt.sample)
		t.Run(name, func(t *testing.T) {
			dir := lambdaImageFunctionOf(t, tt.sample, "package: image")
			r := pkg(t, dir, packager.Options{Outputs: []packager.Output{packager.OutputLambda}, Tag: "e2e"})
			api := testutil.NewLambdaAPI(t, "arn:aws:lambda:us-east-1:123456789012:function:"+name)
			c := testutil.RunLambdaImage(t, r.Lambda.Image.Layout, "e2e",
				"AWS_LAMBDA_RUNTIME_API="+api.Addr(), "AWS_LAMBDA_FUNCTION_NAME="+name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024")

			var ex struct {
				Request struct {
					Path string
					Body json.RawMessage
				}
			}
			b, err := os.ReadFile(filepath.Join(tt.sample, "examples", tt.example))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &ex); err != nil {
				t.Fatal(err)
			}
			var ev events.LambdaFunctionURLRequest
			if err := json.Unmarshal(functionURLCapture(t), &ev); err != nil {
				t.Fatal(err)
			}
			body := string(ex.Request.Body)
			ev.RawPath, ev.RequestContext.HTTP.Path, ev.RequestContext.HTTP.Method = ex.Request.Path, ex.Request.Path, http.MethodPost
			ev.RawQueryString, ev.QueryStringParameters = "", nil
			ev.Headers = map[string]string{"content-type": "application/json", "content-length": strconv.Itoa(len(body))}
			ev.Body, ev.IsBase64Encoded = body, false
			payload, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			_, res := api.Invoke(t, name+"-1", payload, time.Minute)
			if res.Kind != testutil.LambdaResponse {
				t.Fatalf("the function posted a %s: %s\n%s", res.Kind, res.Body, c.Logs())
			}
			var answer events.LambdaFunctionURLResponse
			if err := json.Unmarshal(res.Body, &answer); err != nil {
				t.Fatalf("the function answered no function URL response: %v\n%s", err, res.Body)
			}
			if answer.StatusCode != 200 || !strings.Contains(answer.Body, tt.want) {
				t.Errorf("answer %d %s, want 200 with %s\n%s", answer.StatusCode, answer.Body, tt.want, c.Logs())
			}
			if exited, err := c.Exited(); exited {
				t.Errorf("the function exited after one event (%v): it should poll for the next\n%s", err, c.Logs())
			}
		})
	}
}

// TestLambdaImageChosenOverLimit: a function whose files pass the 250 MB
// Lambda allows a zip unzipped gets the image, with the reason, when
// cortex.yaml does not say; and the zip's warning, and no package, when
// it asks for a zip by name. The model is a sparse file, so the test
// writes little, and the image writer streams it.
func TestLambdaImageChosenOverLimit(t *testing.T) {
	dir := lambdaImageFunction(t, "arch: x86_64")
	editSpec(t, dir, "path: ./predictor", "path: ./predictor\n  model: weights.bin")
	f, err := os.Create(filepath.Join(dir, "weights.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(lambdazip.MaxUnzipped + 1<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()

	r := pkg(t, dir, packager.Options{Outputs: []packager.Output{packager.OutputLambda}})
	l := r.Lambda
	if l == nil || l.Package != spec.LambdaPackageImage || l.Image == nil {
		t.Fatalf("Result.Lambda = %+v (warnings %q), want the image", l, r.Warnings)
	}
	if !strings.Contains(l.Reason, "over the 250 MB Lambda allows a zip function unzipped") {
		t.Errorf("reason %q does not say which limit", l.Reason)
	}
	if l.Image.Uncompressed <= lambdazip.MaxUnzipped {
		t.Errorf("uncompressed %d, want over %d", l.Image.Uncompressed, lambdazip.MaxUnzipped)
	}
	for _, w := range r.Warnings {
		if strings.Contains(w, "no Lambda zip") {
			t.Errorf("warning %q: the image replaced the zip", w)
		}
	}

	editSpec(t, dir, "arch: x86_64", "arch: x86_64, package: zip")
	r = pkg(t, dir, packager.Options{Outputs: []packager.Output{packager.OutputLambda}})
	if r.Lambda != nil {
		t.Errorf("Result.Lambda = %+v with package zip, want none", r.Lambda)
	}
	if !slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.Contains(w, "no Lambda zip") && strings.Contains(w, "package") }) {
		t.Errorf("warnings %q: want the zip's, naming targets.lambda.package", r.Warnings)
	}
}

// TestLambdaImageSharesLayers: with every output, the Lambda image is the
// function image of targets.lambda.arch, reconfigured: the same layers,
// so a registry holding one holds the other's blobs, and no platform is
// assembled twice; the image index of two architectures stays the
// Knative image's, never the Lambda one's.
func TestLambdaImageSharesLayers(t *testing.T) {
	dir := lambdaImageFunction(t, "package: image, arch: arm64")
	r := pkg(t, dir, packager.Options{Arches: []string{"amd64", "arm64"}})
	if r.Image == nil || !r.Image.Index || r.Lambda == nil || r.Lambda.Image == nil {
		t.Fatalf("image %+v, lambda %+v: want an index and a Lambda image", r.Image, r.Lambda)
	}
	var arm *packager.ImageResult
	for _, p := range r.Image.Platforms {
		if p.Arch == "arm64" {
			arm = p
		}
	}
	idx, err := layout.ImageIndexFromPath(r.Lambda.Image.Layout)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := idx.IndexManifest()
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	if arm == nil || len(layers) != len(arm.Layers) {
		t.Fatalf("the Lambda image has %d layers, the arm64 image %+v", len(layers), arm)
	}
	for i, l := range layers {
		if d, _ := l.Digest(); d.String() != arm.Layers[i].Digest {
			t.Errorf("layer %d: %s in the Lambda image, %s in the arm64 image", i, d, arm.Layers[i].Digest)
		}
	}
	if r.Lambda.Image.Digest == arm.Digest || r.Lambda.Image.Arch != "arm64" {
		t.Errorf("Lambda image %s (%s), arm64 image %s: want another config on the same layers", r.Lambda.Image.Digest, r.Lambda.Image.Arch, arm.Digest)
	}
}

// TestLambdaImagePushed: cortex package --registry pushes the Lambda image
// beside the function image, to REGISTRY/NAME:lambda, where the SAM
// template names it by digest; its layers are the function image's, so
// only its config is uploaded for it.
func TestLambdaImagePushed(t *testing.T) {
	reg := &blobCounter{h: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/acme"
	dir := lambdaImageFunction(t, "package: image")

	r := pkg(t, dir, packager.Options{Registry: repo})
	l := r.Lambda.Image
	if want := repo + "/echo-go@" + l.Digest; l.Ref != want || l.Pushed != want {
		t.Errorf("ref %q, pushed %q; want %q", l.Ref, l.Pushed, want)
	}
	tag, err := name.NewTag(repo + "/echo-go:lambda")
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d.String() != l.Digest {
		t.Errorf("echo-go:lambda is %s, want %s", d, l.Digest)
	}
	if want := int64(len(r.Image.Layers) + 1 + 2 + 1); reg.uploads.Load() != want {
		t.Errorf("%d blobs uploaded, want %d (the image's layers and config, the SBOM and its config, the Lambda image's config)", reg.uploads.Load(), want)
	}
	if sam, _ := os.ReadFile(r.Lambda.Template); !strings.Contains(string(sam), l.Pushed) {
		t.Errorf("template.yaml does not name %s", l.Pushed)
	}
}
