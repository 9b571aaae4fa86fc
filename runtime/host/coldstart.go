package host

import (
	"bytes"
	"encoding/json"
	"maps"
	"sync"
	"time"

	"github.com/cortexfn/cortex/runtime"
)

// How the host learns a process's cold start phase by phase: from the
// process's own log. The runtime logs its fetch, load and init phases in
// its "ready" line and its first_prediction in a "first prediction" line,
// each in a cold_start group (runtime.ColdStartLogKey), and the host
// watches every process's stderr for them (supervisor.Config.Watch).
//
// The log rather than the process's /metrics or the control channel:
// every process writes it (the control channel exists only for functions
// with a port of their own), it costs no request, and the first
// prediction is seen whichever socket it came in on. A process whose log
// level is above info logs no phases, and its status shows none.

// phaseRecord is the cold start of one process, as its log lines say.
type phaseRecord struct {
	mu     sync.Mutex
	phases map[string]time.Duration
}

// coldStartMarker is in every log line that carries phases: lines without
// it cost the watch one bytes.Contains.
var coldStartMarker = []byte(`"` + runtime.ColdStartLogKey + `":{`)

// watch reads the phases a log line carries, if any.
func (r *phaseRecord) watch(line []byte) {
	if !bytes.Contains(line, coldStartMarker) {
		return
	}
	var l struct {
		ColdStart map[string]string `json:"cold_start"`
	}
	if json.Unmarshal(line, &l) != nil {
		return // not the runtime's JSON log: nothing to read
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, name := range runtime.Phases {
		v, ok := l.ColdStart[name]
		if !ok {
			continue
		}
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			if r.phases == nil {
				r.phases = make(map[string]time.Duration, len(runtime.Phases))
			}
			r.phases[name] = d
		}
	}
}

// snapshot returns the phases recorded so far; nil when none.
func (r *phaseRecord) snapshot() map[string]time.Duration {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.phases)
}

// phaseSeconds turns phases into seconds for JSON.
func phaseSeconds(p map[string]time.Duration) map[string]float64 {
	if len(p) == 0 {
		return nil
	}
	out := make(map[string]float64, len(p))
	for k, d := range p {
		out[k] = d.Seconds()
	}
	return out
}

// phaseDurations reads what phaseSeconds writes.
func phaseDurations(p map[string]float64) map[string]time.Duration {
	if len(p) == 0 {
		return nil
	}
	out := make(map[string]time.Duration, len(p))
	for k, s := range p {
		out[k] = time.Duration(s * float64(time.Second))
	}
	return out
}
