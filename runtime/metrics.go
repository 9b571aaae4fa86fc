package runtime

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the function's Prometheus series. Every series carries the
// function's name, and the Knative revision when there is one, as constant
// labels so a scrape of many functions stays apart.
type metrics struct {
	reg      *prometheus.Registry
	labels   prometheus.Labels // the constant labels every series carries
	requests *prometheus.CounterVec
	latency  prometheus.Histogram
	inFlight prometheus.Gauge
	overrun  prometheus.Gauge
	queued   prometheus.Gauge
	loadTime prometheus.Gauge
	// coldStart is cortex_cold_start_seconds: each phase of this
	// process's start (coldstart.go), observed once per phase.
	coldStart *prometheus.HistogramVec
	ready     prometheus.Gauge
	rejected  *prometheus.CounterVec
	// cancelled counts predictions whose caller went away first.
	cancelled prometheus.Counter
	byStatus  sync.Map // int -> prometheus.Counter: no label hashing per request

	batchSize, batchWait prometheus.Histogram // observed only when batching is on
}

func newMetrics(constLabels prometheus.Labels) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), labels: constLabels}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cortex_requests_total", Help: "Requests answered, by HTTP status code: predictions and every refusal (413, 405, 404, 503, ...); probes and scrapes are not counted.",
		ConstLabels: constLabels,
	}, []string{"code"})
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "cortex_request_duration_seconds", Help: "Time from admission to answer, queueing included.",
		ConstLabels: constLabels,
		Buckets:     []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cortex_requests_in_flight", Help: "Predictions running now.", ConstLabels: constLabels,
	})
	m.overrun = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cortex_overrunning_predictions", Help: "Predictions still running past their deadline, whose callers have had their answer; past limits.overrun_grace the process is replaced.",
		ConstLabels: constLabels,
	})
	m.queued = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cortex_requests_queued", Help: "Requests waiting for a concurrency slot.", ConstLabels: constLabels,
	})
	m.loadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cortex_model_load_seconds", Help: "How long the predictor's Init took.", ConstLabels: constLabels,
	})
	m.coldStart = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "cortex_cold_start_seconds", Help: "Each phase of the process's start, by phase: fetch (models named by reference), load (model sessions), init (the rest of the predictor's Init), first_prediction (the first prediction answered). One observation per phase per process; sum by phase across replicas.",
		ConstLabels: constLabels,
		// 1 ms to 10 min: an init that does nothing, up to a multi-GB
		// model fetched and loaded onto a GPU.
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
	}, []string{"phase"})
	m.ready = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cortex_ready", Help: "1 when the function is ready to serve.", ConstLabels: constLabels,
	})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cortex_requests_rejected_total", Help: "Requests refused before reaching the predictor, by reason.",
		ConstLabels: constLabels,
	}, []string{"reason"})
	m.cancelled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cortex_predictions_cancelled_total", Help: "Predictions whose caller went away before the answer (a closed connection, a stream no longer read): their context was cancelled.",
		ConstLabels: constLabels,
	})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "cortex_batch_size", Help: "Requests per batch run (batching.max_batch_size).", ConstLabels: constLabels,
		Buckets: prometheus.ExponentialBuckets(1, 2, 10),
	})
	m.batchWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "cortex_batch_wait_seconds", Help: "Time a request waited for its batch to close.", ConstLabels: constLabels,
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	})
	m.reg.MustRegister(m.requests, m.latency, m.inFlight, m.overrun, m.queued, m.loadTime, m.coldStart, m.ready, m.rejected, m.cancelled, m.batchSize, m.batchWait,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) countStatus(code int) {
	if c, ok := m.byStatus.Load(code); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := m.requests.WithLabelValues(strconv.Itoa(code))
	m.byStatus.Store(code, c)
	c.Inc()
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// countAnswers counts every answer h sends in cortex_requests_total, by
// the status the client gets: predictions, and the answers the carriers
// give without the runtime (a body over limits.max_body refused before it
// is read, a wrong method, an unknown route, an undecodable body or
// CloudEvent), which Invoke never sees. Counting where the answer leaves
// is the one place none escapes. Probes and scrapes are left out: they are
// the platform's traffic, not the function's, and a kubelet probing every
// few seconds would dilute every error rate.
func (r *Runtime) countAnswers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if isProbe(req) {
			h.ServeHTTP(w, req)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, req)
		r.m.countStatus(sw.status())
	})
}

// isProbe reports whether req is a health probe or a metrics scrape.
func isProbe(req *http.Request) bool {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false
	}
	switch req.URL.Path {
	case "/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready":
		return true
	}
	return false
}

// statusWriter records the status of the answer written through it.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming answers streaming.
func (w *statusWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// status is the answer's status; a handler that wrote nothing sent 200.
func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
