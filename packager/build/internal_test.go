package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"

	"github.com/cortexfn/cortex"
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
		if err := hashPackage(h, dir, dir, []string{"static/index.html"}); err != nil {
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
	if err := hashPackage(sha256.New(), filepath.Join(dir, "virtual"), "virtual", nil); err != nil {
		t.Errorf("a directory only in the overlay: %v", err)
	}
}

// TestUserModFiles: a user's module builds with cortex required at the
// CLI's version and replaced by the SDK; another required version is an
// error naming both versions and the fix; the user's files are not touched.
func TestUserModFiles(t *testing.T) {
	sdk := SDK{Dir: t.TempDir(), Version: cortex.Version}
	if err := os.WriteFile(filepath.Join(sdk.Dir, "go.sum"), []byte("example.com/sdkdep v1.0.0 h1:x=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, gomod string
		wantErr     string
	}{
		{"no cortex requirement", "module greeter\n\ngo 1.26\n\nrequire github.com/google/uuid v1.6.0\n", ""},
		{"the CLI's version", "module greeter\n\ngo 1.26\n\nrequire github.com/cortexfn/cortex " + cortex.Version + "\n", ""},
		{"an old replace", "module greeter\n\ngo 1.26\n\nrequire github.com/cortexfn/cortex " + cortex.Version + "\n\nreplace github.com/cortexfn/cortex => ../cortex\n", ""},
		{"another version", "module greeter\n\ngo 1.26\n\nrequire github.com/cortexfn/cortex v0.1.0\n", "requires github.com/cortexfn/cortex v0.1.0, but this cortex CLI is " + cortex.Version},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			modDir, tmp := t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(modDir, "go.mod"), []byte(tt.gomod), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(modDir, "go.sum"), []byte("github.com/google/uuid v1.6.0 h1:y="), 0o644); err != nil {
				t.Fatal(err)
			}
			mod, sum, err := userModFiles(modDir, []byte(tt.gomod), sdk, tmp)
			if tt.wantErr != "" {
				var ve *VersionError
				if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "go mod edit -require=github.com/cortexfn/cortex@"+cortex.Version) {
					t.Fatalf("got %v, want a VersionError containing %q and the fix", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(mod)
			f, err := modfile.Parse(mod, b, nil)
			if err != nil {
				t.Fatal(err)
			}
			var req string
			for _, r := range f.Require {
				if r.Mod.Path == CortexModule {
					req = r.Mod.Version
				}
			}
			if req != cortex.Version {
				t.Errorf("requires cortex %q, want %q\n%s", req, cortex.Version, b)
			}
			if len(f.Replace) != 1 || f.Replace[0].Old.Path != CortexModule || f.Replace[0].New.Path != sdk.Dir {
				t.Errorf("replace lines %+v, want one: cortex => %s\n%s", f.Replace, sdk.Dir, b)
			}
			if s, _ := os.ReadFile(sum); string(s) != "github.com/google/uuid v1.6.0 h1:y=\nexample.com/sdkdep v1.0.0 h1:x=\n" {
				t.Errorf("go.sum = %q, want the user's lines then the SDK's", s)
			}
			if orig, _ := os.ReadFile(filepath.Join(modDir, "go.mod")); string(orig) != tt.gomod {
				t.Errorf("the user's go.mod was changed:\n%s", orig)
			}
		})
	}
}

// TestCacheRootIsAbsolute: a relative $CORTEX_CACHE named the binary's
// output relative to the directory go build ran in, and wrote a relative
// SDK path into the go.work of cortex init; the cache root is absolute.
func TestCacheRootIsAbsolute(t *testing.T) {
	t.Setenv("CORTEX_CACHE", "rel/cache")
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, override := range []string{"", "other"} {
		got, err := CacheRoot(override)
		want := filepath.Join(wd, "rel", "cache")
		if override != "" {
			want = filepath.Join(wd, override)
		}
		if err != nil || got != want {
			t.Errorf("CacheRoot(%q) = %q, %v; want %q", override, got, err, want)
		}
	}
}

// countingCompiler writes its job's name into the output and counts runs.
type countingCompiler struct{ runs *int }

func (c countingCompiler) compile(_ context.Context, j *job) (string, bool, error) {
	*c.runs++
	if j.name == "fails" { // a half-written output, as a killed compiler leaves
		os.WriteFile(j.out, []byte("half"), 0o755)
		return "", false, errors.New("compile failed")
	}
	return j.out, false, os.WriteFile(j.out, []byte(j.name), 0o755)
}

