//go:build !race

// Built only without -race, as e2e_test.go: these tests cross-compile,
// package full-size images and run them under qemu; make test runs them in
// test-fullsize (go test ./packager/ without -race).

package packager_test

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/zip"

	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/packager"
)

// The arm64 tests cross-build on the amd64 CI machine and run what they
// built under qemu-user (Debian's qemu-user-static), with the real parts
// `make tools` installs: the C cross compiler, Debian's arm64 cross
// packages the built-in arm64 base is assembled from, skopeo. A missing
// part fails the test with the command that installs it; nothing is
// skipped for it.
//
// ONNX Runtime reads /proc/cpuinfo when it loads (its cpuinfo library),
// and under qemu-user that file is the amd64 host's, which it cannot
// parse: the library crashes in dlopen. qemu-user looks every absolute
// path up in its sysroot (-L) first, so each sysroot here gets an
// arm64-shaped proc/cpuinfo (an AWS Graviton2, Neoverse N1) and the
// function reads that one. No mount namespace is needed, so the tests
// run as any user.

// armCPUInfo is /proc/cpuinfo as a Graviton2 (Neoverse N1) core shows it.
const armCPUInfo = "processor\t: 0\nBogoMIPS\t: 243.75\n" +
	"Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs\n" +
	"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n"

// armTools are what the arm64 tests need on PATH, with the Debian package
// that has each (make tools installs them all).
var armTools = [][2]string{
	{"qemu-aarch64-static", "qemu-user-static"},
	{"aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu libc6-dev-arm64-cross"},
	{"skopeo", "skopeo"},
}

func needArmTools(t *testing.T) {
	t.Helper()
	if goruntime.GOARCH != "amd64" {
		t.Skipf("these tests cross-build arm64 on an amd64 machine; this one is %s", goruntime.GOARCH)
	}
	for _, tool := range armTools {
		if _, err := exec.LookPath(tool[0]); err != nil {
			t.Fatalf("%s is not on PATH: run make tools (apt-get install %s)", tool[0], tool[1])
		}
	}
}

// armIris is samples/iris packaged once per test binary for amd64 and
// arm64 (an image index, whose Lambda zip is amd64: iris's
// targets.lambda.arch is x86_64), and armIrisLambda its arm64 Lambda zip
// alone (--arch arm64 --outputs lambda: the binary comes from the cache).
var armIris = sync.OnceValues(func() ([2]*packager.Result, error) {
	tmp, err := os.MkdirTemp("", "cortex-arm64-iris-")
	if err != nil {
		return [2]*packager.Result{}, err
	}
	sharedDirs = append(sharedDirs, tmp)
	multi, err := packager.Package(context.Background(), iris, packager.Options{Arches: []string{"amd64", "arm64"}, Out: filepath.Join(tmp, "multi")})
	if err != nil {
		return [2]*packager.Result{}, fmt.Errorf("--arch amd64,arm64: %w", err)
	}
	lambda, err := packager.Package(context.Background(), iris, packager.Options{Arches: []string{"arm64"}, Outputs: []packager.Output{packager.OutputLambda}, Out: filepath.Join(tmp, "lambda")})
	if err != nil {
		return [2]*packager.Result{}, fmt.Errorf("--arch arm64 --outputs lambda: %w", err)
	}
	return [2]*packager.Result{multi, lambda}, nil
})

// armIrisResults returns the packaged iris: the multi-platform package,
// and the arm64 Lambda-only one.
func armIrisResults(t *testing.T) (multi, lambda *packager.Result) {
	t.Helper()
	needArmTools(t)
	r, err := armIris()
	if err != nil {
		t.Fatalf("packaging iris: %v", err)
	}
	return r[0], r[1]
}

