package lambdazip_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/build"
	"github.com/cortexfn/cortex/packager/lambdazip"
	"github.com/cortexfn/cortex/packager/onnxruntime"
)

func TestProvided(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		sys, err := lambdazip.Provided(arch)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		// The list and the GLIBC constant the rest of the packager uses
		// must say the same.
		if got := sys.Packages["glibc"]; !strings.HasPrefix(got, lambdazip.GLIBC+"-") {
			t.Errorf("%s: glibc %q, want %s-…", arch, got, lambdazip.GLIBC)
		}
		for _, pkg := range []string{"libgcc", "libstdc++"} {
			if sys.Packages[pkg] == "" {
				t.Errorf("%s: the list has no %s", arch, pkg)
			}
		}
	}
	if _, err := lambdazip.Provided("riscv64"); err == nil {
		t.Error("riscv64: no error")
	}
}

// onnxRuntime is the real ONNX Runtime library for linux/arch, fetched
// into the cache the packager uses when it is not there yet.
func onnxRuntime(t *testing.T, arch string) string {
	t.Helper()
	root, err := build.CacheRoot("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := onnxruntime.Ensure(context.Background(), root, arch, nil)
	if err != nil {
		t.Fatalf("ONNX Runtime for %s: %v", arch, err)
	}
	return p
}

// cBinary builds a small C program for arch that links glibc
// dynamically, like the function binary does, with the compiler `make
// tools` installs.
func cBinary(t *testing.T, arch string) string {
	t.Helper()
	cc := map[string]string{"amd64": "gcc", "arm64": "aarch64-linux-gnu-gcc"}[arch]
	if _, err := exec.LookPath(cc); err != nil {
		t.Fatalf("%s is not on PATH: run make tools", cc)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.c")
	if err := os.WriteFile(src, []byte("#include <stdio.h>\nint main(void) { puts(\"ok\"); return 0; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bootstrap")
	if b, err := exec.Command(cc, "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cc, err, b)
	}
	return out
}

// TestCheckLibrariesShipsToday checks what the zip ships today for an
// ONNX function, the real ONNX Runtime of each architecture beside a
// dynamically linked bootstrap, against provided.al2023's list: ONNX
// Runtime needs libstdc++ (up to GLIBCXX_3.4.22, CXXABI_1.3.11), libgcc_s
// and glibc (up to 2.28), all of which the runtime has.
func TestCheckLibrariesShipsToday(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			sys, err := lambdazip.Provided(arch)
			if err != nil {
				t.Fatal(err)
			}
			files := []artifact.File{
				{Path: "bootstrap", Src: cBinary(t, arch)},
				{Path: "cortex.json", Data: []byte("{}")},
				{Path: "lib/libonnxruntime.so.1", Src: onnxRuntime(t, arch)},
			}
			if err := lambdazip.CheckLibraries(files, sys); err != nil {
				t.Errorf("got %v, want nil", err)
			}
		})
	}
}

// TestCheckLibrariesTooNew shows the messages for what would not load:
// Debian's own arm64 libstdc++ (GCC 12, needing GLIBC_2.36) shipped for a
// runtime without one, a library the zip lacks, and a runtime whose
// libstdc++ is older than what ONNX Runtime needs.
func TestCheckLibrariesTooNew(t *testing.T) {
	debian := "/usr/aarch64-linux-gnu/lib/libstdc++.so.6" // libstdc++6-arm64-cross, from make tools
	if _, err := os.Stat(debian); err != nil {
		t.Fatalf("Debian's arm64 libstdc++ is not installed (run make tools): %v", err)
	}
	ort := onnxRuntime(t, "arm64")
	al2023, err := lambdazip.Provided("arm64")
	if err != nil {
		t.Fatal(err)
	}
	without := func(pkg string) *lambdazip.System {
		s := &lambdazip.System{Runtime: al2023.Runtime, Arch: al2023.Arch, Packages: map[string]string{}}
		for k, v := range al2023.Packages {
			if k != pkg {
				s.Packages[k] = v
			}
		}
		return s
	}
	oldStdcxx := without("")
	oldStdcxx.Packages["libstdc++"] = "4.8.5-44" // not in the GLIBCXX table: refused
	oldLibgcc := without("")
	oldLibgcc.Packages["libgcc"] = "3.4.6-1" // older than ONNX Runtime's GCC_4.5.0

	for _, tt := range []struct {
		name  string
		sys   *lambdazip.System
		files []artifact.File
		want  []string
	}{{
		name: "debian libstdc++ shipped, runtime has none",
		sys:  without("libstdc++"),
		files: []artifact.File{
			{Path: "bootstrap", Src: cBinary(t, "arm64")},
			{Path: "lib/libonnxruntime.so.1", Src: ort},
			{Path: "lib/libstdc++.so.6", Src: debian},
		},
		want: []string{"lib/libstdc++.so.6 needs GLIBC_2.36 from libc.so.6, but provided.al2023's glibc 2.34 has not got it"},
	}, {
		name: "libstdc++ nowhere",
		sys:  without("libstdc++"),
		files: []artifact.File{
			{Path: "bootstrap", Src: cBinary(t, "arm64")},
			{Path: "lib/libonnxruntime.so.1", Src: ort},
		},
		want: []string{"lib/libonnxruntime.so.1 needs libstdc++.so.6, which neither the zip nor the runtime has", "--lambda-libs"},
	}, {
		name: "runtime libgcc_s too old",
		sys:  oldLibgcc,
		files: []artifact.File{
			{Path: "bootstrap", Src: cBinary(t, "arm64")},
			{Path: "lib/libonnxruntime.so.1", Src: ort},
			// Shipped, but the runtime's copy is what Lambda loads.
			{Path: "lib/libgcc_s.so.1", Src: "/usr/aarch64-linux-gnu/lib/libgcc_s.so.1"},
		},
		want: []string{"lib/libonnxruntime.so.1 needs GCC_4.5.0 from libgcc_s.so.1, but provided.al2023's libgcc 3.4.6 has not got it", "Lambda loads the runtime's own copy"},
	}, {
		name: "runtime libstdc++ unknown",
		sys:  oldStdcxx,
		files: []artifact.File{
			{Path: "bootstrap", Src: cBinary(t, "arm64")},
			{Path: "lib/libonnxruntime.so.1", Src: ort},
		},
		want: []string{"needs GLIBCXX_3.4 from libstdc++.so.6, but provided.al2023's libstdc++ 4.8.5 (not in the GLIBCXX table) has not got it"},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			err := lambdazip.CheckLibraries(tt.files, tt.sys)
			var le *lambdazip.LibrariesError
			if !errors.As(err, &le) || !errors.Is(err, lambdazip.ErrLibraries) {
				t.Fatalf("got %v, want a *LibrariesError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to say %q", err, w)
				}
			}
		})
	}
}