// The cache decorates any compiler: a job whose key is cached is not run
// again, refresh runs it anyway, and a failed run leaves nothing behind.
func TestCacheDecorator(t *testing.T) {
	dir, tmp := t.TempDir(), t.TempDir()
	runs := 0
	c := cache{next: countingCompiler{&runs}, dir: dir}
	j := &job{name: "fn", kind: "bin", key: "k1", tmp: tmp}
	out, cached, err := c.compile(context.Background(), j)
	if err != nil || cached || runs != 1 {
		t.Fatalf("first compile: %s cached=%v runs=%d err=%v", out, cached, runs, err)
	}
	if b, _ := os.ReadFile(out); string(b) != "fn" || out != filepath.Join(dir, "bin", "k1", "fn") {
		t.Errorf("output %s holds %q", out, b)
	}
	if out2, cached, err := c.compile(context.Background(), j); err != nil || !cached || out2 != out || runs != 1 {
		t.Errorf("second compile: %s cached=%v runs=%d err=%v, want the cached output and no run", out2, cached, runs, err)
	}
	c.refresh = true
	if _, cached, err := c.compile(context.Background(), j); err != nil || cached || runs != 2 {
		t.Errorf("refresh: cached=%v runs=%d err=%v, want a run", cached, runs, err)
	}
	c.refresh = false
	if _, _, err := c.compile(context.Background(), &job{name: "fails", kind: "bin", key: "k2", tmp: tmp}); err == nil {
		t.Fatal("a failed compile succeeded")
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "bin", "k2")); len(entries) != 0 {
		t.Errorf("a failed compile left %v in the cache", entries)
	}
	if j.out != "" {
		t.Errorf("the decorator changed the caller's job: out %q", j.out)
	}
}

// TestCacheTrim: the build cache forgets what is not used, as the go
// command's does. A hit marks its entry used; a build that adds an entry
// removes the entries unused for maxUnused, then the least recently used
// while the kind is over maxBytes, never one used within touchEvery; and
// it trims at most once per trimEvery.
func TestCacheTrim(t *testing.T) {
	dir, tmp := t.TempDir(), t.TempDir()
	t.Setenv("CORTEX_BUILD_CACHE_MAX", "5") // bytes: five 2-byte entries are over it
	runs := 0
	c := cache{next: countingCompiler{&runs}, dir: dir}
	now := time.Now()
	age := func(key string, ago time.Duration) {
		t.Helper()
		at := now.Add(-ago)
		if err := os.Chtimes(filepath.Join(dir, "bin", key), at, at); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(key string) bool {
		_, err := os.Stat(filepath.Join(dir, "bin", key))
		return err == nil
	}
	for _, k := range []string{"old", "stale", "recent", "hit"} {
		if _, _, err := c.compile(context.Background(), &job{name: "fn", kind: "bin", key: k, tmp: tmp}); err != nil {
			t.Fatal(err)
		}
	}
	age("old", 6*24*time.Hour)    // unused for longer than maxUnused
	age("stale", 3*time.Hour)     // unused, but the kind is over its bound
	age("recent", 10*time.Minute) // used within touchEvery: kept
	age("hit", 2*time.Hour)       // used again just below
	if _, cached, _ := c.compile(context.Background(), &job{name: "fn", kind: "bin", key: "hit", tmp: tmp}); !cached {
		t.Fatal("a cached entry was compiled again")
	}
	os.Remove(filepath.Join(dir, "bin", "trim.txt")) // the last trim was long ago
	if _, _, err := c.compile(context.Background(), &job{name: "fn", kind: "bin", key: "new", tmp: tmp}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"old": false, "stale": false, "recent": true, "hit": true, "new": true} {
		if exists(key) != want {
			t.Errorf("entry %s kept %v, want %v", key, !want, want)
		}
	}
	// Trimmed a moment ago: the next new entry does not trim again.
	age("recent", 3*time.Hour)
	if _, _, err := c.compile(context.Background(), &job{name: "fn", kind: "bin", key: "newer", tmp: tmp}); err != nil {
		t.Fatal(err)
	}
	if !exists("recent") {
		t.Error("a second trim ran within trimEvery")
	}
}
