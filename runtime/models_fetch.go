package runtime

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cortexfn/cortex/runtime/modelfetch"
)

// Models named by reference: before anything else loads, Start fetches
// every model the config names as oci://, https:// or s3:// into the
// machine's model cache (runtime/modelfetch) and puts the fetched path
// where the config had the reference. The process is not ready
// meanwhile, and a model that cannot be fetched or verified fails the
// start as an Init error does, naming the reference and its digest.

// linkDir is this process's directory of links to fetched models; its name
// is chosen once, and it is made only when a model is fetched.
var linkDir = sync.OnceValue(func() string {
	return filepath.Join(os.TempDir(), "cortex-model-links-"+rand.Text())
})

// ModelPath is where the model ref will be once Start has fetched it: a
// link, in a directory of this process, to the model's directory in the
// cache.
// The generated main of a multi-model onnx function gives it to
// onnx.WithModel for a model named by reference, since the repository's
// options are made before Start and the fetched path is known only after
// it.
func ModelPath(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(linkDir(), hex.EncodeToString(sum[:8]))
}

// fetchModels fetches the referenced models, in parallel, and rewrites
// r.cfg.Predictor to their paths. It records the fetch phase of the
// cold start (zero when there is nothing to fetch).
func (r *Runtime) fetchModels(ctx context.Context) error {
	p := &r.cfg.Predictor
	type job struct {
		ref, sha string
		path     *string
		link     bool
	}
	var jobs []job
	if modelfetch.IsReference(p.Model) {
		jobs = append(jobs, job{p.Model, p.ModelSHA256, &p.Model, false})
	}
	for i := range p.Models {
		if m := &p.Models[i]; modelfetch.IsReference(m.Path) {
			jobs = append(jobs, job{m.Path, m.SHA256, &m.Path, true})
		}
	}
	if len(jobs) == 0 {
		r.cold.phase(PhaseFetch, 0)
		return nil
	}
	start := time.Now()
	err := func() error {
		cache, err := modelfetch.New(modelfetch.WithLogger(r.log))
		if err != nil {
			return err
		}
		paths := make([]string, len(jobs))
		errs := make([]error, len(jobs))
		var wg sync.WaitGroup
		for i, j := range jobs {
			wg.Go(func() { paths[i], errs[i] = cache.Fetch(ctx, j.ref, j.sha) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		for i, j := range jobs {
			if j.link {
				// The repository takes a model directory (one .onnx file,
				// or version directories) under any name, a file only
				// under a name ending .onnx: link the entry's directory.
				target := paths[i]
				if info, err := os.Stat(target); err == nil && !info.IsDir() {
					target = filepath.Dir(target)
				}
				if err := link(target, ModelPath(j.ref)); err != nil {
					return fmt.Errorf("model %s: %w", j.ref, err)
				}
			}
			*j.path = paths[i]
		}
		return nil
	}()
	if err != nil {
		err = fmt.Errorf("initialising function %q: %w", r.cfg.Name, err)
		r.initErr.Store(&err)
		r.log.Error("init failed", "err", err)
		return err
	}
	r.cold.phase(PhaseFetch, time.Since(start))
	return nil
}

// linked is set once link has made linkDir: removeModelLinks then removes
// it when the process stops.
var linked atomic.Bool

// removeModelLinks removes this process's links to fetched models (the
// models stay in the cache). A process killed outright leaves its
// directory behind: a few links in the temporary directory.
func removeModelLinks() {
	if linked.Load() {
		_ = os.RemoveAll(linkDir())
	}
}

// link makes at a symbolic link to target, replacing what was there.
func link(target, at string) error {
	if err := os.MkdirAll(filepath.Dir(at), 0o755); err != nil {
		return err
	}
	linked.Store(true)
	tmp := at + ".new"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, at)
}
