package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	goruntime "runtime"

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
}

// loadStages compiles and warms the stages named in cfg. The instance pool
// is as large as the function's concurrency, but at most twice the CPUs: a
// stage is CPU-bound, so more instances only hold memory (8–16 MB each for
// a Go guest) while callers wait for a CPU anyway.
func loadStages(ctx context.Context, cfg *Config, limits Limits) (*stages, error) {
	if cfg.Pre == "" && cfg.Post == "" {
		return nil, nil
	}
	opts := wasm.Options{
		Instances:        min(limits.MaxConcurrency, 2*goruntime.GOMAXPROCS(0)),
		MemoryLimitPages: uint32(cfg.Wasm.MemoryLimit >> 16),
		MaxOutput:        int(limits.MaxBody),
		CacheDir:         cfg.WasmCacheDir,
		Env:              cfg.Wasm.Env,
		Clock:            cfg.Wasm.Clock,
		Random:           cfg.Wasm.Random,
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
	var err error
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

// predict runs pre, the predictor and post for one request. post runs only
// on a 2xx answer: an error from the predictor reaches the caller as it is.
func (s *stages) predict(ctx context.Context, p functions.Predictor, req *functions.Request) (*functions.Response, error) {
	if s == nil {
		return p.Predict(ctx, req)
	}
	if s.pre != nil {
		out, err := s.pre.Preprocess(ctx, req.Body)
		if err != nil {
			return nil, err
		}
		req.Body, req.ContentType = out, sniff(out)
	}
	resp, err := p.Predict(ctx, req)
	if err != nil || s.post == nil || resp == nil || resp.StatusCode() >= 300 {
		return resp, err
	}
	out, err := s.post.Postprocess(ctx, resp.Body)
	if err != nil {
		return nil, err
	}
	return functions.Bytes(resp.StatusCode(), sniff(out), out), nil
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
