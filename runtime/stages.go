package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime/wasm"
)

// stages are the function's optional WebAssembly pre and post stages. pre
// turns the request body into the predictor's input; post turns the
// predictor's answer into the response body. When both name the same file
// one module serves both.
type stages struct {
	pre, post *wasm.Module
	modules   map[string]*wasm.Module // by path
	latency   *prometheus.HistogramVec
}

// collect registers the stages' metrics: call latency by stage, and each
// module's pool size, live instances, discards by reason and guest log
// lines dropped, read from the pools when scraped.
func (s *stages) collect(reg prometheus.Registerer, constLabels prometheus.Labels) {
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "cortex_stage_duration_seconds", Help: "Time in a WebAssembly stage call, by stage.",
		ConstLabels: constLabels,
		Buckets:     []float64{.00001, .00005, .0001, .0005, .001, .005, .01, .05, .1, .5, 1},
	}, []string{"stage"})
	reg.MustRegister(s.latency, &poolCollector{s: s, labels: constLabels})
}

// poolCollector reports the stage pools' state at scrape time.
type poolCollector struct {
	s      *stages
	labels prometheus.Labels
}

var (
	poolSizeDesc = func(l prometheus.Labels) *prometheus.Desc {
		return prometheus.NewDesc("cortex_stage_instances", "WebAssembly stage instances, by stage and state (size: the pool's configured size; live: existing now).", []string{"stage", "state"}, l)
	}
	poolDiscardDesc = func(l prometheus.Labels) *prometheus.Desc {
		return prometheus.NewDesc("cortex_stage_discards_total", "WebAssembly stage instances discarded and replaced, by stage and reason.", []string{"stage", "reason"}, l)
	}
	logDroppedDesc = func(l prometheus.Labels) *prometheus.Desc {
		return prometheus.NewDesc("cortex_stage_log_dropped_lines_total", "Guest log lines (cortex.log) dropped by the log limits, by stage.", []string{"stage"}, l)
	}
	logDroppedBytesDesc = func(l prometheus.Labels) *prometheus.Desc {
		return prometheus.NewDesc("cortex_stage_log_dropped_bytes_total", "Bytes of guest log lines (cortex.log) dropped by the log limits, by stage.", []string{"stage"}, l)
	}
)

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolSizeDesc(c.labels)
	ch <- poolDiscardDesc(c.labels)
	ch <- logDroppedDesc(c.labels)
	ch <- logDroppedBytesDesc(c.labels)
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	size, discard := poolSizeDesc(c.labels), poolDiscardDesc(c.labels)
	dropped, droppedBytes := logDroppedDesc(c.labels), logDroppedBytesDesc(c.labels)
	for _, st := range []struct {
		name string
		m    *wasm.Module
	}{{"pre", c.s.pre}, {"post", c.s.post}} {
		if st.m == nil || (st.name == "post" && st.m == c.s.pre) {
			continue // one module serving both stages is reported once, as pre
		}
		stats := st.m.Stats()
		ch <- prometheus.MustNewConstMetric(size, prometheus.GaugeValue, float64(stats.Size), st.name, "size")
		ch <- prometheus.MustNewConstMetric(size, prometheus.GaugeValue, float64(stats.Live), st.name, "live")
		for reason, n := range stats.Discards {
			ch <- prometheus.MustNewConstMetric(discard, prometheus.CounterValue, float64(n), st.name, string(reason))
		}
		ch <- prometheus.MustNewConstMetric(dropped, prometheus.CounterValue, float64(stats.LogDropped), st.name)
		ch <- prometheus.MustNewConstMetric(droppedBytes, prometheus.CounterValue, float64(stats.LogDroppedBytes), st.name)
	}
}

