package deploy

import (
	"strings"
	"time"

	"github.com/cortexfn/cortex/runtime"
)

// FormatColdStart writes a cold start's phases (seconds by phase) in
// runtime.Phases' order, as `cortex get` and `cortex serve` print them:
// "fetch 0s, load 45ms, init 2ms, first_prediction 3ms".
func FormatColdStart(phases map[string]float64) string {
	var parts []string
	for _, p := range runtime.Phases {
		if s, ok := phases[p]; ok {
			parts = append(parts, p+" "+roundPhase(time.Duration(s*float64(time.Second))).String())
		}
	}
	return strings.Join(parts, ", ")
}

// roundPhase keeps three significant figures or so: 1.23s, 45.6ms, 789µs.
func roundPhase(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
