package host_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/runtime/host"
	"github.com/cortexfn/cortex/runtime/modelfetch"
)

// processEnv asks a process of fn for its environment (testdata/fn's
// ?env=1).
func processEnv(t *testing.T, e *env, fn string) map[string]string {
	t.Helper()
	resp, err := e.c.Post(e.srv.URL+"/"+fn+"/?env=1", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ Env []string }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d, %v", fn, resp.StatusCode, err)
	}
	vars := map[string]string{}
	for _, kv := range v.Env {
		k, val, _ := strings.Cut(kv, "=")
		vars[k] = val
	}
	return vars
}

// TestModelCacheDefault: every process the host starts is given the
// machine's one model cache (modelfetch.DefaultDir, here under
// $CORTEX_CACHE) when the user set no $CORTEX_MODEL_CACHE, so functions
// that name the same model fetch it once; a value the user set is the
// one every process gets.
func TestModelCacheDefault(t *testing.T) {
	fns := []host.Function{function("a", host.Autoscaling{}), function("b", host.Autoscaling{})}
	base := t.TempDir()
	t.Setenv("CORTEX_CACHE", base)
	t.Setenv("AWS_LAMBDA_RUNTIME_API", "")

	t.Run("unset", func(t *testing.T) {
		t.Setenv("CORTEX_MODEL_CACHE", "") // restored after the test
		os.Unsetenv("CORTEX_MODEL_CACHE")
		want, err := modelfetch.DefaultDir()
		if err != nil {
			t.Fatal(err)
		}
		if want != filepath.Join(base, "models") {
			t.Fatalf("DefaultDir() = %s, want it under $CORTEX_CACHE (%s)", want, base)
		}
		e := start(t, fns)
		for _, fn := range []string{"a", "b"} {
			if got, ok := processEnv(t, e, fn)["CORTEX_MODEL_CACHE"]; !ok || got != want {
				t.Errorf("%s's process: $CORTEX_MODEL_CACHE = %q (set: %t), want the shared default %s", fn, got, ok, want)
			}
		}
	})
	t.Run("set by the user", func(t *testing.T) {
		mine := filepath.Join(t.TempDir(), "my-models")
		t.Setenv("CORTEX_MODEL_CACHE", mine)
		e := start(t, fns)
		for _, fn := range []string{"a", "b"} {
			if got := processEnv(t, e, fn)["CORTEX_MODEL_CACHE"]; got != mine {
				t.Errorf("%s's process: $CORTEX_MODEL_CACHE = %q, want the user's %s", fn, got, mine)
			}
		}
	})
	t.Run("set in a function's environment", func(t *testing.T) {
		t.Setenv("CORTEX_MODEL_CACHE", "")
		os.Unsetenv("CORTEX_MODEL_CACHE")
		own := filepath.Join(t.TempDir(), "own-models")
		a := function("a", host.Autoscaling{})
		a.Env = append(a.Env, "CORTEX_MODEL_CACHE="+own)
		e := start(t, []host.Function{a})
		if got := processEnv(t, e, "a")["CORTEX_MODEL_CACHE"]; got != own {
			t.Errorf("a's process: $CORTEX_MODEL_CACHE = %q, want its own environment's %s over the shared default", got, own)
		}
	})
}
