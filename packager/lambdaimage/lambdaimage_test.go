package lambdaimage_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cortexfn/cortex/packager/lambdaimage"
)

// function is a small image as packager/oci builds one: OCI, gzip
// layers, an entrypoint, PORT for the HTTP carrier, a command to drop.
func function(t *testing.T, arch string, layer types.MediaType) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, static.NewLayer([]byte("layer"), layer))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Entrypoint, cf.Config.Cmd = []string{"/app/iris"}, []string{"--flag"}
	cf.Config.Env = []string{"PATH=/usr/bin", "PORT=8080", "CORTEX_CONFIG=/elsewhere"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestImage(t *testing.T) {
	img, err := lambdaimage.Image(function(t, "arm64", types.OCILayer), "CORTEX_CONFIG=/app/cortex.json")
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	c := cf.Config
	if !slices.Equal(c.Entrypoint, []string{"/app/iris"}) || c.Cmd != nil {
		t.Errorf("entrypoint %q, cmd %q; want the binary and no command", c.Entrypoint, c.Cmd)
	}
	if want := []string{"PATH=/usr/bin", "CORTEX_CONFIG=/app/cortex.json"}; !slices.Equal(c.Env, want) {
		t.Errorf("env %q, want %q", c.Env, want)
	}
	if c.Labels[lambdaimage.Label] != "image" {
		t.Errorf("labels %v", c.Labels)
	}
}

func TestCheck(t *testing.T) {
	good := function(t, "amd64", types.OCILayer)
	docker, err := random.Image(1, 1) // Docker v2 media types: accepted
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name         string
		img          v1.Image
		arch         string
		uncompressed int64
		want         string
	}{
		{"ok", good, "amd64", 1 << 20, ""},
		{"docker v2", mustConfig(t, docker, "amd64"), "amd64", 0, ""},
		{"other arch", good, "arm64", 0, "the function for linux/arm64"},
		{"zstd", function(t, "amd64", types.OCILayerZStd), "amd64", 0, "zstd"},
		{"uncompressed layer", function(t, "amd64", types.OCIUncompressedLayer), "amd64", 0, "Lambda reads gzip layers"},
		{"over 10 GB", good, "amd64", lambdaimage.MaxUncompressed + 1, "over Lambda's 10 GB limit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := lambdaimage.Check(tt.img, tt.arch, tt.uncompressed)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want none", err)
			case tt.want != "" && (!errors.Is(err, lambdaimage.ErrNotLambda) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want ErrNotLambda saying %q", err, tt.want)
			}
		})
	}
}

func mustConfig(t *testing.T, img v1.Image, arch string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config.Entrypoint = "linux", arch, []string{"/app/iris"}
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
