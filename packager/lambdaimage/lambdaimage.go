// Package lambdaimage makes a function's container image into one AWS
// Lambda runs (PackageType Image), and checks an image against Lambda's
// rules for container images before anything is pushed or deployed.
//
// Lambda's rules, and how a cortex image meets them:
//
//   - The entrypoint runs a runtime interface client: a process that polls
//     the Runtime API at $AWS_LAMBDA_RUNTIME_API. The function binary is
//     its own client (runtime.Main serves the Lambda carrier when that
//     variable is set), so ENTRYPOINT is the binary itself and CMD is
//     empty: no AWS base image or aws-lambda-rie is needed.
//   - One platform: Lambda refuses an image index ("The image manifest,
//     config or layer media type ... is not supported"), even one holding
//     a single image, so the image is a single manifest of linux/amd64 or
//     linux/arm64, the function's targets.lambda.arch. OCI and Docker v2
//     schema 2 manifests are both accepted; cortex writes OCI.
//   - gzip layers: Lambda does not read zstd.
//   - At most 10 GB uncompressed, every layer included.
//   - A read-only file system but /tmp, and a least-privileged user that
//     Lambda picks (the image's USER is not the one that runs): every
//     shipped file must be readable by others, which packager/oci's tar
//     modes (0644, 0755 for executables and directories) give.
//
// The working directory is /app, where the files are (the binary finds
// cortex.json beside itself; CORTEX_CONFIG names it too). Lambda sets
// LAMBDA_TASK_ROOT itself (to /var/task, which the image does not use).
//
// Push sends the image from its OCI layout (dist/lambda-image) to
// REPO:Tag. It must not import packager, so that the packager (cortex
// package --registry) and the deployer (cortex deploy --target lambda) can
// both use it.
package lambdaimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cortexfn/cortex/packager/oci"
)

// MaxUncompressed is the largest image Lambda runs, every layer
// uncompressed (AWS documents 10 GB; as for the zip quotas, read as GiB).
const MaxUncompressed = 10 << 30

// Label marks an image made for Lambda.
const Label = "dev.cortexfn.lambda"

// Tag is the tag Push gives the Lambda image beside its digest, which is
// what a function names: REPO:lambda, apart from the tags the Knative
// image takes in the same repository.
const Tag = "lambda"

// ErrNotLambda is wrapped by every error Check returns.
var ErrNotLambda = errors.New("lambdaimage: not an image Lambda runs")

// Image returns img (a function image packager/oci built) configured for
// Lambda: the same layers, so a registry that holds one holds the other's
// blobs, with an entrypoint and no command, no PORT (Lambda's carrier is
// the Runtime API, not HTTP), and the Label. env is added to the image's
// environment, replacing the same names.
func Image(img v1.Image, env ...string) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	cf = cf.DeepCopy()
	if len(cf.Config.Entrypoint) == 0 {
		return nil, fmt.Errorf("%w: the image has no entrypoint", ErrNotLambda)
	}
	cf.Config.Cmd = nil
	cf.Config.Env = slices.DeleteFunc(cf.Config.Env, func(kv string) bool { return strings.HasPrefix(kv, "PORT=") })
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		cf.Config.Env = slices.DeleteFunc(cf.Config.Env, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		cf.Config.Env = append(cf.Config.Env, kv)
	}
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	cf.Config.Labels[Label] = "image"
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	if err := Check(out, cf.Architecture, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// Check checks that img is an image Lambda runs for the GOARCH arch
// ("amd64" or "arm64"): a single-platform manifest of linux/arch with an
// entrypoint, gzip layers, and at most MaxUncompressed. uncompressed is
// the image's size with every layer uncompressed, when the caller knows
// it (0: not checked; reading every layer to learn it would cost as much
// as the push).
func Check(img v1.Image, arch string, uncompressed int64) error {
	mt, err := img.MediaType()
	if err != nil {
		return err
	}
	if mt != types.OCIManifestSchema1 && mt != types.DockerManifestSchema2 {
		return fmt.Errorf("%w: its manifest is %s; Lambda takes one OCI or Docker v2 image manifest, never an index", ErrNotLambda, mt)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading the image config: %w", err)
	}
	if cf.OS != "linux" || cf.Architecture != arch {
		return fmt.Errorf("%w: it is for %s/%s, the function for linux/%s", ErrNotLambda, cf.OS, cf.Architecture, arch)
	}
	if len(cf.Config.Entrypoint) == 0 {
		return fmt.Errorf("%w: it has no entrypoint", ErrNotLambda)
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for i, l := range layers {
		lmt, err := l.MediaType()
		if err != nil {
			return err
		}
		switch lmt {
		case types.OCILayer, types.DockerLayer:
		case types.OCILayerZStd:
			return fmt.Errorf("%w: layer %d is zstd-compressed; Lambda reads only gzip layers: package without --compression zstd", ErrNotLambda, i+1)
		default:
			return fmt.Errorf("%w: layer %d is %s; Lambda reads gzip layers", ErrNotLambda, i+1, lmt)
		}
	}
	if uncompressed > MaxUncompressed {
		return fmt.Errorf("%w: it is %.1f GB uncompressed, over Lambda's %d GB limit for a container image: ship the model apart (a predictor.model reference, fetched when the function starts) or use Knative",
			ErrNotLambda, float64(uncompressed)/(1<<30), MaxUncompressed>>30)
	}
	return nil
}

// Platform is the GOARCH of a Lambda architecture (x86_64, arm64), "" for
// another.
func Platform(lambdaArch string) string {
	return map[string]string{"x86_64": "amd64", "arm64": "arm64"}[lambdaArch]
}

// Read reads the Lambda image from the OCI layout dir, checking it is one
// image manifest Lambda runs.
func Read(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the Lambda image %s: %w", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading the Lambda image %s: %w", dir, err)
	}
	if len(m.Manifests) == 1 && m.Manifests[0].MediaType.IsIndex() {
		return nil, fmt.Errorf("%w: %s holds an image index; Lambda takes one image manifest", ErrNotLambda, dir)
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("the Lambda image layout %s holds %d images, want 1: package it again with cortex package", dir, len(m.Manifests))
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("reading the Lambda image %s: %w", dir, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	if err := Check(img, cf.Architecture, 0); err != nil {
		return nil, err
	}
	return img, nil
}

// Push reads the Lambda image from the OCI layout dir (Read) and pushes it
// to repo:Tag (repo is REGISTRY/NAME) with packager/oci's Push (the docker
// config's credentials and credential helpers; blobs the registry has are
// not sent again), and returns its digest reference.
func Push(ctx context.Context, dir, repo string, progress io.Writer, opts ...remote.Option) (name.Digest, error) {
	img, err := Read(dir)
	if err != nil {
		return name.Digest{}, err
	}
	return oci.Push(ctx, img, strings.TrimSuffix(repo, "/")+":"+Tag, progress, opts...)
}
