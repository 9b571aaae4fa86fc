package runtime_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/onnx"
)

var (
	_ runtime.LoadTimer = (*onnx.Predictor)(nil)
	_ runtime.LoadTimer = (*onnx.Repository)(nil)
)

// syncBuffer is a log sink the runtime's goroutines may write to while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log lines whose msg is msg.
func (b *syncBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// logPhases reads the cold_start group of a log line.
func logPhases(t *testing.T, line map[string]any) map[string]time.Duration {
	t.Helper()
	g, ok := line[runtime.ColdStartLogKey].(map[string]any)
	if !ok {
		t.Fatalf("log line %v has no %s group", line, runtime.ColdStartLogKey)
	}
	out := map[string]time.Duration{}
	for k, v := range g {
		s, _ := v.(string)
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("%s.%s = %v: %v", runtime.ColdStartLogKey, k, v, err)
		}
		out[k] = d
	}
	return out
}

// phaseCounts is cortex_cold_start_seconds' observation count and sum by
// phase.
func phaseCounts(t *testing.T, rt *runtime.Runtime) (count map[string]uint64, sum map[string]float64) {
	t.Helper()
	count, sum = map[string]uint64{}, map[string]float64{}
	f, ok := scrape(t, rt)["cortex_cold_start_seconds"]
	if !ok {
		t.Fatal("no cortex_cold_start_seconds")
	}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "phase" {
				count[l.GetValue()] = m.GetHistogram().GetSampleCount()
				sum[l.GetValue()] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return count, sum
}

// TestColdStartPhasesIris starts the real iris sample, single model and
// repository, and follows its cold start through the phase record, the
// histogram and the log: load is the sessions' creation, reported by the
// predictor; only the first successful prediction is first_prediction.
func TestColdStartPhasesIris(t *testing.T) {
	samples, err := filepath.Abs(filepath.Join("..", "samples"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		p     functions.Predictor
		cfg   runtime.Config
		model string // the model a request names
	}{
		{name: "predictor", p: onnx.New(), model: "iris", cfg: runtime.Config{Name: "iris", Dir: filepath.Join(samples, "iris"),
			Predictor: runtime.PredictorConfig{Type: "onnx", Model: "model/iris.onnx"}}},
		{name: "repository", p: onnx.NewRepository(onnx.WithModelsDir("models")), model: "iris",
			cfg: runtime.Config{Name: "iris-multi", Dir: filepath.Join(samples, "iris-multi"), Predictor: runtime.PredictorConfig{Type: "onnx"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			rt, err := runtime.New(tt.p, tt.cfg, runtime.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
			if err != nil {
				t.Fatal(err)
			}
			if err := rt.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rt.Shutdown(context.Background()) })

			got := rt.ColdStart()
			if got[runtime.PhaseLoad] <= 0 {
				t.Errorf("load = %s, want > 0: the sessions' creation", got[runtime.PhaseLoad])
			}
			if want := tt.p.(runtime.LoadTimer).LoadDuration(); got[runtime.PhaseLoad] != want {
				t.Errorf("load = %s, want the predictor's LoadDuration %s", got[runtime.PhaseLoad], want)
			}
			if d, ok := got[runtime.PhaseFetch]; !ok || d != 0 {
				t.Errorf("fetch = %s (recorded %v), want 0 recorded: no model by reference", d, ok)
			}
			if d, ok := got[runtime.PhaseInit]; !ok || d < 0 {
				t.Errorf("init = %s (recorded %v), want >= 0", d, ok)
			}
			if _, ok := got[runtime.PhaseFirstPrediction]; ok {
				t.Errorf("first_prediction recorded before any prediction: %v", got)
			}

			ready := logs.lines(t, "ready")
			if len(ready) != 1 {
				t.Fatalf("%d ready lines, want 1", len(ready))
			}
			lp := logPhases(t, ready[0])
			for _, p := range []string{runtime.PhaseFetch, runtime.PhaseLoad, runtime.PhaseInit} {
				if lp[p] != got[p] {
					t.Errorf("ready line %s = %s, want %s", p, lp[p], got[p])
				}
			}
			count, sum := phaseCounts(t, rt)
			for _, p := range []string{runtime.PhaseFetch, runtime.PhaseLoad, runtime.PhaseInit} {
				if count[p] != 1 {
					t.Errorf("cortex_cold_start_seconds{phase=%q} count = %d, want 1", p, count[p])
				}
			}
			if sum[runtime.PhaseLoad] != got[runtime.PhaseLoad].Seconds() {
				t.Errorf("load observed %gs, want %gs", sum[runtime.PhaseLoad], got[runtime.PhaseLoad].Seconds())
			}
			if count[runtime.PhaseFirstPrediction] != 0 {
				t.Errorf("first_prediction observed %d times before any prediction", count[runtime.PhaseFirstPrediction])
			}

			// Neither a model's description nor a refused prediction is
			// the first prediction.
			if _, err := rt.DescribeModel(context.Background(), tt.model, ""); err != nil {
				t.Fatal(err)
			}
			bad := irisRequest(0)
			bad.Model, bad.Body = tt.model, []byte(`{"inputs":[]}`)
			if _, err := rt.Invoke(context.Background(), bad); err == nil {
				t.Fatal("an empty inference request was answered")
			}
			if _, ok := rt.ColdStart()[runtime.PhaseFirstPrediction]; ok {
				t.Fatal("first_prediction recorded for a description or a refused request")
			}
			for i := range 3 {
				req := irisRequest(i)
				req.Model = tt.model
				if _, err := rt.Invoke(context.Background(), req); err != nil {
					t.Fatal(err)
				}
			}
			first, ok := rt.ColdStart()[runtime.PhaseFirstPrediction]
			if !ok || first <= 0 {
				t.Fatalf("first_prediction = %s (recorded %v), want > 0", first, ok)
			}
			count, sum = phaseCounts(t, rt)
			if count[runtime.PhaseFirstPrediction] != 1 || sum[runtime.PhaseFirstPrediction] != first.Seconds() {
				t.Errorf("first_prediction observed %d times, sum %gs; want once, %gs", count[runtime.PhaseFirstPrediction], sum[runtime.PhaseFirstPrediction], first.Seconds())
			}
			fl := logs.lines(t, "first prediction")
			if len(fl) != 1 {
				t.Fatalf("%d first prediction lines, want 1", len(fl))
			}
			if d := logPhases(t, fl[0])[runtime.PhaseFirstPrediction]; d != first {
				t.Errorf("first prediction line says %s, want %s", d, first)
			}
		})
	}
}

// slowInit spends at least its sleep in Init and says part of it was
// loading.
type slowInit struct {
	sleep, load time.Duration
}

func (p *slowInit) Init(context.Context, functions.Config) error {
	time.Sleep(p.sleep)
	return nil
}
func (p *slowInit) LoadDuration() time.Duration { return p.load }
func (p *slowInit) Predict(context.Context, *functions.Request) (*functions.Response, error) {
	return functions.Text(200, "ok"), nil
}

// TestColdStartSplitsInit: load is what the predictor reports, capped by
// Init's total; init is the rest. A predictor without LoadTimer has all of
// Init as init.
func TestColdStartSplitsInit(t *testing.T) {
	tests := []struct {
		name     string
		p        functions.Predictor
		wantLoad time.Duration
		minInit  time.Duration
	}{
		{name: "load reported", p: &slowInit{sleep: 20 * time.Millisecond, load: 5 * time.Millisecond},
			wantLoad: 5 * time.Millisecond, minInit: 15 * time.Millisecond},
		{name: "no load timer", p: functions.PredictorFunc(func(context.Context, *functions.Request) (*functions.Response, error) {
			return nil, nil
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := newRuntime(t, tt.p, runtime.Limits{})
			got := rt.ColdStart()
			if got[runtime.PhaseLoad] != tt.wantLoad {
				t.Errorf("load = %s, want %s", got[runtime.PhaseLoad], tt.wantLoad)
			}
			if got[runtime.PhaseInit] < tt.minInit {
				t.Errorf("init = %s, want at least %s", got[runtime.PhaseInit], tt.minInit)
			}
		})
	}
}

// TestColdStartLoadCapped: a predictor that reports more load than its
// Init took cannot make init negative.
func TestColdStartLoadCapped(t *testing.T) {
	rt := newRuntime(t, &slowInit{load: time.Hour}, runtime.Limits{})
	got := rt.ColdStart()
	if got[runtime.PhaseInit] != 0 || got[runtime.PhaseLoad] >= time.Hour {
		t.Errorf("load %s, init %s; want load capped at Init's total and init 0", got[runtime.PhaseLoad], got[runtime.PhaseInit])
	}
}
