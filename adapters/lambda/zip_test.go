package lambda_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/runtime"
)

// setosa is an OIP request for the iris sample: one setosa flower.
const setosa = `{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}`

// TestPackagedZipFindsItsConfig packages the iris sample (testutil/packlambda,
// packager.Package), unzips its Lambda zip and starts the function the way
// Lambda does: bootstrap run
// with LAMBDA_TASK_ROOT set and no CORTEX_CONFIG (the variable is set by
// the SAM template, not by the zip, and a function created any other way
// lacks it). The function finds cortex.json beside its executable, so it
// predicts; so does the same binary run as an HTTP server from another
// directory, directly or through a symbolic link.
func TestPackagedZipFindsItsConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("packages a function and runs it")
	}
	// packlambda extracts the zip into task as Lambda does (testutil.Unzip,
	// outside this race-instrumented binary).
	task := filepath.Join(t.TempDir(), "task")
	cmd := exec.Command("go", "run", "../../internal/testutil/packlambda", filepath.Join("..", "..", "samples", "iris"), filepath.Join(t.TempDir(), "dist"), task)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("packaging samples/iris: %v", err)
	}
	var packaged struct{ Zip, Config string }
	mustUnmarshal(t, out, &packaged)
	if packaged.Config != runtime.ConfigName {
		t.Fatalf("the packager ships %s, the runtime looks for %s", packaged.Config, runtime.ConfigName)
	}
	if _, err := os.Stat(filepath.Join(task, runtime.ConfigName)); err != nil {
		t.Fatalf("the zip has no %s: %v", runtime.ConfigName, err)
	}
	bootstrap := filepath.Join(task, "bootstrap")
	// Nothing from this machine's setup may help the function find its
	// files: not the config, not the ONNX Runtime library in the cache
	// (found through $HOME).
	const noHome = "HOME=/nonexistent"

	t.Run("as Lambda starts it", func(t *testing.T) {
		rt := testutil.NewLambdaAPI(t, testARN)
		// Lambda runs bootstrap in /var/task with /var/task/lib on the
		// library path.
		startProcess(t, bootstrap, task, append(environ(isolated...),
			"AWS_LAMBDA_RUNTIME_API="+rt.Addr(), "LAMBDA_TASK_ROOT="+task, "AWS_LAMBDA_FUNCTION_NAME=iris-prod",
			"LD_LIBRARY_PATH="+filepath.Join(task, "lib"), noHome))

		var ev events.LambdaFunctionURLRequest
		mustUnmarshal(t, readEvent(t, "lambda-urls-request.json"), &ev)
		ev.RawPath, ev.RequestContext.HTTP.Path = "/v2/models/iris/infer", "/v2/models/iris/infer"
		ev.Headers["content-type"] = "application/json"
		ev.Body = setosa
		_, res := rt.Invoke(t, "zip-url", marshal(t, ev), time.Minute)
		got := urlResult(t, res)
		if got.StatusCode != http.StatusOK || !strings.Contains(got.Body, `"model_name":"iris"`) || !strings.Contains(got.Body, `"name":"label"`) {
			t.Errorf("function URL: got %d %s, want the iris prediction", got.StatusCode, got.Body)
		}
		_, res = rt.Invoke(t, "zip-direct", []byte(setosa), time.Minute)
		if res.Kind != testutil.LambdaResponse || !strings.Contains(string(res.Body), `"name":"probabilities"`) {
			t.Errorf("direct invoke: got %s %s, want the iris prediction", res.Kind, res.Body)
		}
	})

	oip := func(t *testing.T, base string) {
		t.Helper()
		got := httpDo(t, "POST", base+"/v2/models/iris/infer", setosa)
		var out struct {
			ModelName string `json:"model_name"`
			Outputs   []struct {
				Name string `json:"name"`
				Data []any  `json:"data"`
			} `json:"outputs"`
		}
		if got.status != http.StatusOK || json.Unmarshal([]byte(got.body), &out) != nil || out.ModelName != "iris" || len(out.Outputs) != 2 {
			t.Errorf("got %d %s, want the iris prediction", got.status, got.body)
		}
	}
	t.Run("as an HTTP server from another directory", func(t *testing.T) {
		oip(t, startHTTP(t, bootstrap, t.TempDir(), noHome))
	})
	t.Run("through a symbolic link", func(t *testing.T) {
		link := filepath.Join(t.TempDir(), "iris")
		if err := os.Symlink(bootstrap, link); err != nil {
			t.Fatal(err)
		}
		oip(t, startHTTP(t, link, t.TempDir(), noHome))
	})
}
