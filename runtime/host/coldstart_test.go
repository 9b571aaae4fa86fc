package host_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/host"
)

// TestStatusShowsColdStartPhases: after a cold start, the function's
// status has the phases its process logged, its Init's delay in init, and
// first_prediction once the first prediction is answered.
func TestStatusShowsColdStartPhases(t *testing.T) {
	fn := function("fn", host.Autoscaling{}, "CORTEX_LOG_LEVEL=info", "FN_INIT_DELAY=50ms")
	e := start(t, []host.Function{fn})
	if a := e.post(t, "/fn/predict", "x"); a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.err)
	}
	var got map[string]time.Duration
	eventually(t, 10*time.Second, "the status shows every phase", func() bool {
		got = e.status(t, "fn").LastColdStartPhases
		return len(got) == len(runtime.Phases)
	})
	if got[runtime.PhaseInit] < 50*time.Millisecond {
		t.Errorf("init %s, want at least Init's 50ms delay", got[runtime.PhaseInit])
	}
	if got[runtime.PhaseFirstPrediction] <= 0 || got[runtime.PhaseLoad] != 0 || got[runtime.PhaseFetch] != 0 {
		t.Errorf("phases %v, want first_prediction > 0, and no load or fetch for a predictor with no model", got)
	}
}
