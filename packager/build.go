package packager

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/build"
	"github.com/cortexfn/cortex/packager/oci"
	"github.com/cortexfn/cortex/packager/spec"
)

// BuildOptions says how to build a function's Artifact. The zero value
// builds for the Lambda target's architecture with the default cache.
type BuildOptions struct {
	// Arch is the target GOARCH, amd64 or arm64. Default: the Lambda
	// target's architecture (x86_64, so amd64, unless the spec says arm64).
	Arch string
	// CacheDir is the cortex cache (binaries and compressed layers).
	// Default $CORTEX_CACHE, else $XDG_CACHE_HOME/cortex, else ~/.cache/cortex.
	CacheDir string
	// NoCache rebuilds the binary (and, in the outputs, recompresses every
	// layer and zip entry).
	NoCache bool
	// ONNXRuntime is the path of libonnxruntime.so.1 to ship. Default
	// $CORTEX_ONNXRUNTIME_LIB, else the cache that `cortex setup`
	// fills.
	ONNXRuntime string
	// Created overrides $SOURCE_DATE_EPOCH for every time in the outputs.
	Created time.Time
	// Progress receives a line per step.
	Progress io.Writer
	// AllowHardlinks ships files with hard links outside the function
	// directory (refused by default: a hard link carries an outside
	// file's bytes past every path check).
	AllowHardlinks bool
}

// defaults fills what o leaves empty for the function s.
func (o *BuildOptions) defaults(s *spec.Spec) error {
	var err error
	if o.Arch == "" {
		o.Arch = map[string]string{spec.ArchX86: "amd64", spec.ArchARM64: "arm64"}[s.Targets.Lambda.Arch]
	}
	if o.Arch != "amd64" && o.Arch != "arm64" {
		return fmt.Errorf("architecture %q: use amd64 or arm64", o.Arch)
	}
	if o.CacheDir == "" {
		if o.CacheDir, err = build.CacheRoot(""); err != nil {
			return err
		}
	}
	if o.Created.IsZero() {
		if o.Created, err = oci.SourceDateEpoch(); err != nil {
			return err
		}
	}
	return nil
}

