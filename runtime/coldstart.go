package runtime

import (
	"sync"
	"time"
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

// coldStart records how long each phase of this process's start took.
type coldStart struct {
	mu     sync.Mutex
	phases map[string]time.Duration
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
