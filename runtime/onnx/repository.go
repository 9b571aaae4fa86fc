package onnx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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
// Repository does not implement oip.MetadataProvider, since its models may
// differ: it converts KServe V1 requests itself, with the metadata of the
// model each one names, and describes each model through DescribeModel.
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
	seen   scanResult           // the previous poll, for the stability check
	failed map[string]fileState // name/version -> file that failed to load; not retried until it changes
}

type model struct {
	name     string
	versions map[string]*version
	order    []string // version labels, ascending; [""] for an unversioned model
}

type version struct {
	label   string // "" for an unversioned model
	file    fileState
	inst    *instance // the cached session; nil when unloaded
	lastUse uint64
	loading *loadCall // a load on demand in progress
}

// instance is one loaded session. refs counts the requests using it, plus
// one while it is in the cache; it closes when refs drops to 0.
type instance struct {
	p    *Predictor
	refs int
}

type loadCall struct {
	done chan struct{}
	err  error
}

// fileState identifies one content of a model file.
type fileState struct {
	path string
	size int64
	mod  time.Time
}

// scanResult maps model name -> version label -> file.
type scanResult map[string]map[string]fileState

// DefaultPollInterval is how often a Repository checks its model files
// unless told otherwise.
const DefaultPollInterval = 2 * time.Second

// RepositoryOption configures a Repository.
type RepositoryOption func(*repoOptions) error

type repoOptions struct {
	models    []namedPath
	dir       string
	cacheSize int
	poll      time.Duration
	def       string
}

type namedPath struct{ name, path string }

// WithModel serves the model at path (a .onnx file or a model directory,
// relative to the function directory or absolute) as name. It may be given
// once per model; it cannot be combined with WithModelsDir.
func WithModel(name, path string) RepositoryOption {
	return func(o *repoOptions) error {
		if !validModelName(name) {
			return fmt.Errorf("onnx: %q is not a valid model name: use letters, digits, '-', '_' and '.'", name)
		}
		if slices.ContainsFunc(o.models, func(m namedPath) bool { return m.name == name }) {
			return fmt.Errorf("onnx: model %q is given twice", name)
		}
		if path == "" {
			return fmt.Errorf("onnx: model %q has no path", name)
		}
		o.models = append(o.models, namedPath{name, path})
		return nil
	}
}

// WithModelsDir serves every subdirectory of dir (relative to the function
// directory or absolute) as a model of the same name, and picks up models
// added later.
func WithModelsDir(dir string) RepositoryOption {
	return func(o *repoOptions) error {
		if dir == "" {
			return errors.New("onnx: empty models directory")
		}
		o.dir = dir
		return nil
	}
}

// WithCacheSize keeps at most n model versions loaded (0, the default,
// loads every one).
func WithCacheSize(n int) RepositoryOption {
	return func(o *repoOptions) error {
		if n < 0 {
			return fmt.Errorf("onnx: cache size must be 0 (all) or more, not %d", n)
		}
		o.cacheSize = n
		return nil
	}
}

// WithPollInterval sets how often the model files are checked for changes:
// 0 means DefaultPollInterval, a negative interval turns polling off.
func WithPollInterval(d time.Duration) RepositoryOption {
	return func(o *repoOptions) error {
		o.poll = d
		return nil
	}
}

// WithDefaultModel names the model that serves requests naming none.
func WithDefaultModel(name string) RepositoryOption {
	return func(o *repoOptions) error {
		o.def = name
		return nil
	}
}

func makeRepoOptions(opts []RepositoryOption) (repoOptions, error) {
	var o repoOptions
	var errs []error
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	switch {
	case len(o.models) > 0 && o.dir != "":
		errs = append(errs, errors.New("onnx: a repository takes a list of models or a models directory, not both"))
	case len(o.models) == 0 && o.dir == "":
		errs = append(errs, errors.New("onnx: a repository needs models: use WithModel or WithModelsDir"))
	}
	if o.def != "" && len(o.models) > 0 && !slices.ContainsFunc(o.models, func(m namedPath) bool { return m.name == o.def }) {
		errs = append(errs, fmt.Errorf("onnx: the default model %q is not one of the models", o.def))
	}
	if o.poll == 0 {
		o.poll = DefaultPollInterval
	}
	return o, errors.Join(errs...)
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
		inst, err := r.open(ctx, v.name, v.file.path)
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

func (r *Repository) abs(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.base.Dir, p)
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

// Models returns the names of the models served, sorted.
func (r *Repository) Models() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.names)
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

