package sbom_test

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/package-url/packageurl-go"

	"github.com/cortexfn/cortex"
	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/dpkg"
	"github.com/cortexfn/cortex/packager/onnxruntime"
	"github.com/cortexfn/cortex/packager/sbom"
	"github.com/cortexfn/cortex/packager/sbom/sbomtest"
	"github.com/cortexfn/cortex/packager/spec"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// linked is testdata/linked built: a Go binary whose build info lists
// modules.
var linked string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sbom-test-")
	if err != nil {
		panic(err)
	}
	linked = filepath.Join(dir, "linked")
	// -buildvcs=false: as a function binary, which is built from the SDK
	// outside any repository, the main module's version is "(devel)";
	// inside this checkout go may stamp a pseudo-version from its commit
	// (it does when GOFLAGS sets -toolexec, for one).
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", linked, "./testdata/linked")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("building testdata/linked: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testArtifact is an artifact whose binary is a Go binary with modules in
// its build info, and whose other files are small.
func testArtifact(t *testing.T) *artifact.Artifact {
	t.Helper()
	return &artifact.Artifact{
		Spec:    &spec.Spec{Name: "iris"},
		Arch:    "amd64",
		Created: time.Unix(0, 0).UTC(),
		Binary:  artifact.File{Path: "iris", Src: linked, Mode: 0o755},
		Runtime: []artifact.File{{Path: "lib/libonnxruntime.so.1", Data: []byte("ort")}},
		Models:  []artifact.File{{Path: "model/iris.onnx", Data: []byte("weights")}},
		Stages:  []artifact.File{{Path: "wasm/pre.wasm", Data: []byte("\x00asm")}},
	}
}

const imageDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func imageOutput() sbom.Output {
	return sbom.Output{
		Kind: sbom.Image, Name: "registry.example/acme/iris", Digest: imageDigest, Root: "/app",
		Packages: []dpkg.Package{{Name: "libc6", Version: "2.36-9+deb12u14"}, {Name: "libstdc++6", Version: "12.2.0-14+deb12u1"}},
		Files:    []string{"/etc/ssl/certs/ca-certificates.crt@sha256:" + sum([]byte("ca"))},
	}
}

