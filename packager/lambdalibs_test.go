//go:build !race

// Built only without -race, as arm64_test.go: it packages full-size iris
// for both architectures.

package packager_test

import (
	"strings"
	"testing"

	"github.com/cortexfn/cortex/packager"
)

// TestLambdaZipLibraries packages the real iris sample (amd64 and arm64,
// as TestArm64Iris does) and checks that the packager's check of the
// zip's libraries against provided.al2023's published package list
// (lambdazip.CheckLibraries) found nothing missing or too old: what ships
// today loads there, relying on the runtime's glibc, libgcc_s and
// libstdc++.
func TestLambdaZipLibraries(t *testing.T) {
	multi, arm := armIrisResults(t)
	for name, r := range map[string]*packager.Result{"amd64,arm64": multi, "arm64": arm} {
		if r.Lambda == nil {
			t.Errorf("%s: no Lambda zip (warnings: %q)", name, r.Warnings)
			continue
		}
		for _, w := range r.Warnings {
			if strings.Contains(w, "will not load on provided.al2023") {
				t.Errorf("%s: %s", name, w)
			}
		}
	}
}