// Predict routes the request to its model and version, loading it if it
// is not loaded. A KServe V1 request is converted with that model's
// metadata.
func (r *Repository) Predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	inst, err := r.acquire(ctx, req.Model, req.Version)
	if err != nil {
		return nil, err
	}
	defer r.release(inst)
	if req.Protocol == functions.ProtocolKServeV1 {
		return predictV1(ctx, inst.p, req)
	}
	return inst.p.Predict(ctx, req)
}

// DescribeModel returns the tensor metadata of a model version (the
// highest when version is empty), loading it if need be, for
// GET /v2/models/{name}[/versions/{v}]. Versions lists the model's
// versions.
func (r *Repository) DescribeModel(ctx context.Context, name, version string) (oip.ModelMetadata, error) {
	inst, err := r.acquire(ctx, name, version)
	if err != nil {
		return oip.ModelMetadata{}, err
	}
	defer r.release(inst)
	md := inst.p.ModelMetadata()
	md.Name = name
	md.Versions = r.Versions(name)
	return md, nil
}

// predictV1 serves a KServe V1 request through the OIP predictor p.
func predictV1(ctx context.Context, p *Predictor, req *functions.Request) (*functions.Response, error) {
	md := p.ModelMetadata()
	if len(md.Inputs) == 0 {
		return nil, functions.Errorf(http.StatusInternalServerError, "model %q has no inputs", md.Name)
	}
	body, err := oip.RequestBodyFromV1(req.Body, md.Inputs[0])
	if err != nil {
		return nil, err
	}
	sub := *req
	sub.Body, sub.ContentType, sub.Protocol = body, "application/json", functions.ProtocolOIP
	resp, err := p.Predict(ctx, &sub)
	if err != nil || resp.StatusCode() != http.StatusOK {
		return resp, err
	}
	if body, err = oip.ResponseBodyToV1(resp.Body); err != nil {
		return nil, fmt.Errorf("onnx: converting the answer to KServe V1: %w", err)
	}
	return functions.Bytes(http.StatusOK, "application/json", body), nil
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

// named is a version with the name of its model.
type named struct {
	*version
	name string
}

// lookup finds the version a request names, or the error to answer.
func (r *Repository) lookup(name, label string) (named, error) {
	if name == "" {
		switch {
		case r.opts.def != "":
			name = r.opts.def
		case len(r.names) == 1:
			name = r.names[0]
		default:
			return named{}, functions.Errorf(http.StatusBadRequest,
				"this function serves several models; name one with ?model=NAME, POST /v2/models/NAME/infer or POST /v1/models/NAME:predict: %s",
				quoteList(r.names))
		}
	}
	m := r.models[name]
	if m == nil {
		return named{}, oip.ModelNotFound(name, r.names)
	}
	if label == "" {
		label = m.order[len(m.order)-1]
	}
	v := m.versions[label]
	if v == nil {
		if m.order[0] == "" {
			return named{}, functions.Errorf(http.StatusNotFound, "model %q has no versions; call it without /versions/%s", name, label)
		}
		return named{}, functions.Errorf(http.StatusNotFound, "model %q has no version %q; its versions are %s", name, label, quoteList(m.order))
	}
	return named{v, name}, nil
}

func (r *Repository) current(name, label string) *version {
	if m := r.models[name]; m != nil {
		return m.versions[label]
	}
	return nil
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

func (m *model) sort() {
	m.order = m.order[:0]
	for label := range m.versions {
		m.order = append(m.order, label)
	}
	slices.SortFunc(m.order, compareVersions)
}

func (r *Repository) refreshNames() {
	r.names = r.names[:0]
	for name := range r.models {
		r.names = append(r.names, name)
	}
	slices.Sort(r.names)
}

// scanError is a model whose files could not be read as a model.
type scanError struct {
	model string
	err   error
}

func (e *scanError) Error() string { return fmt.Sprintf("model %q: %v", e.model, e.err) }
func (e *scanError) Unwrap() error { return e.err }

// scan reads the model files as they are now. A model that cannot be read
// is left out and reported as a *scanError.
func (r *Repository) scan() (scanResult, []error) {
	found := scanResult{}
	var errs []error
	sources := r.opts.models
	if r.opts.dir != "" {
		entries, err := os.ReadDir(r.opts.dir)
		if err != nil {
			return found, []error{fmt.Errorf("onnx: reading the models directory: %w", err)}
		}
		sources = nil
		for _, e := range entries {
			name := e.Name()
			path := filepath.Join(r.opts.dir, name)
			if strings.HasPrefix(name, ".") || !isDir(path) {
				continue
			}
			if !validModelName(name) {
				errs = append(errs, &scanError{name, errors.New("not a valid model name: use letters, digits, '-', '_' and '.'")})
				continue
			}
			sources = append(sources, namedPath{name, path})
		}
	}
	for _, s := range sources {
		vs, err := scanModel(s.path)
		if err != nil {
			errs = append(errs, &scanError{s.name, err})
			continue
		}
		found[s.name] = vs
	}
	return found, errs
}

// scanModel reads one model: a .onnx file, a directory with one .onnx
// file, or a directory of numbered version directories with one each.
func scanModel(path string) (map[string]fileState, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		if !strings.HasSuffix(path, ".onnx") {
			return nil, fmt.Errorf("%s is not a .onnx file", path)
		}
		return map[string]fileState{"": stateOf(path, info)}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var files []string
	versions := map[string]fileState{}
	var skipped []string
	for _, e := range entries {
		name, p := e.Name(), filepath.Join(path, e.Name())
		switch {
		case strings.HasPrefix(name, "."):
		case isDir(p) && versionName.MatchString(name):
			f, err := onlyModel(p)
			if err != nil {
				// Perhaps still being written: the other versions serve.
				skipped = append(skipped, err.Error())
				continue
			}
			versions[name] = f
		case strings.HasSuffix(name, ".onnx") && !isDir(p):
			files = append(files, name)
		}
	}
	switch {
	case len(files) > 0 && len(versions) > 0:
		return nil, fmt.Errorf("%s holds both .onnx files and version directories; keep one layout", path)
	case len(files) == 1:
		f, err := onlyModel(path)
		if err != nil {
			return nil, err
		}
		return map[string]fileState{"": f}, nil
	case len(files) > 1:
		return nil, fmt.Errorf("%s holds %d .onnx files (%s); a model directory holds one, or version directories 1/, 2/, ...",
			path, len(files), strings.Join(files, ", "))
	case len(versions) == 0 && len(skipped) > 0:
		return nil, errors.New(strings.Join(skipped, "; "))
	case len(versions) == 0:
		return nil, fmt.Errorf("%s holds no .onnx file and no version directories 1/, 2/, ...", path)
	}
	return versions, nil
}

// onlyModel returns the one .onnx file in dir.
func onlyModel(dir string) (fileState, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fileState{}, err
	}
	var found []os.DirEntry
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".onnx") && !strings.HasPrefix(e.Name(), ".") {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		return fileState{}, fmt.Errorf("%s holds %d .onnx files, not one", dir, len(found))
	}
	p := filepath.Join(dir, found[0].Name())
	info, err := os.Stat(p)
	if err != nil {
		return fileState{}, err
	}
	if info.IsDir() {
		return fileState{}, fmt.Errorf("%s is a directory", p)
	}
	return stateOf(p, info), nil
}

func stateOf(path string, info os.FileInfo) fileState {
	return fileState{path: path, size: info.Size(), mod: info.ModTime()}
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

var (
	// versionName is a version directory: a positive number without
	// leading zeros.
	versionName = regexp.MustCompile(`^[1-9][0-9]{0,17}$`)
	// modelNameRE is what a model may be called: a URL path segment on
	// the OIP and KServe V1 routes (no '/' or ':') and a directory name.
	modelNameRE = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
)

func validModelName(n string) bool { return len(n) <= 128 && modelNameRE.MatchString(n) }

// compareVersions orders version labels numerically ("" first).
func compareVersions(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

func sortedVersions(m map[string]fileState) []string {
	keys := slices.Sorted(maps.Keys(m))
	slices.SortFunc(keys, compareVersions)
	return keys
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

var (
	_ functions.Predictor   = (*Repository)(nil)
	_ functions.Initializer = (*Repository)(nil)
	_ functions.Closer      = (*Repository)(nil)
)
