package knative

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/cortexfn/cortex/packager/deploy"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/onnx"
)

const testToken = "cold-start-test-token-0123456789"

// serveIris serves the iris sample through the runtime's own HTTP
// handler, as its Knative replica does, with a bearer token when auth.
func serveIris(t *testing.T, auth bool) (*runtime.Runtime, string) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", "samples", "iris"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := runtime.Config{Name: "iris", Dir: dir, Predictor: runtime.PredictorConfig{Type: "onnx", Model: "model/iris.onnx"}}
	if auth {
		t.Setenv("IRIS_TOKEN", testToken)
		cfg.Auth = runtime.AuthConfig{TokenEnv: "IRIS_TOKEN"}
	}
	rt, err := runtime.New(onnx.New(), cfg, runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = rt.Shutdown(context.Background())
	})
	return rt, srv.URL
}

// TestColdStartFromMetrics reads a real function's cold start from its
// /metrics as `cortex get` does: the phases the runtime recorded, the
// token sent when the function requires one, and an error (which get
// keeps to itself) when the metrics cannot be read.
func TestColdStartFromMetrics(t *testing.T) {
	for _, auth := range []bool{false, true} {
		t.Run(map[bool]string{false: "open", true: "auth"}[auth], func(t *testing.T) {
			rt, url := serveIris(t, auth)
			token := ""
			if auth {
				token = testToken
				if _, err := ColdStart(context.Background(), http.DefaultClient, url, ""); err == nil {
					t.Error("metrics read without the token of a function that requires one")
				}
			}
			got, err := ColdStart(context.Background(), http.DefaultClient, url, token)
			if err != nil {
				t.Fatal(err)
			}
			want := rt.ColdStart()
			for _, p := range []string{runtime.PhaseFetch, runtime.PhaseLoad, runtime.PhaseInit} {
				if s, ok := got[p]; !ok || s != want[p].Seconds() {
					t.Errorf("%s = %g (present %v), want %g", p, s, ok, want[p].Seconds())
				}
			}
			if _, ok := got[runtime.PhaseFirstPrediction]; ok {
				t.Errorf("first_prediction before any prediction: %v", got)
			}

			req, _ := http.NewRequest(http.MethodPost, url+"/v2/models/iris/infer",
				strings.NewReader(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`))
			req.Header.Set("Content-Type", "application/json")
			if auth {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("prediction: %s", resp.Status)
			}
			got, err = ColdStart(context.Background(), http.DefaultClient, url, token)
			if err != nil {
				t.Fatal(err)
			}
			if s := got[runtime.PhaseFirstPrediction]; s <= 0 || s != rt.ColdStart()[runtime.PhaseFirstPrediction].Seconds() {
				t.Errorf("first_prediction = %g, want the runtime's %s", s, rt.ColdStart()[runtime.PhaseFirstPrediction])
			}

			// As `cortex get NAME` prints it: text, and -o json.
			r := oneFunction(Function{Name: "iris", Ready: "True", URL: url, ColdStart: got})
			var out bytes.Buffer
			if err := r.WriteText(&out, io.Discard); err != nil {
				t.Fatal(err)
			}
			line := "last cold start: " + deploy.FormatColdStart(got)
			if !strings.Contains(out.String(), "NAME") || !strings.Contains(out.String(), line) {
				t.Errorf("text:\n%s\nwant the table and %q", out.String(), line)
			}
			for _, p := range runtime.Phases {
				if !strings.Contains(line, p+" ") {
					t.Errorf("%q does not show %s", line, p)
				}
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var back Function
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back.Name != "iris" || back.ColdStart[runtime.PhaseFirstPrediction] != got[runtime.PhaseFirstPrediction] {
				t.Errorf("-o json %s: want the function with its cold start", b)
			}
		})
	}
}

// TestColdStartUnreachable: a function whose metrics cannot be read
// shows no cold start, and get does not fail for it.
func TestColdStartUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	if _, err := ColdStart(context.Background(), http.DefaultClient, url, ""); err == nil {
		t.Error("a 404 /metrics gave a cold start")
	}
	srv.Close()
	f := Function{Name: "iris", Ready: "True", URL: url}
	withColdStart(context.Background(), &f)
	if f.ColdStart != nil {
		t.Errorf("cold start %v from a closed server", f.ColdStart)
	}
	var out bytes.Buffer
	if err := oneFunction(f).WriteText(&out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "cold start") {
		t.Errorf("text says a cold start:\n%s", out.String())
	}
	// A function that requires a token we do not have is not asked.
	f = Function{Name: "iris", Ready: "True", URL: url, tokenEnv: "CORTEX_TEST_NO_SUCH_TOKEN"}
	withColdStart(context.Background(), &f)
	if f.ColdStart != nil {
		t.Errorf("cold start %v without a token", f.ColdStart)
	}
}

// TestNeededEmptyDir: the model cache's emptyDir volume is a feature the
// preflight checks, and its error says how to turn it on.
func TestNeededEmptyDir(t *testing.T) {
	s := svc("img", nil, nil, nil)
	s.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "model-cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	needed := Needed(s)
	if len(needed) != 1 || needed[0].Flag != "kubernetes.podspec-volumes-emptydir" {
		t.Fatalf("needed %v, want kubernetes.podspec-volumes-emptydir", needed)
	}
	needed[0].Value = "disabled"
	msg := (&FeatureError{Service: "ml/llm", Disabled: needed}).Error()
	for _, w := range []string{"model cache", `kubernetes.podspec-volumes-emptydir is "disabled"`, `"kubernetes.podspec-volumes-emptydir":"enabled"`} {
		if !strings.Contains(msg, w) {
			t.Errorf("%q does not say %q", msg, w)
		}
	}
}