// TestImageSBOM: the image's SBOM passes the CycloneDX 1.6 schema and
// cyclonedx-go's decoder, and lists every Go module of the binary, the Go
// standard library, ONNX Runtime, the Debian packages and the other files
// with their versions and digests.
func TestImageSBOM(t *testing.T) {
	fn, err := sbom.Read(testArtifact(t))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := fn.JSON(imageOutput())
	if err != nil {
		t.Fatal(err)
	}
	bom, err := sbomtest.Validate(doc)
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}

	md := bom.Metadata
	if md == nil || md.Component == nil || md.Timestamp != "1970-01-01T00:00:00Z" {
		t.Fatalf("metadata %+v, want the image as its component, at the artifact's time", md)
	}
	purl, err := packageurl.FromString(md.Component.PackageURL)
	if c := md.Component; err != nil || c.Type != cdx.ComponentTypeContainer || c.Name != "registry.example/acme/iris" || c.Version != imageDigest ||
		purl.Type != "oci" || purl.Name != "iris" || purl.Version != imageDigest || purl.Qualifiers.Map()["repository_url"] != "registry.example/acme/iris" {
		t.Errorf("subject %+v (purl %v)", c, err)
	}
	if tools := md.Tools; tools == nil || tools.Components == nil || (*tools.Components)[0].Name != "cortex" || (*tools.Components)[0].Version != cortex.Version {
		t.Errorf("tools %+v, want cortex %s", tools, cortex.Version)
	}

	// Every module the binary was linked from, as its build info says.
	bi, err := buildinfo.ReadFile(linked)
	if err != nil {
		t.Fatal(err)
	}
	if len(bi.Deps) < 2 {
		t.Fatalf("testdata/linked lists modules %v, want uuid and packageurl-go", bi.Deps)
	}
	for _, d := range bi.Deps {
		m := d
		if d.Replace != nil && d.Replace.Version != "" {
			m = d.Replace
		}
		c := sbomtest.Component(bom, m.Path)
		if c == nil || c.Version != m.Version || c.Type != cdx.ComponentTypeLibrary || !strings.HasPrefix(c.PackageURL, "pkg:golang/") || !strings.HasSuffix(c.PackageURL, "@"+strings.ReplaceAll(m.Version, "+", "%2B")) {
			t.Errorf("module %s %s: component %+v", m.Path, m.Version, c)
		}
	}
	if c := sbomtest.Component(bom, "stdlib"); c == nil || c.Version != bi.GoVersion || c.PackageURL != "pkg:golang/stdlib@"+strings.TrimPrefix(bi.GoVersion, "go") {
		t.Errorf("stdlib: %+v, want %s", c, bi.GoVersion)
	}
	// The main module is cortex itself, built from source: the SDK's
	// version.
	if c := sbomtest.Component(bom, bi.Main.Path); c == nil || bi.Main.Path != "github.com/cortexfn/cortex" || c.Version != cortex.Version {
		t.Errorf("main module %s: %+v, want version %s", bi.Main.Path, c, cortex.Version)
	}

	for _, tc := range []struct {
		name, version, purl, sha256, path string
		typ                               cdx.ComponentType
	}{
		{name: "iris", typ: cdx.ComponentTypeApplication, path: "/app/iris", sha256: fileSum(t, linked)},
		{name: "onnxruntime", version: onnxruntime.Version, purl: "pkg:npm/onnxruntime-node@" + onnxruntime.Version, typ: cdx.ComponentTypeLibrary, sha256: sum([]byte("ort")), path: "/app/lib/libonnxruntime.so.1"},
		{name: "libc6", version: "2.36-9+deb12u14", purl: "pkg:deb/", typ: cdx.ComponentTypeLibrary},
		{name: "libstdc++6", version: "12.2.0-14+deb12u1", purl: "pkg:deb/", typ: cdx.ComponentTypeLibrary},
		{name: "iris.onnx", typ: cdx.ComponentTypeMachineLearningModel, sha256: sum([]byte("weights")), path: "/app/model/iris.onnx"},
		{name: "pre.wasm", typ: cdx.ComponentTypeFile, sha256: sum([]byte("\x00asm")), path: "/app/wasm/pre.wasm"},
		{name: "ca-certificates.crt", typ: cdx.ComponentTypeFile, sha256: sum([]byte("ca")), path: "/etc/ssl/certs/ca-certificates.crt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sbomtest.Component(bom, tc.name)
			if c == nil {
				t.Fatalf("no component %s", tc.name)
			}
			if c.Type != tc.typ || c.Version != tc.version || !strings.HasPrefix(c.PackageURL, tc.purl) {
				t.Errorf("got %s %s %s, want %s %s %s...", c.Type, c.Version, c.PackageURL, tc.typ, tc.version, tc.purl)
			}
			if tc.sha256 != "" && (c.Hashes == nil || (*c.Hashes)[0] != cdx.Hash{Algorithm: cdx.HashAlgoSHA256, Value: tc.sha256}) {
				t.Errorf("hashes %+v, want SHA-256 %s", c.Hashes, tc.sha256)
			}
			if tc.path != "" && (c.Properties == nil || !slices.Contains(*c.Properties, cdx.Property{Name: "cortex:path", Value: tc.path})) {
				t.Errorf("properties %+v, want cortex:path %s", c.Properties, tc.path)
			}
		})
	}
	if c := sbomtest.Component(bom, "libc6"); c != nil && !strings.Contains(c.PackageURL, "@2.36-9%2Bdeb12u14") {
		t.Errorf("libc6's purl %s does not carry its version, escaped", c.PackageURL)
	}

	// The binary depends on every module; the image holds the binary.
	deps := map[string][]string{}
	for _, d := range *bom.Dependencies {
		deps[d.Ref] = *d.Dependencies
	}
	if !slices.Contains(deps[md.Component.BOMRef], "binary:iris") {
		t.Errorf("the image's dependencies %v lack the binary", deps[md.Component.BOMRef])
	}
	if got, want := len(deps["binary:iris"]), len(bi.Deps)+2; got != want { // and stdlib and the main module
		t.Errorf("the binary depends on %d components, want %d", got, want)
	}

	// The same inputs give the same bytes.
	again, err := fn.JSON(imageOutput())
	if err != nil || !bytes.Equal(doc, again) {
		t.Errorf("a second SBOM of the same output differs (%v)", err)
	}
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sum(b)
}