// TestMultiArchIndex: --arch amd64,arm64 writes an OCI image index naming
// both platforms, each image's config has its architecture, skopeo reads
// the index, and the Knative Service names the index by digest.
func TestMultiArchIndex(t *testing.T) {
	r, _ := armIrisResults(t)
	im := r.Image
	if !im.Index || len(im.Platforms) != 2 {
		t.Fatalf("image: got index %v with %d platforms, want an index of 2", im.Index, len(im.Platforms))
	}
	raw, err := exec.Command("skopeo", "inspect", "--raw", "oci:"+im.Layout+":latest").Output()
	if err != nil {
		t.Fatalf("skopeo inspect --raw: %v", err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatalf("skopeo inspect --raw printed no index: %v\n%s", err, raw)
	}
	if got, want := string(idx.MediaType), "application/vnd.oci.image.index.v1+json"; got != want {
		t.Errorf("media type: got %s, want %s", got, want)
	}
	if got, want := "sha256:"+sha256Hex(raw), im.Digest; got != want {
		t.Errorf("the index skopeo read is %s, the result says %s", got, want)
	}
	var platforms []string
	for i, d := range idx.Manifests {
		if d.Platform == nil {
			t.Fatalf("manifest %d has no platform field", i)
		}
		platforms = append(platforms, d.Platform.OS+"/"+d.Platform.Architecture)
		if got, want := d.Digest.String(), im.Platforms[i].Digest; got != want {
			t.Errorf("%s: digest %s, result says %s", d.Platform.Architecture, got, want)
		}
		// Each image's own config, read through skopeo by platform.
		out, err := exec.Command("skopeo", "inspect", "--override-arch", d.Platform.Architecture, "--config", "oci:"+im.Layout+":latest").Output()
		if err != nil {
			t.Fatalf("skopeo inspect --config (%s): %v", d.Platform.Architecture, err)
		}
		var cf v1.ConfigFile
		if err := json.Unmarshal(out, &cf); err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != d.Platform.Architecture || cf.OS != "linux" {
			t.Errorf("the %s image's config says %s/%s", d.Platform.Architecture, cf.OS, cf.Architecture)
		}
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Errorf("platforms: got %v, want %v", platforms, want)
	}
	manifest, err := os.ReadFile(r.Knative.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(manifest), "image: "+im.Ref) {
		t.Errorf("the Knative Service does not name the index %s:\n%s", im.Ref, manifest)
	}
	// The arm64 image's SBOM records the Debian arm64 cross packages its
	// base was assembled from, at the versions installed.
	arm := im.Platforms[1]
	if arm.Base.Ref != "builtin-cc" {
		t.Errorf("arm64 base: got %s, want builtin-cc", arm.Base.Ref)
	}
	doc, err := os.ReadFile(arm.SBOM.File)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"libc6-arm64-cross", "libstdc++6-arm64-cross", "libgcc-s1-arm64-cross"} {
		v, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", p).Output()
		if err != nil {
			t.Fatalf("%s is not installed: run make tools", p)
		}
		want := p + "=" + string(v)
		if !slices.Contains(arm.Base.Packages, want) {
			t.Errorf("arm64 base packages %v lack %s", arm.Base.Packages, want)
		}
		purlName := strings.ReplaceAll(p, "+", "%2B")
		if !strings.Contains(string(doc), "pkg:deb/debian/"+purlName+"@") {
			t.Errorf("the arm64 image's SBOM does not list %s", p)
		}
	}
}

