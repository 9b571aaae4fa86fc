package cachetrim

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTrimFileGroups: in a directory of key.blob + key.json entries, a
// trim removes the entries unused for MaxUnused, then the least recently
// used while the directory is over MaxBytes, never one used within
// TouchEvery, and judges an entry by its newest file (a hit touches the
// .json only); it leaves subdirectories alone, and runs at most once per
// TrimEvery.
func TestTrimFileGroups(t *testing.T) {
	dir := t.TempDir()
	p := Policy{TouchEvery: time.Hour, TrimEvery: 10 * time.Minute, MaxUnused: 5 * 24 * time.Hour, MaxBytes: 12}
	now := time.Now()
	write := func(name string, ago time.Duration) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("xx"), 0o444); err != nil { // read-only, as the layer blobs are
			t.Fatal(err)
		}
		at := now.Add(-ago)
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
	}
	entry := func(key string, ago time.Duration) {
		write(key+".blob", ago)
		write(key+".json", ago)
	}
	entry("old", 6*24*time.Hour)    // unused for longer than MaxUnused
	entry("stale", 3*time.Hour)     // unused, but the directory is over its bound
	entry("older", 4*time.Hour)     // likewise, and less recently used
	entry("recent", 10*time.Minute) // used within TouchEvery: kept
	entry("hit", 7*24*time.Hour)
	p.Touch(filepath.Join(dir, "hit.json"), now) // a hit marks it used
	entry("kept", 2*time.Hour)                   // 4 bytes an entry: the 12-byte bound is met once stale and older go
	write("stat/x.json", 30*24*time.Hour)        // a subdirectory: not an entry here

	p.Trim(dir, now)
	for key, want := range map[string]bool{"old": false, "older": false, "stale": false, "recent": true, "hit": true, "kept": true} {
		for _, ext := range []string{".blob", ".json"} {
			_, err := os.Stat(filepath.Join(dir, key+ext))
			if got := err == nil; got != want {
				t.Errorf("%s%s kept %v, want %v", key, ext, got, want)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "stat", "x.json")); err != nil {
		t.Errorf("the subdirectory's file was removed: %v", err)
	}

	// Trimmed a moment ago: the next call does nothing.
	entry("again", 6*24*time.Hour)
	p.Trim(dir, now.Add(time.Minute))
	if _, err := os.Stat(filepath.Join(dir, "again.blob")); err != nil {
		t.Error("a second trim ran within TrimEvery")
	}
	p.Trim(dir, now.Add(11*time.Minute))
	if _, err := os.Stat(filepath.Join(dir, "again.blob")); err == nil {
		t.Error("the trim after TrimEvery kept an entry unused for six days")
	}
}

func TestDefault(t *testing.T) {
	t.Setenv("CORTEX_TEST_CACHE_MAX", "123")
	if p := Default("CORTEX_TEST_CACHE_MAX", 1); p.MaxBytes != 123 || p.MaxUnused != 5*24*time.Hour {
		t.Errorf("Default with the variable set: %+v", p)
	}
	t.Setenv("CORTEX_TEST_CACHE_MAX", "lots")
	if p := Default("CORTEX_TEST_CACHE_MAX", 7); p.MaxBytes != 7 {
		t.Errorf("Default with a bad value: MaxBytes %d, want the default 7", p.MaxBytes)
	}
}
