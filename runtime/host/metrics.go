package host

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// hostMetrics are the host's series, in its own registry (a process that
// embeds the host keeps its default registry to itself). Every per-function
// series is the host's own count, created with the function and never
// deleted: a process's own /metrics goes with the process when the
// function scales to zero, these stay.
type hostMetrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	coldStarts    *prometheus.CounterVec
	coldStartTime *prometheus.HistogramVec
	queueTime     *prometheus.HistogramVec
	processes     *prometheus.GaugeVec
	scaleEvents   *prometheus.CounterVec
	startFailures *prometheus.CounterVec
	crashes       *prometheus.CounterVec
	replaced      *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	inFlight      *prometheus.GaugeVec
	queued        *prometheus.GaugeVec
	direct        *prometheus.CounterVec
}

func newHostMetrics() *hostMetrics {
	fn := []string{"function"}
	m := &hostMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cortex_host_requests_total",
			Help: "Requests on a function's route, by the HTTP status code of the answer: the process's, or the host's own (502, 503); 499 when the caller went away first.",
		}, []string{"function", "code"}),
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
		replaced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cortex_host_replaced_total", Help: "Processes that exited with status 75 (runtime.ExitReplace) to be replaced; not crashes.",
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
		direct: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cortex_host_direct_requests_total",
			Help: "Requests a function's processes answered on its own socket themselves, as they reported them (by status code in each process's cortex_requests_total).",
		}, fn),
	}
	m.reg.MustRegister(m.direct, m.requests, m.coldStarts, m.coldStartTime, m.queueTime, m.processes, m.scaleEvents,
		m.startFailures, m.crashes, m.replaced, m.rejected, m.inFlight, m.queued)
	return m
}

func (m *hostMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// fnMetrics are one function's series, resolved once so the request path
// never hashes labels.
type fnMetrics struct {
	requests                                                                   *byCode
	coldStarts, startFailures, crashes, replaced, rejected, scaleUp, scaleDown prometheus.Counter
	direct                                                                     prometheus.Counter
	coldStartTime, queueTime                                                   prometheus.Observer
	starting, ready, draining, inFlight, queued                                prometheus.Gauge
}

func (m *hostMetrics) forFunction(name string) fnMetrics {
	return fnMetrics{
		requests:      &byCode{vec: m.requests, function: name},
		coldStarts:    m.coldStarts.WithLabelValues(name),
		startFailures: m.startFailures.WithLabelValues(name),
		crashes:       m.crashes.WithLabelValues(name),
		replaced:      m.replaced.WithLabelValues(name),
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
		direct:        m.direct.WithLabelValues(name),
	}
}

// byCode is one function's requests counter per status code, each label
// set resolved once. Each code's entry also keeps its count, which
// /-/status reports: one increment feeds both, so the status page and the
// Prometheus series cannot disagree.
type byCode struct {
	vec      *prometheus.CounterVec
	function string
	counters sync.Map // int -> *codeCount
}

type codeCount struct {
	c prometheus.Counter
	n atomic.Int64
}

func (b *byCode) inc(code int) {
	e, ok := b.counters.Load(code)
	if !ok {
		e, _ = b.counters.LoadOrStore(code, &codeCount{c: b.vec.WithLabelValues(b.function, strconv.Itoa(code))})
	}
	cc := e.(*codeCount)
	cc.n.Add(1)
	cc.c.Inc()
}

// counts returns the requests by status code, and how many of them had a
// status of 400 or more.
func (b *byCode) counts() (byStatus map[int]int64, errors int64) {
	byStatus = map[int]int64{}
	b.counters.Range(func(k, v any) bool {
		n := v.(*codeCount).n.Load()
		byStatus[k.(int)] = n
		if k.(int) >= 400 {
			errors += n
		}
		return true
	})
	return byStatus, errors
}
