package oci

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cortexfn/cortex/packager/artifact"
)

// Layer is one group of files that becomes one image layer.
type Layer struct {
	// Name says what the layer holds ("model", "binary"); it is recorded
	// in the image history and in LayerInfo.
	Name  string
	Files []artifact.File
	// Level is Fast for data that barely compresses (model weights).
	Level Level
}

// Contents is what goes into a function image, on top of its base.
type Contents struct {
	// Layers in order, least often changed first. Empty layers are left out.
	Layers []Layer
	// Entrypoint, Env ("K=V", added to or replacing the base's),
	// WorkingDir and Labels form the image config. User defaults to
	// 65532:65532.
	Entrypoint []string
	Env        []string
	WorkingDir string
	User       string
	Labels     map[string]string
	// CGO says the binary is dynamically linked (an ONNX function): the
	// built-in base then carries glibc, libstdc++ and libgcc_s.
	CGO bool
}

// Options says how an image is built. The zero value builds a linux/amd64
// image, gzip-compressed, on the built-in base, with times at the Unix epoch.
type Options struct {
	// Base is the base image: "" for the built-in minimal non-root base,
	// "oci:DIR[:TAG]" (or a directory holding an OCI layout) to read one
	// from disk, or a registry reference to pull.
	Base string
	// Arch is the GOARCH of the image ("amd64", "arm64"). Default amd64.
	Arch string
	// Compression of the function's layers. Default Gzip.
	Compression Compression
	// Created is every time in the image: layer mtimes, history and the
	// config's created field. Use SourceDateEpoch for the usual choice.
	Created time.Time
	// CacheDir holds compressed layers between builds; empty means a
	// temporary directory (removed by Image.Close).
	CacheDir string
	// NoCache compresses every layer again.
	NoCache bool
	// Progress receives a line per layer.
	Progress io.Writer
	// RemoteOptions are added when pulling the base image.
	RemoteOptions []remote.Option
}

// LayerInfo describes one layer of a built image.
type LayerInfo struct {
	Name      string          `json:"name"`
	Digest    string          `json:"digest"`
	DiffID    string          `json:"diff_id"`
	Size      int64           `json:"size"`
	MediaType types.MediaType `json:"media_type"`
	// Cached reports whether the compressed layer came from the cache.
	Cached bool `json:"cached,omitempty"`
	// Read is how many bytes of the layer's files (as a tar) were read to
	// build it: 0 when the layer cache knew them by path, size and times.
	Read int64 `json:"read"`
}

// Image is a built function image. Its layers are files in the layer cache
// (or a temporary directory): write or push it before Close.
type Image struct {
	// Image is the image itself.
	Image v1.Image
	// Digest is the manifest digest.
	Digest v1.Hash
	// Layers lists every layer, the base's first.
	Layers []LayerInfo
	// Base says what the image was built on.
	Base BaseInfo
	// Notes are things the caller should tell the user.
	Notes []string

	tmp string
}

// Close removes the temporary layer directory, if one was used.
func (i *Image) Close() error {
	if i.tmp != "" {
		return os.RemoveAll(i.tmp)
	}
	return nil
}

// SourceDateEpoch returns the time in $SOURCE_DATE_EPOCH (seconds since the
// Unix epoch, the reproducible-builds convention), or the epoch itself.
func SourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	var n int64
	if _, err := fmt.Sscan(v, &n); err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", v)
	}
	return time.Unix(n, 0).UTC(), nil
}