// TestMultiArchPush: the index is pushed as one reference, with both
// images, to a real registry served in-process.
func TestMultiArchPush(t *testing.T) {
	needArmTools(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	r := pkg(t, iris, packager.Options{Arches: []string{"amd64", "arm64"}, Registry: host + "/acme", Outputs: []packager.Output{packager.OutputPush}})
	if r.Pushed != r.Image.Ref {
		t.Errorf("pushed %s, want the index %s", r.Pushed, r.Image.Ref)
	}
	ref, err := name.ParseReference(host + "/acme/iris:latest")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatalf("the tag is not an index: %v", err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range m.Manifests {
		got = append(got, d.Platform.Architecture)
		if _, err := idx.Image(d.Digest); err != nil {
			t.Errorf("the %s image was not pushed: %v", d.Platform.Architecture, err)
		}
	}
	if want := []string{"amd64", "arm64"}; !slices.Equal(got, want) {
		t.Errorf("pushed platforms %v, want %v", got, want)
	}
	for _, p := range r.Image.Platforms {
		if p.SBOM == nil || p.SBOM.Pushed == "" {
			t.Errorf("the %s image's SBOM was not pushed", p.Arch)
		}
	}
}

// TestArm64Iris runs the arm64 iris binary under qemu-user: from the
// arm64 image's root file system as an HTTP server answering OIP, and
// from the unzipped Lambda zip answering a function URL event through
// the Runtime API double.
func TestArm64Iris(t *testing.T) {
	r, lambda := armIrisResults(t)
	rootfs := armRootfs(t, r.Image.Layout, "arm64")
	if m := elfMachine(t, filepath.Join(rootfs, "app", "iris")); m != elf.EM_AARCH64 {
		t.Fatalf("the image's binary is %s, want AArch64", m)
	}
	oip := `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`
	t.Run("oip", func(t *testing.T) {
		base := armHTTP(t, rootfs, filepath.Join(rootfs, "app"), "iris")
		resp, err := http.Post(base+"/v2/models/iris/infer", "application/json", strings.NewReader(oip))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"name":"label","datatype":"INT64","shape":[1],"data":[0]`) {
			t.Fatalf("OIP: got %d %s, want 200 with label 0 (setosa)", resp.StatusCode, body)
		}
	})
	t.Run("lambda", func(t *testing.T) {
		status, body := armLambda(t, lambda, rootfs, nil, "/v2/models/iris/infer", oip)
		if status != http.StatusOK || !strings.Contains(body, `"data":[0]`) {
			t.Fatalf("function URL event: got %d %s, want 200 with label 0", status, body)
		}
	})
}

// TestArm64IrisWasm packages iris-wasm for arm64 alone and runs it under
// qemu-user the same way. Its pre and post stages are one Go package, so
// one identical file: it is shipped once, in the image and in the zip.
//
// Under qemu-user, wazero compiling the stage (a Go program built for
// wasip1) took 20 of each run's 22 s, two thirds of the test: the two runs
// share a compilation cache (the config's wasm_cache_dir, as cortex serve
// sets it), the one the tests keep between runs (testutil.CacheDir; wazero
// keys it by the module's bytes, its version and the architecture), so
// a stage is compiled under emulation once, not in every run. What the
// test checks is the arm64 function answering through its stages;
// compiling a stage is runtime/wasm's tests' subject.
func TestArm64IrisWasm(t *testing.T) {
	needArmTools(t)
	r := pkg(t, "../samples/iris-wasm", packager.Options{Arches: []string{"arm64"}})
	if r.Image.Index || r.Image.Layout == "" {
		t.Fatalf("one architecture: got index %v, layout %q; want one image in a layout", r.Image.Index, r.Image.Layout)
	}
	var wasm []string
	zr, err := zip.OpenReader(r.Lambda.Zip)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct{ Pre, Post string }
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, ".wasm") {
			wasm = append(wasm, f.Name)
		}
		if f.Name == "cortex.json" {
			rc, _ := f.Open()
			json.NewDecoder(rc).Decode(&cfg)
			rc.Close()
		}
	}
	zr.Close()
	if len(wasm) != 1 || cfg.Pre != wasm[0] || cfg.Post != wasm[0] {
		t.Errorf("the zip has wasm files %v and cortex.json pre %q post %q; want one file named by both", wasm, cfg.Pre, cfg.Post)
	}
	rootfs := armRootfs(t, r.Image.Layout, "arm64")
	stages, _ := filepath.Glob(filepath.Join(rootfs, "app", "wasm", "*.wasm"))
	if len(stages) != 1 {
		t.Errorf("the image has stages %v, want one", stages)
	}
	in := `{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}`
	wasmCache := testutil.CacheDir("wazero")
	t.Run("http", func(t *testing.T) {
		setWasmCache(t, filepath.Join(rootfs, "app", packager.ConfigName), wasmCache)
		base := armHTTP(t, rootfs, filepath.Join(rootfs, "app"), "iris-wasm")
		resp, err := http.Post(base+"/predict", "application/json", strings.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"class":"setosa"`) {
			t.Fatalf("predict: got %d %s, want 200 with setosa", resp.StatusCode, body)
		}
	})
	t.Run("lambda", func(t *testing.T) {
		status, body := armLambda(t, r, rootfs, func(task string) {
			setWasmCache(t, filepath.Join(task, packager.ConfigName), wasmCache)
		}, "/predict", in)
		if status != http.StatusOK || !strings.Contains(body, `"class":"setosa"`) {
			t.Fatalf("function URL event: got %d %s, want 200 with setosa", status, body)
		}
	})
}

// setWasmCache sets wasm_cache_dir in the function config at p to dir,
// leaving every other value as the packager wrote it.
func setWasmCache(t *testing.T, p, dir string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	if cfg["wasm_cache_dir"], err = json.Marshal(dir); err != nil {
		t.Fatal(err)
	}
	if b, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// armRootfs extracts the image for arch from the OCI layout (an image or
// an index of images) into a directory, with an arm64 proc/cpuinfo for
// qemu-user to show the function (see the top of this file).
func armRootfs(t *testing.T, lay, arch string) string {
	t.Helper()
	top, err := layout.ImageIndexFromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	img := findImage(t, top, arch)
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode).Perm()|0o200)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("the image has %s of type %c: the packager writes files and directories only", h.Name, h.Typeflag)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "proc", "cpuinfo"), []byte(armCPUInfo), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// findImage finds the image for linux/arch in an index, looking into the
// indexes it names.
func findImage(t *testing.T, idx v1.ImageIndex, arch string) v1.Image {
	t.Helper()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return findImage(t, child, arch)
		case d.MediaType.IsImage() && d.ArtifactType != "application/vnd.cyclonedx+json":
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Architecture == arch {
				return img
			}
		}
	}
	t.Fatalf("no linux/%s image in the layout", arch)
	return nil
}

