package host

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestInheritedCoversTheRuntime reads the sources of what a function
// binary runs on cortex serve (the runtime, its ONNX predictor, the HTTP
// and CloudEvents carriers, the SDK) for the CORTEX_ variables they read:
// each must reach a function process, from the host's environment
// (inherited) or set by cortex serve itself, or the runtime would not see
// what the user set.
func TestInheritedCoversTheRuntime(t *testing.T) {
	setByServe := map[string]bool{
		"CORTEX_CONFIG": true, // cortex serve's Function.Env
		"CORTEX_HOST":   true, // the supervisor's
	}
	name := regexp.MustCompile(`"(CORTEX_[A-Z0-9_]+)"`)
	found := 0
	for _, dir := range []string{"..", "../onnx", "../../adapters", "../../adapters/http", "../../adapters/knative", "../../functions"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s (%v)", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range name.FindAllStringSubmatch(string(b), -1) {
				found++
				if v := m[1]; !inherited(v) && !setByServe[v] {
					t.Errorf("%s reads $%s, which a function process under cortex serve never gets: add it to inherited", f, v)
				}
			}
		}
	}
	if found < 4 {
		t.Errorf("found %d CORTEX_ variables in the runtime's sources, want at least CORTEX_CONFIG, CORTEX_LOG_LEVEL, CORTEX_CACHE and CORTEX_ONNXRUNTIME_LIB", found)
	}
}
