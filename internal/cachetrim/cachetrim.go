// Package cachetrim keeps the CLI's caches under the cortex cache from
// growing without end, as the go command trims its build cache (cmd/go's
// cache.Trim): an entry's modification time records its last use
// (refreshed at most once per TouchEvery, so a hit costs a stat, rarely a
// utimes), and a trim, at most once per TrimEvery (the build cache trims
// when it adds an entry, the packager once a package is written), removes
// the entries unused for MaxUnused, then, while the directory holds more
// than MaxBytes, the least recently used. An entry used within
// TouchEvery is never removed: a run may be about to read it.
//
// Written here rather than taken from a library: the go command's own
// trimming is internal to it, and the policy is a few dozen lines.
package cachetrim

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Policy says when a cache directory is trimmed and what it keeps.
type Policy struct {
	TouchEvery time.Duration // a hit refreshes its entry's time at most this often
	TrimEvery  time.Duration // a directory is trimmed at most this often
	MaxUnused  time.Duration // entries unused for longer go
	MaxBytes   int64         // then the least recently used, while the directory holds more
	// Dirs: each subdirectory is an entry. Otherwise an entry is the
	// regular files whose names share what comes before the first '.'
	// (key.blob and key.json), subdirectories are left alone, and the
	// entry's last use is its newest file's.
	Dirs bool
}

// Default is the go command's policy (an hour, ten minutes, five days)
// with MaxBytes read from the environment variable env, def bytes when it
// is unset or not a positive number.
func Default(env string, def int64) Policy {
	max := def
	if n, err := strconv.ParseInt(os.Getenv(env), 10, 64); err == nil && n > 0 {
		max = n
	}
	return Policy{TouchEvery: time.Hour, TrimEvery: 10 * time.Minute, MaxUnused: 5 * 24 * time.Hour, MaxBytes: max}
}

// Packaged is the policy of the packager's layer and zip caches: each of
// their directories is kept under $CORTEX_PACKAGE_CACHE_MAX bytes (default
// 16 GiB, room for a few versions of a multi-GB model), entries unused for
// five days go.
func Packaged() Policy { return Default("CORTEX_PACKAGE_CACHE_MAX", 16<<30) }

// Touch records that the entry at path (a directory or a file) was used
// now.
func (p Policy) Touch(path string, now time.Time) {
	if st, err := os.Stat(path); err == nil && now.Sub(st.ModTime()) > p.TouchEvery {
		_ = os.Chtimes(path, now, now)
	}
}

// stampFile records when a directory was last trimmed.
const stampFile = "trim.txt"

// Trim removes the unused entries of dir (see the package comment),
// unless it was trimmed less than TrimEvery ago. Errors are ignored: an
// entry that cannot be removed stays, and the cache works as before.
func (p Policy) Trim(dir string, now time.Time) {
	stamp := filepath.Join(dir, stampFile)
	if b, err := os.ReadFile(stamp); err == nil {
		if t, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && now.Sub(time.Unix(t, 0)) < p.TrimEvery {
			return
		}
	}
	if os.WriteFile(stamp, []byte(strconv.FormatInt(now.Unix(), 10)+"\n"), 0o644) != nil {
		return // no such directory, or not ours to write
	}
	entries, total := p.entries(dir)
	slices.SortFunc(entries, func(a, b entry) int { return a.used.Compare(b.used) }) // least recently used first
	for _, e := range entries {
		if now.Sub(e.used) < p.TouchEvery {
			break // in use, and so is everything after it
		}
		if now.Sub(e.used) < p.MaxUnused && total <= p.MaxBytes {
			break
		}
		removed := true
		for _, path := range e.paths {
			if os.RemoveAll(path) != nil {
				removed = false
			}
		}
		if removed {
			total -= e.size
		}
	}
}

// entry is one cache entry: its files (or directory), last use and size.
type entry struct {
	paths []string
	used  time.Time
	size  int64
}

// entries lists dir's entries and their total size.
func (p Policy) entries(dir string) ([]entry, int64) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0
	}
	var list []entry
	byKey := map[string]int{}
	var total int64
	for _, de := range des {
		if de.Name() == stampFile {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue
		}
		path := filepath.Join(dir, de.Name())
		switch {
		case p.Dirs && de.IsDir():
			e := entry{paths: []string{path}, used: info.ModTime()}
			_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					if fi, err := d.Info(); err == nil {
						e.size += fi.Size()
					}
				}
				return nil
			})
			list = append(list, e)
			total += e.size
		case !p.Dirs && info.Mode().IsRegular():
			key, _, _ := strings.Cut(de.Name(), ".")
			i, ok := byKey[key]
			if !ok {
				i = len(list)
				byKey[key] = i
				list = append(list, entry{})
			}
			e := &list[i]
			e.paths = append(e.paths, path)
			e.size += info.Size()
			if info.ModTime().After(e.used) {
				e.used = info.ModTime()
			}
			total += info.Size()
		}
	}
	return list, total
}