// Build assembles the image: the base's layers, then one layer per
// non-empty Contents.Layers entry, each a deterministic tar compressed
// once into the cache, then the config.
func Build(ctx context.Context, c Contents, o Options) (*Image, error) {
	out, lb, err := o.start()
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
		}
	}()

	// The content layers compress while the base is prepared.
	wait := buildLayers(ctx, lb, c.Layers)
	waited := false
	defer func() {
		if !waited {
			_, _ = wait() // nothing may still write into the cache when Build returns
		}
	}()
	base, err := baseImage(ctx, c, o, lb, out)
	if err != nil {
		return nil, err
	}
	baseCF, err := base.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the base image config: %w", err)
	}
	baseCF = baseCF.DeepCopy()
	out.Base.CUDA = hasEnv(baseCF.Config.Env, "CUDA_VERSION")
	baseLayers, err := base.Layers()
	if err != nil {
		return nil, err
	}
	for i, l := range baseLayers {
		info, err := describe(fmt.Sprintf("base %d", i+1), l)
		if err != nil {
			return nil, err
		}
		out.Layers = append(out.Layers, info)
	}

	built, err := wait()
	waited = true
	if err != nil {
		return nil, err
	}
	img, err := appendLayers(base, built, out, o, "cortex package")
	if err != nil {
		return nil, err
	}

	cfg := baseCF.Config
	cfg.Entrypoint = c.Entrypoint
	cfg.Cmd = nil
	cfg.User = c.User
	if cfg.User == "" {
		cfg.User = fmt.Sprintf("%d:%d", NonRootUID, NonRootUID)
	}
	cfg.Env = mergeEnv(cfg.Env, c.Env)
	if c.WorkingDir != "" {
		cfg.WorkingDir = c.WorkingDir
	}
	labels := maps.Clone(cfg.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, c.Labels)
	cfg.Labels = labels
	img, err = withConfig(img, func(cf *v1.ConfigFile) {
		o.stamp(cf)
		cf.Config = cfg
	})
	if err != nil {
		return nil, err
	}
	out.Image = img
	if out.Digest, err = img.Digest(); err != nil {
		return nil, err
	}
	ok = true
	return out, nil
}

// start fills o's defaults, checks its compression, and returns the image
// to fill in and the layer builder over o's cache: a temporary one, which
// the image's Close removes, when o names none.
func (o *Options) start() (*Image, *layerBuilder, error) {
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	if o.Compression == "" {
		o.Compression = Gzip
	}
	if _, err := o.Compression.compressor(io.Discard, Default); err != nil {
		return nil, nil, err
	}
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0).UTC()
	}
	out := &Image{}
	if o.CacheDir == "" {
		tmp, err := os.MkdirTemp("", "cortex-layers-")
		if err != nil {
			return nil, nil, err
		}
		out.tmp, o.CacheDir = tmp, tmp
	}
	return out, &layerBuilder{dir: filepath.Join(o.CacheDir, layersDir), compression: o.Compression, mtime: o.Created, noCache: o.NoCache}, nil
}

// appendLayers appends the built layers to img in order, each described
// in out.Layers and on o.Progress, its history saying what made it (by,
// such as "cortex package").
func appendLayers(img v1.Image, built []builtLayer, out *Image, o Options, by string) (v1.Image, error) {
	for _, b := range built {
		bl := b.blob
		info, err := describe(b.layer.Name, bl)
		if err != nil {
			return nil, err
		}
		info.Cached, info.Read = b.stats.cached, b.stats.read
		out.Layers = append(out.Layers, info)
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "layer %-10s %s %s (%s)\n", b.layer.Name, bl.digest.Hex[:12], humanSize(bl.size), how(b))
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:     bl,
			MediaType: o.Compression.mediaType(),
			History:   v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: by + ": " + b.layer.Name, Comment: "cortex"},
		})
		if err != nil {
			return nil, err
		}
	}
	return img, nil
}

// builtLayer is one content layer built by buildLayers.
type builtLayer struct {
	layer Layer
	blob  *blobLayer
	stats buildStats
	took  time.Duration
	err   error
}

// buildLayers builds the non-empty layers of ls at once, as many at a time
// as there are CPUs (compressing is where packaging spends its time, and
// the layers are independent), and returns a function that waits for them
// and gives them in order, or the first layer's error.
func buildLayers(ctx context.Context, lb *layerBuilder, ls []Layer) (wait func() ([]builtLayer, error)) {
	var out []builtLayer
	for _, l := range ls {
		if len(l.Files) > 0 {
			out = append(out, builtLayer{layer: l})
		}
	}
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range out {
		b := &out[i]
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if b.err = ctx.Err(); b.err != nil {
				return
			}
			start := time.Now()
			b.blob, b.stats, b.err = lb.build(b.layer.Files, b.layer.Level)
			b.took = time.Since(start)
		})
	}
	return func() ([]builtLayer, error) {
		wg.Wait()
		for _, b := range out {
			if b.err != nil {
				return nil, fmt.Errorf("%s layer: %w", b.layer.Name, b.err)
			}
		}
		return out, nil
	}
}