func elfMachine(t *testing.T, p string) elf.Machine {
	t.Helper()
	f, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return f.Machine
}

// armStart runs the arm64 executable exe under qemu-user with sysroot as
// its root for absolute paths (-L: the loader, the C libraries and
// proc/cpuinfo come from there), in dir, with only env, and kills it when
// the test ends.
func armStart(t *testing.T, sysroot, dir, exe string, env ...string) (exited <-chan struct{}, out *testutil.SyncBuffer) {
	t.Helper()
	cmd := exec.Command("qemu-aarch64-static", "-L", sysroot, exe)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}, env...)
	out = &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("%s under qemu-user:\n%s", filepath.Base(exe), out.String())
		}
	})
	return done, out
}

// armHTTP runs the image's function (app/NAME, with app/cortex.json) as
// the image runs it, an HTTP server on $PORT, and returns its URL once it
// is ready.
func armHTTP(t *testing.T, rootfs, app, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	exited, _ := armStart(t, rootfs, app, filepath.Join(app, name),
		"PORT="+port, "CORTEX_HOST=127.0.0.1", "CORTEX_CONFIG="+filepath.Join(app, "cortex.json"))
	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case <-exited:
			t.Fatal("the function exited before it was ready")
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the function was not ready after two minutes")
		}
	}
}

// armLambda unzips the Lambda zip as Lambda does into a task directory and
// runs its bootstrap under qemu-user as provided.al2023 runs it (in the
// task directory, lib/ on the library path, the Runtime API double's
// address in $AWS_LAMBDA_RUNTIME_API), then sends it one function URL
// event (aws-lambda-go's captured one, with this path and body) and
// returns the status and body it answered. The C libraries come from
// sysroot, standing in for the runtime's own /lib64. prepare, when not
// nil, may change the unzipped task directory before the function starts.
func armLambda(t *testing.T, r *packager.Result, sysroot string, prepare func(task string), path, body string) (int, string) {
	t.Helper()
	task := filepath.Join(t.TempDir(), "task")
	testutil.Unzip(t, r.Lambda.Zip, task)
	if prepare != nil {
		prepare(task)
	}
	if m := elfMachine(t, filepath.Join(task, "bootstrap")); m != elf.EM_AARCH64 {
		t.Fatalf("the zip's bootstrap is %s, want AArch64", m)
	}
	api := testutil.NewLambdaAPI(t, "arn:aws:lambda:us-east-1:123456789012:function:"+r.Function)
	exited, out := armStart(t, sysroot, task, filepath.Join(task, "bootstrap"),
		"LAMBDA_TASK_ROOT="+task, "LD_LIBRARY_PATH="+filepath.Join(task, "lib"),
		"AWS_LAMBDA_FUNCTION_NAME="+r.Function, "AWS_LAMBDA_RUNTIME_API="+api.Addr())
	// Under emulation the init (ONNX Runtime, a WebAssembly stage's
	// compilation) takes longer than the double waits for the first
	// poll: wait for the function to say it is ready first.
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(out.String(), `"msg":"ready"`) {
		select {
		case <-exited:
			t.Fatal("the function exited before it was ready")
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the function was not ready after three minutes")
		}
	}
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(functionURLCapture(t), &ev); err != nil {
		t.Fatal(err)
	}
	ev.RawPath, ev.RequestContext.HTTP.Path, ev.RequestContext.HTTP.Method = path, path, http.MethodPost
	ev.RawQueryString, ev.QueryStringParameters = "", nil
	ev.Headers = map[string]string{"content-type": "application/json", "content-length": strconv.Itoa(len(body))}
	ev.Body, ev.IsBase64Encoded = body, false
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	_, res := api.Invoke(t, "arm64-1", payload, 2*time.Minute)
	if res.Kind != testutil.LambdaResponse {
		t.Fatalf("the function posted a %s: %s", res.Kind, res.Body)
	}
	var answer events.LambdaFunctionURLResponse
	if err := json.Unmarshal(res.Body, &answer); err != nil {
		t.Fatalf("the function answered no function URL response: %v\n%s", err, res.Body)
	}
	return answer.StatusCode, answer.Body
}

// functionURLCapture is the function URL event aws-lambda-go captured
// (its events/testdata), read from the module cache.
func functionURLCapture(t *testing.T) []byte {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-lambda-go").Output()
	if err != nil {
		t.Fatalf("locating aws-lambda-go: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "events", "testdata", "lambda-urls-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h.Hex
}
