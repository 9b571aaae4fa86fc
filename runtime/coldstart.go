package runtime

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cortexfn/cortex/functions"
)

// Cold-start phases, in the order a start goes through them.
const (
	// PhaseFetch is fetching models named by reference into the node's
	// model cache (zero when every model is a file of the function).
	PhaseFetch = "fetch"
	// PhaseLoad is loading the models (ONNX Runtime sessions).
	PhaseLoad = "load"
	// PhaseInit is the rest of the predictor's Init.
	PhaseInit = "init"
	// PhaseFirstPrediction is the first prediction the process serves.
	PhaseFirstPrediction = "first_prediction"
)

// Phases lists the cold-start phases in order.
var Phases = []string{PhaseFetch, PhaseLoad, PhaseInit, PhaseFirstPrediction}

// LoadTimer is implemented by a predictor that can say how much of its
// Init went to loading its models (for runtime/onnx: creating its ONNX
// Runtime sessions, and reading the graphs they need). The runtime
// records that as the cold start's load phase and the rest of Init as its
// init phase; a predictor that does not implement it has all of Init
// counted as init. The runtime asks once, after Init returned.
type LoadTimer interface {
	LoadDuration() time.Duration
}

// ColdStartLogKey is the group of the cold-start phases in the runtime's
// log lines: the "ready" line carries fetch, load and init, the "first
// prediction" line first_prediction, each as a Go duration string
// ("1.5s"). `cortex serve` reads them from its processes' stderr.
const ColdStartLogKey = "cold_start"

// coldStart records how long each phase of this process's start took.
type coldStart struct {
	mu     sync.Mutex
	phases map[string]time.Duration

	// predicted turns true once the first prediction is recorded: the
	// request path's only cost is its Load.
	predicted atomic.Bool
}

// phase records that the named phase took d.
func (c *coldStart) phase(name string, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phases == nil {
		c.phases = make(map[string]time.Duration, 4)
	}
	c.phases[name] = d
}

// get returns the named phase's duration, and whether it was recorded.
func (c *coldStart) get(name string) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.phases[name]
	return d, ok
}

// ColdStart returns the phases of this process's start recorded so far,
// by phase name (Phases): fetch, load and init once Start has succeeded,
// first_prediction once the first prediction has been answered.
func (r *Runtime) ColdStart() map[string]time.Duration {
	r.cold.mu.Lock()
	defer r.cold.mu.Unlock()
	out := make(map[string]time.Duration, len(r.cold.phases))
	for k, v := range r.cold.phases {
		out[k] = v
	}
	return out
}

// started records the phases of a start that succeeded: fetch as the
// fetch step recorded it (zero without one), load as the predictor
// reports it (LoadTimer), init as the rest of initTook, Init's total. It
// observes each in cortex_cold_start_seconds and returns them as the
// ready log line's attribute.
func (r *Runtime) started(initTook time.Duration) slog.Attr {
	var load time.Duration
	if lt, ok := r.p.(LoadTimer); ok {
		load = min(max(lt.LoadDuration(), 0), initTook)
	}
	fetch, _ := r.cold.get(PhaseFetch)
	r.cold.phase(PhaseFetch, fetch)
	r.cold.phase(PhaseLoad, load)
	r.cold.phase(PhaseInit, initTook-load)
	attrs := make([]any, 0, 3)
	for _, p := range []string{PhaseFetch, PhaseLoad, PhaseInit} {
		d, _ := r.cold.get(p)
		r.m.coldStart.WithLabelValues(p).Observe(d.Seconds())
		attrs = append(attrs, slog.String(p, d.String()))
	}
	return slog.Group(ColdStartLogKey, attrs...)
}

// firstPrediction records req, answered d after its admission, as the
// first prediction of the process, unless one was recorded already. The
// caller checks r.cold.predicted first, so that every later request pays
// one atomic load and no more.
//
// A model description (the OIP metadata routes, which reach the
// predictor's catalog through invoke as a GET) is not a prediction and is
// not recorded; any GET is taken for one, so a prediction sent by GET
// (possible only in an API Gateway event) is not counted and the next one
// is. Comparing jobs would be exact, but Go funcs do not compare.
func (r *Runtime) firstPrediction(req *functions.Request, d time.Duration) {
	if req.Method == "GET" || !r.cold.predicted.CompareAndSwap(false, true) {
		return
	}
	r.cold.phase(PhaseFirstPrediction, d)
	r.m.coldStart.WithLabelValues(PhaseFirstPrediction).Observe(d.Seconds())
	r.log.Info("first prediction", "request_id", req.ID,
		slog.Group(ColdStartLogKey, slog.String(PhaseFirstPrediction, d.String())))
}