func (o *BuildOptions) say(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// Build builds the function in dir into an Artifact: it checks every path
// the spec names, compiles Go stages and the binary (both cached by
// content), finds the ONNX Runtime library when the binary links it, and
// writes the runtime configuration. Nothing is written outside the cache.
// The function's files are opened once, here; Close the artifact when its
// outputs are written.
func Build(ctx context.Context, dir string, o BuildOptions) (*artifact.Artifact, error) {
	s, err := spec.Load(dir)
	if err != nil {
		return nil, err
	}
	return BuildSpec(ctx, s, o)
}

// BuildSpec is Build for a spec already loaded (spec.Load), so a caller
// that has read cortex.yaml does not read it again.
func BuildSpec(ctx context.Context, s *spec.Spec, o BuildOptions) (*artifact.Artifact, error) {
	if err := o.defaults(s); err != nil {
		return nil, err
	}
	a := &artifact.Artifact{Spec: s, Arch: o.Arch, Created: o.Created, StagePaths: map[string]string{}}
	d, err := openDir(s.Dir, o.AllowHardlinks)
	if err != nil {
		return nil, err
	}
	built := false
	defer func() { d.close(built) }()

	// Gather what ships, checking every path before anything is built.
	// The models: predictor.model, or every model of a multi-model
	// function (predictor.models_dir, predictor.models[].path).
	// A model named by reference ships as its reference only.
	sources := []struct{ field, rel string }{{"predictor.model", s.Predictor.Model}, {"predictor.models_dir", s.Predictor.ModelsDir}}
	if spec.IsModelReference(s.Predictor.Model) {
		a.ModelRefs = append(a.ModelRefs, artifact.ModelRef{Ref: s.Predictor.Model, SHA256: s.Predictor.ModelSHA256})
	}
	for i, m := range s.Predictor.Models {
		sources = append(sources, struct{ field, rel string }{fmt.Sprintf("predictor.models[%d].path", i), m.Path})
		if spec.IsModelReference(m.Path) {
			a.ModelRefs = append(a.ModelRefs, artifact.ModelRef{Name: m.Name, Ref: m.Path, SHA256: m.SHA256})
		}
	}
	for _, src := range sources {
		if src.rel == "" || spec.IsModelReference(src.rel) {
			continue
		}
		files, err := d.collect(src.field, src.rel)
		if err != nil {
			return nil, err
		}
		for _, f := range files { // two models may name one file
			if slices.ContainsFunc(a.Models, func(m artifact.File) bool { return m.Path == f.Path }) {
				f.Opened.Close()
				continue
			}
			a.Models = append(a.Models, f)
		}
	}
	for _, st := range []struct{ field, rel string }{{"pre", s.Pre}, {"post", s.Post}} {
		if st.rel == "" {
			continue
		}
		files, err := d.collect(st.field, st.rel)
		if err != nil {
			return nil, err
		}
		if len(files) == 1 && strings.HasSuffix(files[0].Path, ".wasm") {
			if err := addStage(a, st.field, files[0]); err != nil {
				return nil, err
			}
			continue
		}
		// A Go package: compiled for wasip1 (cached). Its sources were
		// checked like every shipped file, but do not ship.
		for _, f := range files {
			f.Opened.Close()
		}
		out, err := build.Stage(ctx, s.Dir, st.rel, o.CacheDir, o.Progress)
		if err != nil {
			return nil, err
		}
		if err := addStage(a, st.field, artifact.File{Path: path.Join("wasm", st.field+".wasm"), Src: out}); err != nil {
			return nil, err
		}
	}

	bin, err := build.Binary(ctx, build.Options{
		Dir: s.Dir, Spec: s, GOOS: "linux", GOARCH: o.Arch,
		Progress: o.Progress, CacheDir: o.CacheDir, NoCache: o.NoCache,
	})
	if err != nil {
		return nil, err
	}
	a.Binary = artifact.File{Path: s.Name, Src: bin.Path, Mode: 0o755}
	a.BinaryCached, a.Cgo = bin.Cached, bin.Cgo
	// ONNX Runtime ships with every binary that links it: type onnx, or a
	// Go predictor that uses runtime/onnx.
	if bin.ONNXRuntime {
		lib, err := findONNXRuntime(ctx, o.ONNXRuntime, o.CacheDir, o.Arch, o.Progress)
		if err != nil {
			return nil, err
		}
		a.Runtime = []artifact.File{{Path: "lib/libonnxruntime.so.1", Src: lib, Mode: 0o755}}
	}

	// The runtime config: paths relative to the config's own directory.
	cfg := s.RuntimeConfig()
	cfg.Dir = ""
	cfg.Pre, cfg.Post = a.StagePaths["pre"], a.StagePaths["post"]
	cfgJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the runtime config: %w", err)
	}
	a.Config = artifact.File{Path: ConfigName, Data: append(cfgJSON, '\n')}
	a.SpecSHA256 = s.SHA256
	built = true
	return a, nil
}

// addStage ships f as the stage field ("pre", "post"), or, when a stage
// already shipped has the same bytes (iris-wasm's pre and post are one Go
// package), points field at that one: identical stages are stored once in
// the image and the zip, and cortex.json names the one file for both.
func addStage(a *artifact.Artifact, field string, f artifact.File) error {
	for _, have := range a.Stages {
		same, err := sameBytes(have, f)
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		if same {
			if f.Opened != nil && f.Opened != have.Opened {
				f.Opened.Close()
			}
			a.StagePaths[field] = have.Path
			return nil
		}
	}
	a.Stages = append(a.Stages, f)
	a.StagePaths[field] = f.Path
	return nil
}

// sameBytes reports whether two files have the same content.
func sameBytes(x, y artifact.File) (bool, error) {
	xs, err := x.Size()
	if err != nil {
		return false, err
	}
	ys, err := y.Size()
	if err != nil || xs != ys {
		return false, err
	}
	var sums [2][32]byte
	for i, f := range []artifact.File{x, y} {
		r, err := f.Open()
		if err != nil {
			return false, err
		}
		h := sha256.New()
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return false, fmt.Errorf("reading %s: %w", f.Name(), err)
		}
		copy(sums[i][:], h.Sum(nil))
	}
	return sums[0] == sums[1], nil
}
