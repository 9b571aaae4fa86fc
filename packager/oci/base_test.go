package oci_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/packager/oci"
)

// TestBuiltinBaseProvenance checks what the built-in base records about
// the files it copies from the build machine, and what it tells the user:
// nothing false. The CA bundle has no owning package (update-ca-certificates
// generates it), which is no reason to say dpkg-query is missing.
func TestBuiltinBaseProvenance(t *testing.T) {
	const bundle = "/etc/ssl/certs/ca-certificates.crt"
	if _, err := os.Stat(bundle); err != nil {
		t.Skipf("no %s on this machine", bundle)
	}
	dir := t.TempDir()
	t.Run("with dpkg-query", func(t *testing.T) {
		if _, err := exec.LookPath("dpkg-query"); err != nil {
			t.Skip("no dpkg-query on this machine")
		}
		for _, cgo := range []bool{false, true} {
			c := contents(t, dir, "v1")
			c.CGO = cgo
			img := build(t, c, oci.Options{CacheDir: dir})
			for _, n := range img.Notes {
				if strings.Contains(n, "dpkg") {
					t.Errorf("cgo=%v: note %q, want none about dpkg-query, which is there", cgo, n)
				}
			}
			// The bundle is recorded by its digest, and by the package
			// that generates it when that is installed.
			entry := bundle + "@" + digest(t, bundle)
			if !slices.Contains(img.Base.Files, entry) || (!cgo && len(img.Base.Files) != 1) {
				t.Errorf("cgo=%v: files %q, want the CA bundle's, %q (and no other for a static base)", cgo, img.Base.Files, entry)
			}
			if v, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "ca-certificates").Output(); err == nil {
				if want := "ca-certificates=" + string(v); !slices.Contains(img.Base.Packages, want) {
					t.Errorf("cgo=%v: packages %q, want %s among them", cgo, img.Base.Packages, want)
				}
			}
			if cgo && !slices.ContainsFunc(img.Base.Packages, func(p string) bool { return strings.HasPrefix(p, "libc6=") }) {
				t.Errorf("packages %q, want libc6 among them", img.Base.Packages)
			}
			history(t, img, entry)
		}
	})
	t.Run("without dpkg-query", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		for _, cgo := range []bool{false, true} {
			c := contents(t, dir, "v1")
			c.CGO = cgo
			img := build(t, c, oci.Options{CacheDir: dir})
			if len(img.Notes) != 1 || !strings.Contains(img.Notes[0], "no dpkg-query") || !strings.Contains(img.Notes[0], "sha256") {
				t.Errorf("cgo=%v: notes %q, want one saying there is no dpkg-query and the files are recorded by sha256", cgo, img.Notes)
			}
			if len(img.Base.Packages) != 0 {
				t.Errorf("cgo=%v: packages %q, want none", cgo, img.Base.Packages)
			}
			files := map[bool]int{false: 1, true: 1 + 1 + 7}[cgo] // the bundle; the loader and the C libraries
			if len(img.Base.Files) != files || img.Base.Files[0] != bundle+"@"+digest(t, bundle) {
				t.Errorf("cgo=%v: files %q, want %d, the CA bundle's first", cgo, img.Base.Files, files)
			}
		}
	})
}

func digest(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("sha256:%x", sha256.Sum256(b))
}

// history checks that the base layer's history entry records want.
func history(t *testing.T, img *oci.Image, want string) {
	t.Helper()
	cf, err := img.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.History) == 0 || !slices.Contains(strings.Fields(cf.History[0].Comment), want) {
		t.Errorf("base history %+v, want %s in its comment", cf.History, want)
	}
}
