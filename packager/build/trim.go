package build

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The build cache is trimmed as the go command trims its own (cmd/go's
// cache.Trim): an entry's mtime records its last use (refreshed at most
// once per touchEvery, so a hit costs a stat, rarely a utimes), and at
// most once per trimEvery a build that added an entry removes the entries
// of its kind unused for maxUnused, then, while the kind holds more than
// maxBytes, the least recently used. An entry used within touchEvery is
// never removed: a build may be about to read it. Without this the cache
// grew by a binary per distinct build (tens of MB each) without end.
// Written here rather than taken from a library: the go command's own
// trimming is internal to it, and the policy is twenty lines.
var (
	touchEvery = time.Hour
	trimEvery  = 10 * time.Minute
	maxUnused  = 5 * 24 * time.Hour
	// maxBytes bounds each kind (bin, wasm) of the cache: $CORTEX_BUILD_CACHE_MAX
	// bytes, default 4 GiB.
	maxBytes = func() int64 {
		if n, err := strconv.ParseInt(os.Getenv("CORTEX_BUILD_CACHE_MAX"), 10, 64); err == nil && n > 0 {
			return n
		}
		return 4 << 30
	}
)

// touch records that the entry dir was used now.
func touch(dir string, now time.Time) {
	if st, err := os.Stat(dir); err == nil && now.Sub(st.ModTime()) > touchEvery {
		os.Chtimes(dir, now, now)
	}
}

// trim removes unused entries of the cache kind directory kindDir (see
// above), unless it was trimmed less than trimEvery ago.
func trim(kindDir string, now time.Time) {
	stamp := filepath.Join(kindDir, "trim.txt")
	if b, err := os.ReadFile(stamp); err == nil {
		if t, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && now.Sub(time.Unix(t, 0)) < trimEvery {
			return
		}
	}
	os.WriteFile(stamp, []byte(strconv.FormatInt(now.Unix(), 10)+"\n"), 0o644)

	type entry struct {
		path string
		used time.Time
		size int64
	}
	des, err := os.ReadDir(kindDir)
	if err != nil {
		return
	}
	var entries []entry
	var total int64
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue
		}
		e := entry{path: filepath.Join(kindDir, de.Name()), used: info.ModTime()}
		filepath.WalkDir(e.path, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					e.size += fi.Size()
				}
			}
			return nil
		})
		entries = append(entries, e)
		total += e.size
	}
	slices.SortFunc(entries, func(a, b entry) int { return a.used.Compare(b.used) }) // least recently used first
	limit := maxBytes()
	for _, e := range entries {
		if now.Sub(e.used) < touchEvery {
			break // in use, and so is everything after it
		}
		if now.Sub(e.used) < maxUnused && total <= limit {
			break
		}
		if os.RemoveAll(e.path) == nil {
			total -= e.size
		}
	}
}
