package onnx

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"time"
)

// Hot reload: polling the model files and taking up what changed once it
// is stable and loads, without failing a request in flight.

// watch polls the model files every interval until Close.
func (r *Repository) watch(every time.Duration) {
	defer close(r.stopped)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.poll(context.Background())
		}
	}
}

// poll applies what changed in the model files since the last poll.
func (r *Repository) poll(ctx context.Context) {
	found, errs := r.scan()
	for _, err := range errs {
		slog.Warn("onnx: model repository", "err", err)
	}
	prev := r.seen
	r.seen = found

	// Removals take effect at once; a model whose scan failed stays as it
	// is.
	failed := map[string]bool{}
	for _, err := range errs {
		var se *scanError
		if errors.As(err, &se) {
			failed[se.model] = true
		}
	}
	var drop []*instance
	r.mu.Lock()
	for name, m := range r.models {
		if failed[name] {
			continue
		}
		vs := found[name]
		for label, v := range m.versions {
			if _, ok := vs[label]; ok {
				continue
			}
			slog.Info("onnx: model version removed", "model", name, "version", label)
			if v.inst != nil {
				drop = append(drop, v.inst)
				v.inst = nil
				r.cached--
			}
			delete(m.versions, label)
		}
		if len(m.versions) == 0 {
			delete(r.models, name)
		} else {
			m.sort()
		}
	}
	r.refreshNames()

	// Additions and changes, once stable.
	var adopt []pendingLoad
	for _, name := range slices.Sorted(maps.Keys(found)) {
		for _, label := range sortedVersions(found[name]) {
			f := found[name][label]
			key := name + "/" + label
			if prev[name][label] != f || r.failed[key] == f {
				continue
			}
			if v := r.current(name, label); v != nil && v.file == f {
				continue
			}
			adopt = append(adopt, pendingLoad{name, label, f})
		}
	}
	r.mu.Unlock()
	r.releaseAll(drop)
	for _, a := range adopt {
		r.adopt(ctx, a)
	}
}

// adopt takes up a new or changed model version. When the repository loads
// everything, or the model is in use, its session is loaded first and
// swapped in; the one it replaces closes after its requests finish.
func (r *Repository) adopt(ctx context.Context, a pendingLoad) {
	key := a.name + "/" + a.label
	r.mu.Lock()
	m := r.models[a.name]
	inUse := false
	if m != nil {
		for _, v := range m.versions {
			inUse = inUse || v.inst != nil
		}
	}
	load := r.opts.cacheSize == 0 || inUse
	r.mu.Unlock()

	var inst *instance
	var err error
	if load {
		inst, err = r.open(ctx, a.name, a.file.path)
	} else {
		// Not loaded now, but at least readable as a model when it is.
		_, _, err = readGraphIO(a.file.path)
	}
	if err != nil {
		slog.Error("onnx: not taking up a model version: it does not load; the previous one, if any, keeps serving",
			"model", a.name, "version", a.label, "path", a.file.path, "err", err)
		r.failed[key] = a.file
		return
	}
	delete(r.failed, key)

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		if inst != nil {
			r.release(inst)
		}
		return
	}
	if m = r.models[a.name]; m == nil {
		m = &model{name: a.name, versions: map[string]*version{}}
		r.models[a.name] = m
	}
	v := m.versions[a.label]
	if v == nil {
		v = &version{label: a.label}
		m.versions[a.label] = v
	}
	old := v.inst
	v.file, v.inst, v.lastUse = a.file, inst, r.tick()
	switch {
	case old == nil && inst != nil:
		r.cached++
	case old != nil && inst == nil:
		r.cached--
	}
	m.sort()
	r.refreshNames()
	evicted := r.evictLocked(v)
	r.mu.Unlock()
	slog.Info("onnx: model version taken up", "model", a.name, "version", a.label, "path", a.file.path, "loaded", inst != nil)
	if old != nil {
		evicted = append(evicted, old)
	}
	r.releaseAll(evicted)
}
