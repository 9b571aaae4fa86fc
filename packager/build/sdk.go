package build

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/cortexfn/cortex"
)

// SDK is a copy of the cortex module's function-side packages on disk: the
// module every function outside a cortex checkout builds against.
type SDK struct {
	// Dir is the module's root (go.mod, go.sum and the sources).
	Dir string
	// Version is the cortex version it carries (cortex.Version).
	Version string
}

var sdkDigest = sync.OnceValues(func() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(cortex.SDK(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(cortex.SDK(), p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12], err
})

// ExtractSDK writes the SDK embedded in this CLI into the cache (once: the
// directory is named by the version and a digest of the content, so two CLIs
// of the same version but different sources never share one) and returns it.
func ExtractSDK(cacheDir string) (SDK, error) {
	root, err := CacheRoot(cacheDir)
	if err != nil {
		return SDK{}, err
	}
	digest, err := sdkDigest()
	if err != nil {
		return SDK{}, fmt.Errorf("reading the embedded SDK: %w", err)
	}
	sdk := SDK{Dir: filepath.Join(root, "sdk", cortex.Version+"-"+digest), Version: cortex.Version}
	if _, err := os.Stat(filepath.Join(sdk.Dir, "go.mod")); err == nil {
		return sdk, nil
	}
	if err := os.MkdirAll(filepath.Dir(sdk.Dir), 0o755); err != nil {
		return SDK{}, fmt.Errorf("creating the SDK cache: %w", err)
	}
	// Write beside the final place and rename: a concurrent build sees
	// either no SDK or a whole one.
	tmp, err := os.MkdirTemp(filepath.Dir(sdk.Dir), ".partial-")
	if err != nil {
		return SDK{}, fmt.Errorf("creating the SDK cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.CopyFS(tmp, cortex.SDK()); err != nil {
		return SDK{}, fmt.Errorf("writing the SDK into the cache: %w", err)
	}
	if err := os.Rename(tmp, sdk.Dir); err != nil {
		// Another process won the race: its copy is the same.
		if _, serr := os.Stat(filepath.Join(sdk.Dir, "go.mod")); serr == nil {
			return sdk, nil
		}
		return SDK{}, fmt.Errorf("writing the SDK into the cache: %w", err)
	}
	return sdk, nil
}