// loadStages compiles and warms the stages named in cfg. The instance pool
// is as large as the function's concurrency, but at most twice the CPUs: a
// stage is CPU-bound, so more instances only hold memory (8–16 MB each for
// a Go guest) while callers wait for a CPU anyway.
func loadStages(ctx context.Context, cfg *Config, limits Limits) (*stages, error) {
	if cfg.Pre == "" && cfg.Post == "" {
		return nil, nil
	}
	env, err := stageEnv(cfg.Wasm, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	opts := wasm.Options{
		Instances:        min(limits.MaxConcurrency, 2*goruntime.GOMAXPROCS(0)),
		MemoryLimitPages: uint32(cfg.Wasm.MemoryLimit >> 16),
		MaxOutput:        int(limits.MaxBody),
		CacheDir:         cfg.WasmCacheDir,
		Env:              env,
		Clock:            cfg.Wasm.Clock,
		Random:           cfg.Wasm.Random,
		Uninterruptible:  cfg.Wasm.Uninterruptible,
	}
	s := &stages{modules: map[string]*wasm.Module{}}
	open := func(path string) (*wasm.Module, error) {
		if m, ok := s.modules[path]; ok {
			return m, nil
		}
		m, err := wasm.New(ctx, path, opts)
		if err != nil {
			return nil, err
		}
		s.modules[path] = m
		return m, nil
	}
	if cfg.Pre != "" {
		if s.pre, err = open(cfg.Path(cfg.Pre)); err != nil {
			return nil, errors.Join(fmt.Errorf("loading pre stage %s: %w", cfg.Pre, err), s.close(ctx))
		}
		if !s.pre.HasPreprocess() {
			return nil, errors.Join(fmt.Errorf("pre stage %s exports no preprocess function (see runtime/wasm/ABI.md)", cfg.Pre), s.close(ctx))
		}
	}
	if cfg.Post != "" {
		if s.post, err = open(cfg.Path(cfg.Post)); err != nil {
			return nil, errors.Join(fmt.Errorf("loading post stage %s: %w", cfg.Post, err), s.close(ctx))
		}
		if !s.post.HasPostprocess() {
			return nil, errors.Join(fmt.Errorf("post stage %s exports no postprocess function (see runtime/wasm/ABI.md)", cfg.Post), s.close(ctx))
		}
	}
	return s, nil
}

// stageEnv is the environment the stages see: wasm.env, and each variable
// wasm.secret_env names with its value from lookup (the process's
// environment), where the platform put the secret; the config has its
// name only. A secret that is not set fails the start, naming it: a stage
// that went without would fail its requests instead, one by one.
func stageEnv(w WasmConfig, lookup func(string) (string, bool)) (map[string]string, error) {
	if len(w.SecretEnv) == 0 {
		return w.Env, nil
	}
	env := make(map[string]string, len(w.Env)+len(w.SecretEnv))
	maps.Copy(env, w.Env)
	var missing []string
	for _, name := range w.SecretEnv {
		v, ok := lookup(name)
		if !ok {
			missing = append(missing, "$"+name)
			continue
		}
		env[name] = v
	}
	if len(missing) > 0 {
		verb := "is"
		if len(missing) > 1 {
			verb = "are"
		}
		return nil, fmt.Errorf("wasm.secret_env: %s %s not set in the function's environment: on Knative the Service sets each from its Kubernetes Secret (does the Secret exist, with the key?); on this machine (cortex serve, cortex test), from the variable of the same name in the environment of the command",
			strings.Join(missing, ", "), verb)
	}
	return env, nil
}

// predict runs pre, the predictor and post for one request.
func (s *stages) predict(ctx context.Context, p functions.Predictor, req *functions.Request) (*functions.Response, error) {
	if s == nil {
		return p.Predict(ctx, req)
	}
	if err := s.preprocess(ctx, req); err != nil {
		return nil, err
	}
	resp, err := p.Predict(ctx, req)
	if err != nil {
		return nil, err
	}
	return s.postprocess(ctx, resp)
}

// preprocess runs the pre stage on the request body, when there is one.
func (s *stages) preprocess(ctx context.Context, req *functions.Request) error {
	if s == nil || s.pre == nil {
		return nil
	}
	defer s.observe("pre", time.Now())
	out, err := s.pre.Preprocess(ctx, req.Body)
	if err != nil {
		return err
	}
	req.Body, req.ContentType = out, sniff(out)
	return nil
}

// postprocess runs the post stage on a 2xx answer: an error from the
// predictor reaches the caller as it is.
func (s *stages) postprocess(ctx context.Context, resp *functions.Response) (*functions.Response, error) {
	if s == nil || s.post == nil || resp == nil || resp.StatusCode() >= 300 {
		return resp, nil
	}
	defer s.observe("post", time.Now())
	out, err := s.post.Postprocess(ctx, resp.Body)
	if err != nil {
		return nil, err
	}
	return functions.Bytes(resp.StatusCode(), sniff(out), out), nil
}

// postChunk runs the post stage on one chunk of a streamed prediction.
func (s *stages) postChunk(ctx context.Context, chunk []byte) ([]byte, error) {
	defer s.observe("post", time.Now())
	return s.post.Postprocess(ctx, chunk)
}

func (s *stages) observe(stage string, start time.Time) {
	if s.latency != nil {
		s.latency.WithLabelValues(stage).Observe(time.Since(start).Seconds())
	}
}

// sniff names a stage's output: JSON when it looks like a JSON document,
// bytes otherwise. A stage that needs another type can be followed by a Go
// predictor that sets it.
func sniff(b []byte) string {
	t := bytes.TrimLeft(b, " \t\r\n")
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return "application/json"
	}
	return "application/octet-stream"
}

func (s *stages) close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, m := range s.modules {
		errs = append(errs, m.Close(ctx))
	}
	return errors.Join(errs...)
}
