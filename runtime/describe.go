package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"sync"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/functions"
)

// MaxDescribedModels bounds the models a Description describes: the first
// this many of Models, in order. Describing a model a repository has not
// loaded loads it, so a page must not load a repository of hundreds; the
// model routes (GET /v2/models/{name}) describe any of them.
const MaxDescribedModels = 16

// Describe says what the function is, for its OpenAPI document and its
// page (adapters.Describer): its name, the runtime's version, its
// build's digest, whether it is ready, the schema of its own route (that
// of the predictor the function was given: functions.SchemaOf), whether
// it streams, and, once it is ready, the metadata of the models its
// catalogue serves (the first MaxDescribedModels of them). It tells only
// what a caller of the routes may learn from them.
//
// A model is described as GET /v2/models/{name} describes it
// (DescribeModel): holding a concurrency slot, within limits.timeout, and
// a repository loads a model it has not loaded. A model that cannot be
// described (it fails to load, the function is at capacity) is left out.
func (r *Runtime) Describe(ctx context.Context) adapters.Description {
	_, streams := r.p.(functions.Streamer)
	d := adapters.Description{
		Name:    r.cfg.Name,
		Version: version(),
		Digest:  executableDigest(),
		Ready:   r.Ready(),
		Schema:  functions.SchemaOf(r.p),
		Streams: streams,
		Auth:    r.cfg.Auth.Required(), // the carrier enforces it (auth.go)
		Async:   r.async != nil && r.async.off == nil,
	}
	if r.catalog == nil || !r.ready.Load() {
		return d
	}
	names := r.Models()
	if len(names) > MaxDescribedModels {
		names = names[:MaxDescribedModels]
	}
	for _, name := range names {
		md, err := r.DescribeModel(ctx, name, "")
		if err != nil {
			r.log.Debug("describing a model for the function's description", "model", name, "err", err)
			continue
		}
		d.Models = append(d.Models, md)
	}
	return d
}

// executableDigest is the sha256 of the running executable, in hex: the
// function's build. It is read once, when first asked for; "" when the
// executable cannot be read.
var executableDigest = sync.OnceValue(func() string {
	path, err := os.Executable()
	if err != nil {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
})

var (
	_ adapters.Describer = (*Runtime)(nil)
	_ adapters.Describer = countedEngine{}
)
