package onnx

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// The options of a Repository, resolved in one step (makeRepoOptions)
// whose problems Init reports.

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