// TestZipSBOM: files copied from the build machine are named by their
// Debian package when dpkg owns them, and by their digest when not.
func TestZipSBOM(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("no dpkg-query on this machine")
	}
	lib, err := filepath.EvalSymlinks("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")
	if err != nil {
		t.Skipf("no libstdc++ to look up: %v", err)
	}
	version, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "libstdc++6").Output()
	if err != nil {
		t.Skipf("libstdc++6 is not a Debian package here: %v", err)
	}
	own := filepath.Join(t.TempDir(), "libgcc_s.so.1")
	if err := os.WriteFile(own, []byte("built elsewhere"), 0o644); err != nil {
		t.Fatal(err)
	}
	fn, err := sbom.Read(testArtifact(t))
	if err != nil {
		t.Fatal(err)
	}
	zipSum := sum([]byte("zip"))
	doc, err := fn.JSON(sbom.Output{Kind: sbom.Zip, Name: "lambda.zip", Digest: "sha256:" + zipSum, Binary: "bootstrap", Copied: []artifact.File{
		{Path: "lib/libstdc++.so.6", Src: lib}, {Path: "lib/libgcc_s.so.1", Src: own},
	}})
	if err != nil {
		t.Fatal(err)
	}
	bom, err := sbomtest.Validate(doc)
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	if c := bom.Metadata.Component; c.Name != "lambda.zip" || c.Type != cdx.ComponentTypeFile || (*c.Hashes)[0].Value != zipSum {
		t.Errorf("subject %+v, want lambda.zip and its digest", c)
	}
	if c := sbomtest.Component(bom, "libstdc++6"); c == nil || c.Version != string(version) || !strings.HasPrefix(c.PackageURL, "pkg:deb/") {
		t.Errorf("libstdc++6: %+v, want version %s", c, version)
	}
	if c := sbomtest.Component(bom, "libgcc_s.so.1"); c == nil || (*c.Hashes)[0].Value != sum([]byte("built elsewhere")) ||
		!slices.Contains(*c.Properties, cdx.Property{Name: "cortex:path", Value: "lib/libgcc_s.so.1"}) {
		t.Errorf("libgcc_s.so.1 (no package): %+v", c)
	}
	if c := sbomtest.Component(bom, "bootstrap"); c == nil || !slices.Contains(*c.Properties, cdx.Property{Name: "cortex:path", Value: "bootstrap"}) {
		t.Errorf("the binary in the zip: %+v", c)
	}
	if c := sbomtest.Component(bom, "onnxruntime"); c == nil || !slices.Contains(*c.Properties, cdx.Property{Name: "cortex:path", Value: "lib/libonnxruntime.so.1"}) {
		t.Errorf("ONNX Runtime in the zip: %+v", c)
	}
}

// TestOutputRefused: an SBOM names its output by a sha256 digest.
func TestOutputRefused(t *testing.T) {
	fn, err := sbom.Read(testArtifact(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		out  sbom.Output
	}{
		{"no digest", sbom.Output{Kind: sbom.Image, Name: "r/iris"}},
		{"not sha256", sbom.Output{Kind: sbom.Zip, Name: "lambda.zip", Digest: "md5:abc"}},
		{"unknown kind", sbom.Output{Kind: "tarball", Name: "x", Digest: imageDigest}},
		{"bad file entry", sbom.Output{Kind: sbom.Image, Name: "r/iris", Digest: imageDigest, Files: []string{"/etc/passwd"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := fn.JSON(tc.out); err == nil {
				t.Errorf("JSON(%+v) succeeded, want an error", tc.out)
			}
		})
	}
}
