package supervisor

import (
	"go/build"
	"strings"
	"testing"
)

// The package doc's rule: the standard library only, so that neither the
// packager nor the function runtime comes in through it.
func TestImportsOnlyTheStandardLibrary(t *testing.T) {
	for _, goos := range []string{"linux", "darwin", "windows"} {
		ctx := build.Default
		ctx.GOOS = goos
		pkg, err := ctx.ImportDir(".", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pkg.Imports {
			if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
				t.Errorf("GOOS=%s: supervisor imports %s: it may import only the standard library", goos, imp)
			}
		}
	}
}
