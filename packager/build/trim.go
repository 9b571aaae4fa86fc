package build

import (
	"time"

	"github.com/cortexfn/cortex/internal/cachetrim"
)

// The build cache is trimmed as the go command trims its own
// (internal/cachetrim): each kind (bin, wasm) of entries is kept under
// $CORTEX_BUILD_CACHE_MAX bytes (default 4 GiB), entries unused for five
// days go. Without this the cache grew by a binary per distinct build
// (tens of MB each) without end.
func buildPolicy() cachetrim.Policy {
	p := cachetrim.Default("CORTEX_BUILD_CACHE_MAX", 4<<30)
	p.Dirs = true // an entry is a directory: the key's
	return p
}

// touch records that the entry dir was used now.
func touch(dir string, now time.Time) { buildPolicy().Touch(dir, now) }

// trim removes unused entries of the cache kind directory kindDir.
func trim(kindDir string, now time.Time) { buildPolicy().Trim(kindDir, now) }
