package runtime_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/wasm"
)

// TestStageSecretEnv: the config names a secret (wasm.secret_env) and
// holds no value; the stage sees the value the process's environment has
// when the function starts, beside wasm.env. A secret missing from the
// environment fails the start and names the variable.
func TestStageSecretEnv(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a WebAssembly stage")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The misbehave guest answers "ambient" with what it sees, its
	// environment first.
	stage := filepath.Join(t.TempDir(), "misbehave.wasm")
	if err := wasm.BuildGo(ctx, filepath.Join("wasm", "testdata", "misbehave"), stage); err != nil {
		t.Fatal(err)
	}
	echo := functions.PredictorFunc(func(_ context.Context, req *functions.Request) (*functions.Response, error) {
		return functions.Bytes(200, "application/json", req.Body), nil
	})
	cfg := runtime.Config{Name: "secret", Pre: stage, WasmCacheDir: testutil.CacheDir("wazero"),
		Wasm: runtime.WasmConfig{Env: map[string]string{"MODE": "fast"}, SecretEnv: []string{"STAGE_TEST_TOKEN"}}}

	const value = "s3cr3t from the environment"
	t.Setenv("STAGE_TEST_TOKEN", value)
	rt, err := runtime.New(echo, cfg, runtime.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer rt.Shutdown(context.Background())
	resp, err := rt.Invoke(ctx, &functions.Request{Method: "POST", Path: "/predict", Body: []byte("ambient")})
	if err != nil {
		t.Fatal(err)
	}
	var seen struct{ Env []string }
	if err := json.Unmarshal(resp.Body, &seen); err != nil {
		t.Fatalf("%v: %s", err, resp.Body)
	}
	for _, want := range []string{"STAGE_TEST_TOKEN=" + value, "MODE=fast"} {
		if !slices.Contains(seen.Env, want) {
			t.Errorf("the stage's environment %q lacks %q", seen.Env, want)
		}
	}
	if len(seen.Env) != 2 {
		t.Errorf("the stage's environment %q, want wasm.env and wasm.secret_env alone", seen.Env)
	}

	// Without the variable: no start, and the error says which.
	cfg.Wasm.SecretEnv = []string{"STAGE_TEST_MISSING"}
	rt2, err := runtime.New(echo, cfg, runtime.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	err = rt2.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "$STAGE_TEST_MISSING is not set") {
		t.Errorf("Start without the secret in the environment: %v, want an error naming it", err)
	}
}
