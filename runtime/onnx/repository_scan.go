package onnx

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Reading the model files: which models and versions are on disk now
// (scan), what a model directory may hold, and the order of versions.

// fileState identifies one content of a model file, and of the files
// beside it: an ONNX model over 2 GB keeps its weights in external data
// files there (model.onnx + *.data), which ONNX Runtime reads through the
// model's path, so a new .data file under an unchanged graph is a change
// too.
type fileState struct {
	path string
	size int64
	mod  time.Time
	// besides sums the sizes, and has the latest modification time, of
	// the other files in the model's directory (not dot files, not
	// .onnx files).
	besideSize int64
	besideMod  time.Time
}

// scanResult maps model name -> version label -> file.
type scanResult map[string]map[string]fileState

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

// stateOf is the fileState of the file at path, described by info.
func stateOf(path string, info os.FileInfo) fileState {
	f := fileState{path: path, size: info.Size(), mod: info.ModTime()}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".onnx") || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil {
			f.besideSize += fi.Size()
			if fi.ModTime().After(f.besideMod) {
				f.besideMod = fi.ModTime()
			}
		}
	}
	return f
}

// isDir reports whether path is a directory, following links.
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

// validModelName reports whether n may name a model.
func validModelName(n string) bool { return len(n) <= 128 && modelNameRE.MatchString(n) }

// compareVersions orders version labels numerically ("" first).
func compareVersions(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// sortedVersions returns the version labels of m in version order.
func sortedVersions(m map[string]fileState) []string {
	keys := slices.Sorted(maps.Keys(m))
	slices.SortFunc(keys, compareVersions)
	return keys
}

// sort puts the model's version labels in version order.
func (m *model) sort() {
	m.order = m.order[:0]
	for label := range m.versions {
		m.order = append(m.order, label)
	}
	slices.SortFunc(m.order, compareVersions)
}
