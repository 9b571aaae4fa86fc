package build

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
)

func TestCrossCompiler(t *testing.T) {
	other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[goruntime.GOARCH]
	if goruntime.GOOS != "linux" || other == "" {
		t.Skip("the cross compiler names are for linux amd64 and arm64 hosts")
	}
	t.Setenv("CC", "")
	t.Setenv("PATH", t.TempDir())
	tests := []struct {
		name, goos, goarch string
		want               string // substring of the error, "" for none
	}{
		{"host needs nothing", goruntime.GOOS, goruntime.GOARCH, ""},
		{"missing cross compiler", "linux", other, "needs the C cross compiler"},
		{"not linux", "darwin", "arm64", "cannot be cross-built"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := crossCompiler(tt.goos, tt.goarch)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	t.Run("CC is used", func(t *testing.T) {
		t.Setenv("CC", "my-cc")
		if cc, err := crossCompiler("linux", other); cc != "my-cc" || err != nil {
			t.Errorf("got %q, %v", cc, err)
		}
	})
}

func TestHashPackage(t *testing.T) {
	dir := t.TempDir()
	put := func(rel, content string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum := func() string {
		h := sha256.New()
		if err := hashPackage(h, dir, []string{"static/index.html"}); err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(h.Sum(nil))
	}
	put("p.go", "package p")
	put("static/index.html", "<p>")
	base := sum()
	tests := []struct {
		name    string
		rel     string
		content string
		changes bool
	}{
		{"go source", "p.go", "package p // changed", true},
		{"new file", "q.go", "package p", true},
		{"cgo source", "q.c", "int x;", true},
		{"embedded file", "static/index.html", "<p>changed", true},
		{"test file", "p_test.go", "package p", false},
		{"model", "m.onnx", "weights", false},
		{"subpackage", "sub/x.go", "package sub", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			put(tt.rel, tt.content)
			got := sum()
			if (got != base) != tt.changes {
				t.Errorf("hash changed = %v, want %v", got != base, tt.changes)
			}
			base = got
		})
	}
	if err := hashPackage(sha256.New(), filepath.Join(dir, "virtual"), nil); err != nil {
		t.Errorf("a directory only in the overlay: %v", err)
	}
}

func TestModulePath(t *testing.T) {
	tests := []struct{ gomod, want string }{
		{"module github.com/cortexfn/cortex\n\ngo 1.26\n", "github.com/cortexfn/cortex"},
		{"// comment\nmodule \"example.com/x\"\n", "example.com/x"},
		{"modulex y\n", ""},
	}
	for _, tt := range tests {
		if got := modulePath([]byte(tt.gomod)); got != tt.want {
			t.Errorf("modulePath(%q) = %q, want %q", tt.gomod, got, tt.want)
		}
	}
}
