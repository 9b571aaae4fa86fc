package depcheck

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/cortexfn/cortex"

// forbidden are the import path prefixes a function binary must not contain.
var forbidden = []string{
	"k8s.io/",
	"sigs.k8s.io/",
	"knative.dev/",
	"github.com/aws/aws-sdk-go",
	"github.com/google/go-containerregistry",
	module + "/packager",
	module + "/cmd/",
	module + "/runtime/host",
}

type pkg struct {
	ImportPath string
	Standard   bool
	Deps       []string
	Imports    []string
	CgoFiles   []string
}

// list runs go list -deps for patterns and returns every package with its
// transitive dependencies.
func list(t *testing.T, env []string, patterns ...string) []pkg {
	t.Helper()
	args := append([]string{"list", "-json=ImportPath,Standard,Deps,Imports,CgoFiles"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", patterns, err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list %v found no packages", patterns)
	}
	return pkgs
}

// modelFetchers are the function-side packages that may link what
// forbidden otherwise keeps out, and exactly what each may link: the
// fetchers of models named oci:// and s3://. A function's generated main
// imports one only when its spec names a model of that scheme, so every
// other function binary stays without them (ARCHITECTURE.md, Rationale).
var modelFetchers = map[string][]string{
	module + "/runtime/modelfetch/oci": {"github.com/google/go-containerregistry"},
	module + "/runtime/modelfetch/s3":  {"github.com/aws/aws-sdk-go-v2", "github.com/aws/smithy-go"},
}

func TestFunctionBinaryDependencies(t *testing.T) {
	for _, p := range list(t, nil, "./functions/...", "./runtime/...", "./adapters/...") {
		if strings.HasPrefix(p.ImportPath, module+"/runtime/host") {
			continue // the local multi-function host is imported by the CLI only
		}
	deps:
		for _, d := range p.Deps {
			for _, a := range modelFetchers[p.ImportPath] {
				if d == a || strings.HasPrefix(d, a+"/") {
					continue deps
				}
			}
			for _, f := range forbidden {
				if strings.HasPrefix(d, f) {
					t.Errorf("%s depends on %s: function binaries must not carry it (see DESIGN.md, dependency rule)", p.ImportPath, d)
				}
			}
		}
	}
}

// TestModelFetchersAreOptIn keeps the oci and s3 model fetchers out of
// every function-side package but themselves: the runtime finds them
// through modelfetch.Register, never by import, so only a generated main
// that names them links them. It also checks each links what it is
// allowed (so the exception above stays needed and exact).
func TestModelFetchersAreOptIn(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range list(t, nil, "./functions/...", "./runtime/...", "./adapters/...") {
		if _, ok := modelFetchers[p.ImportPath]; ok {
			seen[p.ImportPath] = true
			for _, a := range modelFetchers[p.ImportPath] {
				if !slices.ContainsFunc(p.Deps, func(d string) bool { return d == a || strings.HasPrefix(d, a+"/") }) {
					t.Errorf("%s no longer depends on %s: drop it from modelFetchers", p.ImportPath, a)
				}
			}
			continue
		}
		if strings.HasPrefix(p.ImportPath, module+"/runtime/host") {
			continue
		}
		for _, d := range p.Deps {
			if _, ok := modelFetchers[d]; ok {
				t.Errorf("%s depends on %s: only a generated main may import a model fetcher, when its spec names a model of that scheme", p.ImportPath, d)
			}
		}
	}
	for f := range modelFetchers {
		if !seen[f] {
			t.Errorf("%s not found: update modelFetchers", f)
		}
	}
}

// schemaModules are the modules functions may import besides the
// standard library: the JSON Schema reflector and validator behind Typed's
// published schemas and its 422s (issue 21 asked for well-kept libraries
// rather than our own), and what they import. Anything else a change adds
// fails here.
var schemaModules = []string{
	"github.com/invopop/jsonschema",
	"github.com/santhosh-tekuri/jsonschema/v6",
	// invopop/jsonschema's imports: its ordered properties and their YAML
	// (pb33f's, but not libopenapi, which nothing of ours imports).
	"github.com/bahlo/generic-list-go",
	"github.com/buger/jsonparser",
	"github.com/pb33f/ordered-map/v2",
	"github.com/pb33f/go-yaml",
	"golang.org/x/text",
}

