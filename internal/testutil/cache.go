package testutil

import (
	"os"
	"path/filepath"
)

// CacheDir is a directory the tests keep between runs, named sub under the
// user's cache directory (the temporary directory when there is none):
// Go guests built for wasip1, wazero's compiled modules. What is kept
// there is keyed by what made it (wazero keys a module by its bytes, its
// own version and the architecture), so a change is never served stale.
func CacheDir(sub string) string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "cortex-test", sub)
}
