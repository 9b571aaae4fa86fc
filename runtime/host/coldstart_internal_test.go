package host

import (
	"encoding/json"
	"testing"
	"time"
)

// TestPhaseRecordWatch reads the phases of the runtime's log lines as a
// process writes them, and nothing from other lines.
func TestPhaseRecordWatch(t *testing.T) {
	var r phaseRecord
	for _, line := range []string{
		`{"time":"2026-12-06T10:00:00Z","level":"INFO","msg":"onnx: model loaded"}`,
		`not JSON, but says "cold_start":{ anyway`,
		`{"level":"INFO","msg":"ready","load_time":"52ms","cold_start":{"fetch":"0s","load":"45.5ms","init":"1.2ms"},"max_concurrency":16}`,
		`{"level":"INFO","msg":"other","cold_start":{"load":"not a duration","init":"-1s"}}`,
		`{"level":"INFO","msg":"first prediction","request_id":"ab","cold_start":{"first_prediction":"3ms"}}`,
	} {
		r.watch([]byte(line))
	}
	want := map[string]time.Duration{"fetch": 0, "load": 45500 * time.Microsecond, "init": 1200 * time.Microsecond, "first_prediction": 3 * time.Millisecond}
	got := r.snapshot()
	if len(got) != len(want) {
		t.Fatalf("phases %v, want %v", got, want)
	}
	for k, d := range want {
		if got[k] != d {
			t.Errorf("%s = %s, want %s", k, got[k], d)
		}
	}
	var none *phaseRecord
	if none.snapshot() != nil {
		t.Error("a function that never started has phases")
	}
}

// TestStatusPhasesJSON: /-/status carries the phases in seconds, and
// FetchStatus's decoding gives them back.
func TestStatusPhasesJSON(t *testing.T) {
	s := FunctionStatus{Name: "iris", ColdStarts: 1, LastColdStart: time.Second,
		LastColdStartPhases: map[string]time.Duration{"fetch": 0, "load": 250 * time.Millisecond, "first_prediction": 4 * time.Millisecond}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if p, ok := m["last_cold_start_phases_seconds"].(map[string]any); !ok || p["load"] != 0.25 {
		t.Fatalf("%s: want last_cold_start_phases_seconds with load 0.25", b)
	}
	var back FunctionStatus
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.LastColdStartPhases["load"] != 250*time.Millisecond || back.LastColdStartPhases["first_prediction"] != 4*time.Millisecond {
		t.Errorf("decoded %v", back.LastColdStartPhases)
	}
	b, _ = json.Marshal(FunctionStatus{Name: "cold"})
	var cold map[string]any
	if json.Unmarshal(b, &cold); cold["last_cold_start_phases_seconds"] != nil {
		t.Errorf("%s: phases of a function that never started", b)
	}
}