// baseImage returns the base as an OCI image: the built-in base, or the
// configured one with Docker media types mapped to their OCI twins.
func baseImage(ctx context.Context, c Contents, o Options, lb *layerBuilder, out *Image) (v1.Image, error) {
	ociEmpty := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if o.Base == "" {
		files, info, err := builtinBase(o.Arch, c.CGO, func(s string) { out.Notes = append(out.Notes, s) })
		if err != nil {
			return nil, err
		}
		out.Base = info
		bl, _, err := lb.build(files, Default)
		if err != nil {
			return nil, fmt.Errorf("base layer: %w", err)
		}
		img, err := mutate.Append(ociEmpty, mutate.Addendum{
			Layer:     bl,
			MediaType: o.Compression.mediaType(),
			History:   v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: "cortex package: " + info.Ref + " base", Comment: strings.Join(slices.Concat(info.Packages, info.Files), " ")},
		})
		if err != nil {
			return nil, err
		}
		return withConfig(img, func(cf *v1.ConfigFile) {
			cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
		})
	}
	ropts := append([]remote.Option{remote.WithContext(ctx)}, o.RemoteOptions...)
	base, err := loadBase(o.Base, o.Arch, ropts)
	if err != nil {
		return nil, err
	}
	out.Base = BaseInfo{Ref: o.Base}
	mt, err := base.MediaType()
	if err != nil {
		return nil, err
	}
	if mt == types.OCIManifestSchema1 {
		return base, nil
	}
	// A Docker manifest: rebuild it as OCI around the same layer bytes, so
	// zstd layers (OCI only) can go on top and the image is of one kind.
	baseCF, err := base.ConfigFile()
	if err != nil {
		return nil, err
	}
	layers, err := base.Layers()
	if err != nil {
		return nil, err
	}
	img := ociEmpty
	for _, l := range layers {
		if img, err = mutate.Append(img, mutate.Addendum{Layer: ociLayer{l}}); err != nil {
			return nil, err
		}
	}
	return withConfig(img, func(cf *v1.ConfigFile) {
		cf.History = baseCF.History
		cf.Config = baseCF.Config
		cf.OS, cf.Architecture, cf.Variant = baseCF.OS, baseCF.Architecture, baseCF.Variant
	})
}

// withConfig returns img with its config file as edit leaves a copy of
// it (images are immutable: mutate makes a new one).
func withConfig(img v1.Image, edit func(*v1.ConfigFile)) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	edit(cf)
	return mutate.ConfigFile(img, cf)
}

// stamp gives an image's config file the platform and the time cortex
// builds into every image it makes.
func (o *Options) stamp(cf *v1.ConfigFile) {
	cf.OS, cf.Architecture = "linux", o.Arch
	cf.Created = v1.Time{Time: o.Created}
}

func describe(name string, l v1.Layer) (LayerInfo, error) {
	d, err := l.Digest()
	if err != nil {
		return LayerInfo{}, err
	}
	diff, err := l.DiffID()
	if err != nil {
		return LayerInfo{}, err
	}
	size, err := l.Size()
	if err != nil {
		return LayerInfo{}, err
	}
	mt, err := l.MediaType()
	if err != nil {
		return LayerInfo{}, err
	}
	return LayerInfo{Name: name, Digest: d.String(), DiffID: diff.String(), Size: size, MediaType: mt}, nil
}

func hasEnv(env []string, key string) bool {
	return slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
}

// mergeEnv returns base with each of add set, replacing the same key.
func mergeEnv(base, add []string) []string {
	out := slices.Clone(base)
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		i := slices.IndexFunc(out, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		if i >= 0 {
			out[i] = kv
		} else {
			out = append(out, kv)
		}
	}
	return out
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
