package wasm_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/runtime/wasm"
)

// Guests are built from testdata/<name> with wasm.BuildGo once per test
// binary, into a cache keyed by a hash of their sources, the guest package's
// sources and the Go version, so a second `go test` builds nothing. wazero's
// compilation cache sits beside them.

type guestBuild struct {
	once sync.Once
	path string
	err  error
}

var guests sync.Map // name -> *guestBuild

// guest returns the path of the built guest testdata/<name>.
func guest(tb testing.TB, name string) string {
	tb.Helper()
	v, _ := guests.LoadOrStore(name, &guestBuild{})
	g := v.(*guestBuild)
	g.once.Do(func() { g.path, g.err = buildGuest(name) })
	if g.err != nil {
		tb.Fatalf("building guest %s: %v", name, g.err)
	}
	return g.path
}

func buildGuest(name string) (string, error) {
	src := filepath.Join("testdata", name)
	goVersion, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %w", err)
	}
	h := sha256.New()
	h.Write(goVersion)
	for _, dir := range []string{src, filepath.Join("..", "..", "functions", "wasmguest")} {
		if err := hashDir(h, dir); err != nil {
			return "", err
		}
	}
	dir := testutil.CacheDir("wasm-guests")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, name+"-"+hex.EncodeToString(h.Sum(nil))[:16]+".wasm")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	// Build beside the target and rename, so concurrent test binaries (fuzz
	// workers, -count) never read a half-written module.
	tmp := out + ".tmp" + strconv.Itoa(os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := wasm.BuildGo(ctx, src, tmp); err != nil {
		return "", err
	}
	return out, os.Rename(tmp, out)
}

func hashDir(h hash.Hash, dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00", filepath.Base(n))
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// newModule builds (once) and loads guest name with opts, closing it when
// the test ends.
func newModule(tb testing.TB, name string, opts wasm.Options) *wasm.Module {
	tb.Helper()
	path := guest(tb, name)
	if opts.CacheDir == "" {
		opts.CacheDir = testutil.CacheDir("wazero")
	}
	m, err := wasm.New(context.Background(), path, opts)
	if err != nil {
		tb.Fatalf("wasm.New(%s): %v", name, err)
	}
	tb.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return m
}
