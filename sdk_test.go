package cortex_test

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cortexfn/cortex"
)

var update = flag.Bool("update", false, "rewrite sdk.mod and sdk.sum")

// sdkPackages are the packages a function binary or a predictor may import:
// the roots of what the CLI embeds.
var sdkPackages = []string{
	"./functions/...", "./adapters/...", "./runtime", "./runtime/onnx", "./runtime/wasm",
}

// TestSDKFiles fails when a package of this module that the SDK's packages
// import, or one of its files, is not embedded: a function built outside this
// repository would not compile.
func TestSDKFiles(t *testing.T) {
	out, err := exec.Command("go", append([]string{"list", "-deps", "-f",
		`{{if and .Module (eq .Module.Path "github.com/cortexfn/cortex")}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .CgoFiles}} {{.}}{{end}}{{range .IgnoredGoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}`},
		sdkPackages...)...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	wd, _ := os.Getwd()
	sdk := cortex.SDK()
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		fields := strings.Fields(line)
		rel, _ := filepath.Rel(wd, fields[0])
		for _, f := range fields[1:] {
			p := filepath.ToSlash(filepath.Join(rel, f))
			want, err := os.ReadFile(filepath.Join(fields[0], f))
			if err != nil {
				t.Fatal(err)
			}
			got, err := fs.ReadFile(sdk, p)
			if err != nil {
				t.Errorf("%s is not embedded: add its directory to the //go:embed lines in sdk.go", p)
				continue
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: the embedded copy differs from the file", p)
			}
			n++
		}
	}
	if n < 20 {
		t.Fatalf("checked only %d files", n)
	}
	// No test file and no file of the CLI side is shipped.
	fs.WalkDir(sdk, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p, "_test.go") || strings.HasPrefix(p, "packager/") || strings.HasPrefix(p, "cmd/") || strings.HasPrefix(p, "runtime/host") {
			t.Errorf("%s is embedded in the SDK; it must not be", p)
		}
		return nil
	})
	if _, err := fs.Stat(sdk, "go.mod"); err != nil {
		t.Errorf("the SDK has no go.mod: %v", err)
	}
}

// TestSDKModule fails when sdk.mod or sdk.sum no longer say exactly what
// the SDK's packages need: they are go.mod and go.sum as `go mod tidy` makes
// them for the embedded packages alone. go test . -run TestSDKModule -update
// rewrites them (tidy may download modules that only tests of the dependencies use).
func TestSDKModule(t *testing.T) {
	dir := t.TempDir()
	sdk := cortex.SDK()
	err := fs.WalkDir(sdk, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "go.mod" || p == "go.sum" {
			return err
		}
		b, err := fs.ReadFile(sdk, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	// The main go.mod without its tools: they are the repository's, not the SDK's.
	gomod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	gomod = regexp.MustCompile(`(?m)^tool .*\n`).ReplaceAll(gomod, nil)
	sum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), gomod, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	tidy := exec.Command("go", "mod", "tidy")
	tidy.Dir = dir
	tidy.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := tidy.CombinedOutput(); err != nil {
		t.Fatalf("go mod tidy: %v\n%s", err, out)
	}
	for _, f := range [][2]string{{"go.mod", "sdk.mod"}, {"go.sum", "sdk.sum"}} {
		want, err := os.ReadFile(filepath.Join(dir, f[0]))
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			if err := os.WriteFile(f[1], want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, _ := fs.ReadFile(sdk, f[0])
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: the SDK's packages now need another module set; run go test . -run TestSDKModule -update", f[1])
		}
	}
	if !*update {
		sdkMod, _ := fs.ReadFile(sdk, "go.mod")
		// The AWS SDK is in sdk.mod for runtime/modelfetch/s3 alone, which
		// only a function naming an s3:// model links
		// (internal/depcheck's modelFetchers keeps it there).
		for _, heavy := range []string{"k8s.io/client-go", "knative.dev/serving"} {
			if bytes.Contains(sdkMod, []byte(heavy+" ")) {
				t.Errorf("sdk.mod requires %s: a function must not need it", heavy)
			}
		}
	}
}
