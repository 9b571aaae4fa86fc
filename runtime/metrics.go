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
	queued   prometheus.Gauge
	loadTime prometheus.Gauge
	ready    prometheus.Gauge
	rejected *prometheus.CounterVec
	byStatus sync.Map // int -> prometheus.Counter: no label hashing per request

	batchSize, batchWait prometheus.Histogram // observed only when batching is on
}

func newMetrics(constLabels prometheus.Labels) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), labels: constLabels}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cortex_requests_total", Help: "Predictions served, by HTTP status code.",
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
	m.queued = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cortex_requests_queued", Help: "Requests waiting for a concurrency slot.", ConstLabels: constLabels,
	})
	m.loadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cortex_model_load_seconds", Help: "How long the predictor's Init took.", ConstLabels: constLabels,
	})
	m.ready = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cortex_ready", Help: "1 when the function is ready to serve.", ConstLabels: constLabels,
	})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cortex_requests_rejected_total", Help: "Requests refused before reaching the predictor, by reason.",
		ConstLabels: constLabels,
	}, []string{"reason"})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "cortex_batch_size", Help: "Requests per batch run (batching.max_batch_size).", ConstLabels: constLabels,
		Buckets: prometheus.ExponentialBuckets(1, 2, 10),
	})
	m.batchWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "cortex_batch_wait_seconds", Help: "Time a request waited for its batch to close.", ConstLabels: constLabels,
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	})
	m.reg.MustRegister(m.requests, m.latency, m.inFlight, m.queued, m.loadTime, m.ready, m.rejected, m.batchSize, m.batchWait,
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
