package onnx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/cortexfn/cortex/functions"
)

// The cache of loaded model versions: each holds a reference-counted
// session; at most the cache size stay loaded, the least recently used is
// unloaded first, and a session closes when its last request finishes.

// instance is one loaded session. refs counts the requests using it, plus
// one while it is in the cache; it closes when refs drops to 0.
type instance struct {
	p    *Predictor
	refs int
}

// loadCall is a load on demand in progress, which the requests for the
// same version wait for rather than load it again.
type loadCall struct {
	done chan struct{}
	err  error
}

// pendingLoad is a model version to load: at Init, or once polling has
// found it new or changed.
type pendingLoad struct {
	name, label string
	file        fileState
}

// preloadLocked lists what Init loads: every version without a cache
// limit, else the highest version of as many models as the cache holds,
// the default model first.
func (r *Repository) preloadLocked() []pendingLoad {
	var out []pendingLoad
	if r.opts.cacheSize == 0 {
		for _, name := range r.names {
			m := r.models[name]
			for _, label := range m.order {
				out = append(out, pendingLoad{name, label, m.versions[label].file})
			}
		}
		return out
	}
	names := slices.Clone(r.names)
	if i := slices.Index(names, r.opts.def); i > 0 {
		names = append(append([]string{r.opts.def}, names[:i]...), names[i+1:]...)
	}
	for _, name := range names[:min(len(names), r.opts.cacheSize)] {
		m := r.models[name]
		label := m.order[len(m.order)-1]
		out = append(out, pendingLoad{name, label, m.versions[label].file})
	}
	return out
}

// open loads one model version into a Predictor of its own.
func (r *Repository) open(ctx context.Context, name, path string) (*instance, error) {
	cfg := r.base
	cfg.Name, cfg.Model = name, path
	p := New()
	if err := p.Init(ctx, cfg); err != nil {
		return nil, fmt.Errorf("onnx: loading model %q: %w", name, err)
	}
	return &instance{p: p, refs: 1}, nil
}

// acquire returns the session for a model version with a reference the
// caller must release, loading it on demand.
func (r *Repository) acquire(ctx context.Context, name, label string) (*instance, error) {
	r.mu.Lock()
	for {
		if r.closed || r.models == nil {
			r.mu.Unlock()
			return nil, &functions.Error{Status: http.StatusServiceUnavailable, Message: "the models are not loaded", RetryAfter: time.Second}
		}
		v, err := r.lookup(name, label)
		if err != nil {
			r.mu.Unlock()
			return nil, err
		}
		name = v.name
		v.lastUse = r.tick()
		if inst := v.inst; inst != nil {
			inst.refs++
			r.mu.Unlock()
			return inst, nil
		}
		if c := v.loading; c != nil {
			r.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, fmt.Errorf("onnx: waiting for model %q to load: %w", name, context.Cause(ctx))
			}
			if c.err != nil {
				return nil, c.err
			}
			r.mu.Lock()
			continue
		}
		c := &loadCall{done: make(chan struct{})}
		v.loading = c
		f := v.file
		r.mu.Unlock()

		inst, err := r.open(ctx, name, f.path)

		r.mu.Lock()
		v.loading = nil
		if err != nil {
			slog.Error("onnx: loading a model on demand", "model", name, "version", v.label, "err", err)
			c.err = &functions.Error{Status: http.StatusInternalServerError,
				Message: fmt.Sprintf("model %q could not be loaded; see the function's log", name), Err: err}
			close(c.done)
			r.mu.Unlock()
			return nil, c.err
		}
		var evicted []*instance
		// Cache it unless the version changed while it loaded; then it
		// serves this request only.
		if r.current(name, v.label) == v.version && v.inst == nil && v.file == f && !r.closed {
			inst.refs++
			v.inst = inst
			r.cached++
			evicted = r.evictLocked(v.version)
		}
		close(c.done)
		r.mu.Unlock()
		r.releaseAll(evicted)
		return inst, nil
	}
}

func (r *Repository) tick() uint64 {
	r.clock++
	return r.clock
}

// evictLocked drops the least recently used sessions from the cache until
// it holds at most cacheSize, never keep. The caller releases what it
// returns, outside the lock.
func (r *Repository) evictLocked(keep *version) []*instance {
	if r.opts.cacheSize <= 0 {
		return nil
	}
	var out []*instance
	for r.cached > r.opts.cacheSize {
		var lru *version
		var lruName string
		for name, m := range r.models {
			for _, v := range m.versions {
				if v.inst != nil && v != keep && (lru == nil || v.lastUse < lru.lastUse) {
					lru, lruName = v, name
				}
			}
		}
		if lru == nil {
			break
		}
		slog.Info("onnx: unloading the least recently used model", "model", lruName, "version", lru.label, "cache_size", r.opts.cacheSize)
		out = append(out, lru.inst)
		lru.inst = nil
		r.cached--
	}
	return out
}

// release drops one reference, closing the session with the last.
func (r *Repository) release(inst *instance) error {
	r.mu.Lock()
	inst.refs--
	last := inst.refs == 0
	r.mu.Unlock()
	if !last {
		return nil
	}
	if err := inst.p.Close(); err != nil {
		slog.Error("onnx: closing a model session", "model", inst.p.name, "err", err)
		return err
	}
	return nil
}

func (r *Repository) releaseAll(insts []*instance) error {
	var errs []error
	for _, inst := range insts {
		errs = append(errs, r.release(inst))
	}
	return errors.Join(errs...)
}
