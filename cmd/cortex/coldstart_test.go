package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/runtime"
)

// TestServeShowsColdStartPhases serves the iris sample with cortex serve:
// after its cold start and first prediction, /-/status has every phase,
// the model's load among them, and the status line shows them.
func TestServeShowsColdStartPhases(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "iris")
	copyFunctionDir(t, "../../samples/iris", dir)
	s := startServe(t, []string{dir}, serveOptions{}, 1)
	resp, err := watchClient.Post(s.base+"/iris/v2/models/iris/infer", "application/json",
		strings.NewReader(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("prediction: %s", resp.Status)
	}
	var phases map[string]time.Duration
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st := s.status(t)["iris"]
		if phases = st.LastColdStartPhases; len(phases) == len(runtime.Phases) {
			line := statusLine(st)
			if !strings.Contains(line, "(fetch 0s, load ") || !strings.Contains(line, ", first_prediction ") {
				t.Errorf("status line %q does not show the phases", line)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/-/status phases %v, want %v", phases, runtime.Phases)
		}
	}
	if phases[runtime.PhaseLoad] <= 0 || phases[runtime.PhaseFirstPrediction] <= 0 {
		t.Errorf("phases %v: want the ONNX session's load and the first prediction", phases)
	}
}
