package scaffold_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cortexfn/cortex"
	"github.com/cortexfn/cortex/cmd/cortex/internal/scaffold"
	"github.com/cortexfn/cortex/packager/spec"
)

var opts = scaffold.Options{Version: cortex.Version}

func TestWriteValidates(t *testing.T) {
	for _, typ := range []string{spec.TypeGo, spec.TypeONNX} {
		t.Run(typ, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "my-fn")
			files, err := scaffold.Write(dir, "my-fn", typ, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) == 0 {
				t.Fatal("no files written")
			}
			s, err := spec.Load(dir)
			if err != nil {
				t.Fatalf("the scaffold does not validate: %v", err)
			}
			if s.Name != "my-fn" || s.Predictor.Type != typ {
				t.Errorf("got name %q type %q", s.Name, s.Predictor.Type)
			}
			if ex, _ := filepath.Glob(filepath.Join(dir, "examples", "*.json")); len(ex) == 0 {
				t.Error("no examples")
			}
		})
	}
}

func TestWriteRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cortex.yaml"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := scaffold.Write(dir, "fn", spec.TypeGo, opts)
	if !errors.Is(err, scaffold.ErrExists) {
		t.Fatalf("got %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cortex.yaml")); string(b) != "mine" {
		t.Errorf("cortex.yaml was overwritten: %q", b)
	}
}

func TestWriteEmptyDirIsFine(t *testing.T) {
	if _, err := scaffold.Write(t.TempDir(), "fn", spec.TypeGo, opts); err != nil {
		t.Fatal(err)
	}
}

func TestBadNameOrType(t *testing.T) {
	tests := []struct{ name, typ string }{
		{"My_Fn", spec.TypeGo},
		{"fn", "pytorch"},
	}
	for _, tt := range tests {
		dir := filepath.Join(t.TempDir(), "x")
		if _, err := scaffold.Write(dir, tt.name, tt.typ, opts); err == nil {
			t.Errorf("Write(%q, %q) succeeded", tt.name, tt.typ)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("Write(%q, %q) left a directory behind", tt.name, tt.typ)
		}
	}
}

func TestIdentityModelBytes(t *testing.T) {
	m := scaffold.IdentityModel()
	// ir_version 8, then producer "cortex".
	if len(m) < 10 || m[0] != 0x08 || m[1] != 8 || string(m[4:10]) != "cortex" {
		t.Errorf("unexpected model header % x", m[:min(len(m), 12)])
	}
}

// With the CLI's SDK on this machine, a Go function gets a go.work that
// replaces cortex with it and a go.work.sum with the SDK's checksums, so
// that go vet and go test work offline, without the checksum database.
func TestGoWorkspace(t *testing.T) {
	sum := []byte("example.com/m v1.0.0 h1:abc=\n")
	files, err := scaffold.Files("greeter", spec.TypeGo, scaffold.Options{Version: "v0.3.0", SDKDir: "/sdk", SDKSum: sum})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range files {
		got[f.Path] = string(f.Content)
	}
	if !strings.Contains(got["go.work"], "replace github.com/cortexfn/cortex => /sdk") {
		t.Errorf("go.work:\n%s", got["go.work"])
	}
	if got["go.work.sum"] != string(sum) {
		t.Errorf("go.work.sum = %q, want the SDK's go.sum", got["go.work.sum"])
	}
	if !strings.Contains(got[".gitignore"], "go.work.sum") {
		t.Error(".gitignore does not ignore go.work.sum")
	}
}