func TestFunctionsImportsOnlyTheStandardLibraryAndSchemaLibraries(t *testing.T) {
	for _, p := range list(t, nil, "./functions/...") {
	deps:
		for _, d := range p.Deps {
			if !strings.Contains(strings.SplitN(d, "/", 2)[0], ".") || strings.HasPrefix(d, module+"/functions") {
				continue
			}
			for _, m := range schemaModules {
				if d == m || strings.HasPrefix(d, m+"/") {
					continue deps
				}
			}
			t.Errorf("%s depends on %s: the SDK imports only the standard library and its JSON Schema libraries", p.ImportPath, d)
		}
		if p.ImportPath == module+"/functions" {
			for _, d := range p.Deps {
				if strings.HasPrefix(d, module) {
					t.Errorf("functions depends on %s: it imports nothing of ours", d)
				}
			}
		}
	}
}

// A pure-Go function must build into a static binary: the core runtime and
// the carriers may not need cgo. Only runtime/onnx may.
func TestCoreRuntimeIsPureGo(t *testing.T) {
	for _, p := range list(t, []string{"CGO_ENABLED=1"}, "./runtime", "./adapters/...") {
		for _, d := range p.Deps {
			if d == "github.com/yalue/onnxruntime_go" || d == module+"/runtime/onnx" {
				t.Errorf("%s depends on %s: ONNX (cgo) must be imported only by functions that use it", p.ImportPath, d)
			}
		}
	}
	// With the flags function binaries are built with (packager/build), so
	// this build shares their compiled packages instead of compiling the
	// standard library once more.
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "./runtime", "./adapters/...", "./functions/...")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("CGO_ENABLED=0 go build of the core runtime failed: %v\n%s", err, out)
	}
}

// toolRules are the tool side's seams (ARCHITECTURE.md), as direct
// imports: the output formats take files, not builds or deploys, and do not
// talk to a platform. Each package's doc comment says the same. (Knative's
// API types themselves pull in client-go, so the rule is on what a package
// imports, not on everything below it.)
var toolRules = map[string][]string{
	module + "/packager/artifact":    {module + "/packager/build", module + "/packager/oci", module + "/packager/lambdazip", module + "/packager/knative", module + "/packager/deploy", "github.com/google/go-containerregistry"},
	module + "/packager/oci":         {module + "/packager/build", module + "/packager/spec", module + "/packager/deploy", module + "/packager/lambdazip", module + "/packager/knative"},
	module + "/packager/lambdazip":   {module + "/packager/build", module + "/packager/deploy", module + "/packager/oci", "github.com/aws/aws-sdk-go-v2"},
	module + "/packager/knative":     {module + "/packager/build", module + "/packager/deploy", module + "/packager/oci", "k8s.io/client-go", "knative.dev/serving/pkg/client"},
	module + "/packager/sbom":        {module + "/packager/build", module + "/packager/oci", module + "/packager/sign", module + "/packager/deploy", module + "/packager/lambdazip", module + "/packager/knative"},
	module + "/packager/sign":        {module + "/packager/artifact", module + "/packager/build", module + "/packager/oci", module + "/packager/sbom", module + "/packager/spec", module + "/packager/deploy"},
	module + "/packager/dpkg":        {module + "/packager"},
	module + "/packager/onnxruntime": {module + "/packager/build", module + "/packager/oci", module + "/packager/spec"},
	module + "/packager/spec":        {module + "/packager/build", module + "/packager/oci", module + "/packager/deploy", "k8s.io/client-go", "github.com/aws/aws-sdk-go-v2"},
}

func TestToolSideSeams(t *testing.T) {
	seen := 0
	for _, p := range list(t, nil, "./packager/...") {
		rules, ok := toolRules[p.ImportPath]
		if !ok {
			continue
		}
		seen++
		for _, d := range p.Imports {
			for _, f := range rules {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s depends on %s: it must not (see its package doc and ARCHITECTURE.md)", p.ImportPath, d)
				}
			}
		}
	}
	if seen != len(toolRules) {
		t.Errorf("found %d of the %d packages the rules name: a package moved; update toolRules", seen, len(toolRules))
	}
}
