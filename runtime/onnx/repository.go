package onnx

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// Repository serves several ONNX models behind one function: the built-in
// predictor of `predictor.type: onnx` with predictor.models or
// predictor.models_dir. Each request is routed by its model name
// (functions.Request.Model: ?model=, /v2/models/{name}/infer or
// /v1/models/{name}:predict) and version (Request.Version, from
// /v2/models/{name}/versions/{v}/infer; the highest by default) to a
// *Predictor of its own, one per loaded model version.
//
// A model is a .onnx file, or a directory holding either one .onnx file
// (an unversioned model) or version subdirectories named 1, 2, ... each
// holding one .onnx file.
//
// A request that names no model goes to the default model
// (WithDefaultModel), or to the only model when there is one; otherwise it
// is a 400 naming the models. An unknown model or version is a 404 naming
// those that exist.
//
// With a cache size N (WithCacheSize), at most N model versions keep a
// session in the cache; one more is loaded on demand, and the least
// recently used is unloaded. Its session closes when its last in-flight
// request finishes, so for a moment more than N may be open.
//
// The model files are polled (WithPollInterval). A new model, a new version
// or a changed .onnx file is taken up once it has looked the same on two
// polls in a row (so a file still being copied is not loaded), and, when
// the model is in use, only once its new session has loaded: until then,
// and if it fails to load, the old one keeps serving. A replaced session
// closes after its in-flight requests finish, so a reload fails none.
// Copying a new version into place with a rename is still the safest.
//
// Repository is an oip.Catalog: the runtime checks the model a request
// names against Models, and describes each model and converts KServe V1
// requests with the metadata DescribeModel gives for it.
type Repository struct {
	opts   repoOptions
	optErr error
	base   functions.Config // what each model's Predictor.Init gets, but Name and Model

	mu      sync.Mutex
	models  map[string]*model
	names   []string // sorted
	clock   uint64   // ticks on every use, for least-recently-used order
	cached  int      // versions holding a session in the cache
	closed  bool
	stop    chan struct{}
	stopped chan struct{}

	// Touched only by Init and then the polling goroutine.
	load   time.Duration        // Init's loads of the preloaded models, in all
	seen   scanResult           // the previous poll, for the stability check
	failed map[string]fileState // name/version -> file that failed to load; not retried until it changes
}

// model is one model of the repository and its versions.
type model struct {
	name     string
	versions map[string]*version
	order    []string // version labels, ascending; [""] for an unversioned model
}

// version is one version of a model: its file, and its session while it
// is in the cache.
type version struct {
	label   string // "" for an unversioned model
	file    fileState
	inst    *instance // the cached session; nil when unloaded
	lastUse uint64
	loading *loadCall // a load on demand in progress
}

// NewRepository returns a Repository; it loads nothing until Init. A
// problem with the options is reported by Init.
func NewRepository(opts ...RepositoryOption) *Repository {
	o, err := makeRepoOptions(opts)
	return &Repository{opts: o, optErr: err, models: map[string]*model{}, failed: map[string]fileState{}}
}

// Init finds the models, loads them (all of them, or as many as the cache
// holds), and starts polling the model files. cfg.Dir resolves relative
// paths; cfg.Values and cfg.GPU reach every model's Predictor.Init.
func (r *Repository) Init(ctx context.Context, cfg functions.Config) error {
	if r.optErr != nil {
		return r.optErr
	}
	r.base = cfg
	for i := range r.opts.models {
		r.opts.models[i].path = r.abs(r.opts.models[i].path)
	}
	if r.opts.dir != "" {
		r.opts.dir = r.abs(r.opts.dir)
	}
	found, errs := r.scan()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if len(found) == 0 {
		return fmt.Errorf("onnx: no models in %s: add a subdirectory per model, for example %s", r.opts.dir,
			filepath.Join(r.opts.dir, "iris", "1", "model.onnx"))
	}
	if d := r.opts.def; d != "" && found[d] == nil {
		return fmt.Errorf("onnx: the default model %q is not one of the models: %s", d, strings.Join(slices.Sorted(maps.Keys(found)), ", "))
	}

	r.mu.Lock()
	for name, vs := range found {
		m := &model{name: name, versions: map[string]*version{}}
		for label, f := range vs {
			m.versions[label] = &version{label: label, file: f}
		}
		m.sort()
		r.models[name] = m
	}
	r.refreshNames()
	preload := r.preloadLocked()
	r.mu.Unlock()
	r.seen = found

	for _, v := range preload {
		loadStart := time.Now()
		inst, err := r.open(ctx, v.name, v.file.path)
		r.load += time.Since(loadStart)
		if err != nil {
			return errors.Join(err, r.Close())
		}
		r.mu.Lock()
		if mv := r.current(v.name, v.label); mv != nil && mv.inst == nil {
			mv.inst, mv.lastUse = inst, r.tick()
			r.cached++
		}
		r.mu.Unlock()
	}
	if r.opts.poll > 0 {
		r.stop, r.stopped = make(chan struct{}), make(chan struct{})
		go r.watch(r.opts.poll)
	}
	return nil
}

// LoadDuration is how long Init took to load the models it loads at
// start (runtime.LoadTimer: the cold start's load phase). Models loaded
// later, on demand, are not counted: they are part of a prediction.
func (r *Repository) LoadDuration() time.Duration { return r.load }

func (r *Repository) abs(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.base.Dir, p)
}

// Models returns the names of the models served, sorted; none before
// Init. The slice is not changed afterwards (a change in the models makes
// a new one), and the caller must not change it either.
func (r *Repository) Models() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.names
}

// Loaded returns the model versions that hold a session in the cache, as
// "name" for an unversioned model and "name/version" otherwise, sorted.
func (r *Repository) Loaded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for name, m := range r.models {
		for _, label := range m.order {
			if m.versions[label].inst == nil {
				continue
			}
			if label == "" {
				out = append(out, name)
			} else {
				out = append(out, name+"/"+label)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Versions returns the versions of the named model, ascending; nil for an
// unknown or unversioned model.
func (r *Repository) Versions(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.models[name]
	if m == nil || m.order[0] == "" {
		return nil
	}
	return slices.Clone(m.order)
}

// current returns the version now known as name/label, nil if there is
// none. The caller holds mu.
func (r *Repository) current(name, label string) *version {
	if m := r.models[name]; m != nil {
		return m.versions[label]
	}
	return nil
}

// refreshNames lists the models anew. It makes a new slice rather than
// reuse the old one, which Models may have handed out.
func (r *Repository) refreshNames() {
	r.names = slices.Sorted(maps.Keys(r.models))
}

// Close stops polling and unloads every model; a session still serving a
// request closes when the request finishes.
func (r *Repository) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	stop := r.stop
	r.mu.Unlock()
	if stop != nil {
		close(stop)
		<-r.stopped
	}
	r.mu.Lock()
	var drop []*instance
	for _, m := range r.models {
		for _, v := range m.versions {
			if v.inst != nil {
				drop = append(drop, v.inst)
				v.inst = nil
			}
		}
	}
	r.cached = 0
	r.mu.Unlock()
	return r.releaseAll(drop)
}

var (
	_ functions.Predictor   = (*Repository)(nil)
	_ functions.Initializer = (*Repository)(nil)
	_ functions.Closer      = (*Repository)(nil)
	_ oip.Catalog           = (*Repository)(nil)
)
