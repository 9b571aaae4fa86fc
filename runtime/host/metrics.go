package host

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// hostMetrics are the host's series, in its own registry (a process that
// embeds the host keeps its default registry to itself).
type hostMetrics struct {
	reg           *prometheus.Registry
	coldStarts    *prometheus.CounterVec
	coldStartTime *prometheus.HistogramVec
	queueTime     *prometheus.HistogramVec
	processes     *prometheus.GaugeVec
	scaleEvents   *prometheus.CounterVec
	startFailures *prometheus.CounterVec
	crashes       *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	inFlight      *prometheus.GaugeVec
	queued        *prometheus.GaugeVec
}

func newHostMetrics() *hostMetrics {
	fn := []string{"function"}
	m := &hostMetrics{
		reg: prometheus.NewRegistry(),
		coldStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cortex_host_cold_starts_total", Help: "Function processes started that became ready.",
		}, fn),
		coldStartTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cortex_host_cold_start_duration_seconds", Help: "Time from spawning a function process to its first 200 on /readyz.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, fn),
		queueTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cortex_host_queue_duration_seconds", Help: "Time a request waited in the host for a process slot (cold starts included).",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, fn),
		processes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cortex_host_processes", Help: "Function processes, by state (starting, ready, draining).",
		}, []string{"function", "state"}),
		scaleEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cortex_host_scale_events_total", Help: "Processes started (up) and drained (down) by the autoscaler.",
		}, []string{"function", "direction"}),
		startFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cortex_host_start_failures_total", Help: "Process starts that ended before ready.",
		}, fn),
		crashes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cortex_host_crashes_total", Help: "Ready processes that exited unasked or were killed as hung.",
		}, fn),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cortex_host_rejected_total", Help: "Requests refused because the function's queue was full.",
		}, fn),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cortex_host_requests_in_flight", Help: "Requests forwarded to a process and not yet answered.",
		}, fn),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cortex_host_requests_queued", Help: "Requests held in the host waiting for a process slot.",
		}, fn),
	}
	m.reg.MustRegister(m.coldStarts, m.coldStartTime, m.queueTime, m.processes, m.scaleEvents,
		m.startFailures, m.crashes, m.rejected, m.inFlight, m.queued)
	return m
}

func (m *hostMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// fnMetrics are one function's series, resolved once so the request path
// never hashes labels.
type fnMetrics struct {
	coldStarts, startFailures, crashes, rejected, scaleUp, scaleDown prometheus.Counter
	coldStartTime, queueTime                                         prometheus.Observer
	starting, ready, draining, inFlight, queued                      prometheus.Gauge
}

func (m *hostMetrics) forFunction(name string) fnMetrics {
	return fnMetrics{
		coldStarts:    m.coldStarts.WithLabelValues(name),
		startFailures: m.startFailures.WithLabelValues(name),
		crashes:       m.crashes.WithLabelValues(name),
		rejected:      m.rejected.WithLabelValues(name),
		scaleUp:       m.scaleEvents.WithLabelValues(name, "up"),
		scaleDown:     m.scaleEvents.WithLabelValues(name, "down"),
		coldStartTime: m.coldStartTime.WithLabelValues(name),
		queueTime:     m.queueTime.WithLabelValues(name),
		starting:      m.processes.WithLabelValues(name, "starting"),
		ready:         m.processes.WithLabelValues(name, "ready"),
		draining:      m.processes.WithLabelValues(name, "draining"),
		inFlight:      m.inFlight.WithLabelValues(name),
		queued:        m.queued.WithLabelValues(name),
	}
}
