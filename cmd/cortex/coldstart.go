package main

import (
	"time"

	"github.com/cortexfn/cortex/packager/deploy"
)

// coldStartPhases writes a cold start's phases as `cortex get` does:
// "fetch 0s, load 45.12ms, init 1.2ms, first_prediction 3.4ms"; empty
// when there are none. (From packager/deploy, not its Knative platform:
// a CLI built with -tags nodeploy must not link Kubernetes' clients.)
func coldStartPhases(p map[string]time.Duration) string {
	if len(p) == 0 {
		return ""
	}
	s := make(map[string]float64, len(p))
	for k, d := range p {
		s[k] = d.Seconds()
	}
	return deploy.FormatColdStart(s)
}
