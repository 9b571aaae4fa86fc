package lambdazip

import (
	"bufio"
	"bytes"
	"debug/elf"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/cortexfn/cortex/packager/artifact"
)

// providedAL2023 is the runtime's published package list (its header
// names the sources): the only knowledge of Lambda's filesystem the
// packager has, since AWS cannot be asked from a build machine.
//
//go:embed provided-al2023-packages.txt
var providedAL2023 string

// System is what a Lambda runtime's own filesystem provides of the
// libraries a function may need: the versions of its glibc, libgcc and
// libstdc++ packages.
type System struct {
	// Runtime is the Lambda runtime ("provided.al2023") and Arch its
	// package architecture ("x86_64", "aarch64").
	Runtime, Arch string
	// Packages maps a package name to its version ("2.34-52.amzn2023.0.7").
	Packages map[string]string
}

// Provided returns provided.al2023's packages for a Go architecture
// (amd64, arm64), from its published package list.
func Provided(goarch string) (*System, error) {
	arch, ok := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[goarch]
	if !ok {
		return nil, fmt.Errorf("lambda has no %s runtime (only amd64 and arm64)", goarch)
	}
	return parseSystem(Runtime, arch, providedAL2023)
}

func parseSystem(runtime, arch, list string) (*System, error) {
	s := &System{Runtime: runtime, Arch: arch, Packages: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(list))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("%s package list, line %d: want ARCH PACKAGE VERSION, got %q", runtime, n, line)
		}
		if f[0] == arch {
			s.Packages[f[1]] = f[2]
		}
	}
	if len(s.Packages) == 0 {
		return nil, fmt.Errorf("the %s package list has nothing for %s", runtime, arch)
	}
	return s, nil
}

// Sonames of the libraries each package installs that a function may
// link: glibc's (with either architecture's loader), libgcc's and
// libstdc++'s. Their symbol versions are named by family (below).
var packageLibs = map[string][]string{
	"glibc": {"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1",
		"libresolv.so.2", "libutil.so.1", "libanl.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"},
	"libgcc":    {"libgcc_s.so.1"},
	"libstdc++": {"libstdc++.so.6"},
}

// stdcxx is the newest GLIBCXX_3.4.N and CXXABI_1.3.N each GCC major
// version's libstdc++ defines, from libstdc++'s ABI policy
// (https://gcc.gnu.org/onlinedocs/libstdc++/manual/abi.html, "Symbol
// versioning"; 13 is 13.1's). Only majors a runtime list may name are here.
var stdcxx = map[int]struct{ glibcxx, cxxabi int }{
	11: {29, 13},
	12: {30, 13},
	13: {31, 14},
	14: {33, 15},
}

// has reports whether the package pkg of the system defines the symbol
// version need ("GLIBC_2.28"), and what the package has, for messages.
// glibc's GLIBC_x.y and libgcc_s's GCC_x.y.z are named for the release
// that added them, so the package's own version bounds them; libstdc++'s
// are numbered and need the table above.
func (s *System) has(pkg, need string) (ok bool, have string) {
	v := upstream(s.Packages[pkg])
	switch {
	case pkg == "glibc":
		n, ok := strings.CutPrefix(need, "GLIBC_")
		return ok && isVersion(n) && !versionLess(v, n), "glibc " + v
	case pkg == "libgcc":
		n, ok := strings.CutPrefix(need, "GCC_")
		return ok && isVersion(n) && !versionLess(v, n), "libgcc " + v
	case pkg == "libstdc++":
		major, _ := strconv.Atoi(strings.Split(v, ".")[0])
		t, known := stdcxx[major]
		have = fmt.Sprintf("libstdc++ %s (GLIBCXX_3.4.%d, CXXABI_1.3.%d)", v, t.glibcxx, t.cxxabi)
		if !known {
			return false, "libstdc++ " + v + " (not in the GLIBCXX table)"
		}
		if need == "GLIBCXX_3.4" || need == "CXXABI_1.3" {
			return true, have
		}
		if n, ok := strings.CutPrefix(need, "GLIBCXX_3.4."); ok {
			return isVersion(n) && !versionLess(strconv.Itoa(t.glibcxx), n), have
		}
		if n, ok := strings.CutPrefix(need, "CXXABI_1.3."); ok {
			return isVersion(n) && !versionLess(strconv.Itoa(t.cxxabi), n), have
		}
		// The transactional-memory ABI has been in libstdc++ since GCC 4.7.
		return need == "CXXABI_TM_1", have
	}
	return false, pkg
}

// upstream is a package version without its epoch and release
// ("1:2.34-52.amzn2023" is "2.34").
func upstream(v string) string {
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	v, _, _ = strings.Cut(v, "-")
	return v
}

func isVersion(s string) bool {
	for _, p := range strings.Split(s, ".") {
		if _, err := strconv.Atoi(p); err != nil {
			return false
		}
	}
	return s != ""
}

// ErrLibraries is wrapped by a *LibrariesError.
var ErrLibraries = errors.New("lambdazip: a shared library the function needs is missing or too old on Lambda")

// LibrariesError lists what the zip's programs need and would not find
// on Lambda.
type LibrariesError struct {
	Runtime, Arch string
	Problems      []LibraryProblem
}

// LibraryProblem is one library, or one symbol version of it, that a
// file in the zip needs and neither the zip nor the runtime provides.
type LibraryProblem struct {
	// File is the zip entry that needs it ("lib/libonnxruntime.so.1").
	File string
	// Library is the soname ("libstdc++.so.6"); Need the symbol version
	// ("GLIBCXX_3.4.30"), empty when the library itself is missing.
	Library, Need string
	// Have says what would be loaded instead: the runtime's package and
	// version, or the zip's entry.
	Have string
}

func (p LibraryProblem) String() string {
	if p.Need == "" {
		return fmt.Sprintf("%s needs %s, which neither the zip nor the runtime has", p.File, p.Library)
	}
	return fmt.Sprintf("%s needs %s from %s, but %s has not got it", p.File, p.Need, p.Library, p.Have)
}

func (e *LibrariesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the Lambda zip will not load on %s (%s): ", e.Runtime, e.Arch)
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	var missing, old bool
	for _, p := range e.Problems {
		missing = missing || p.Need == "" || strings.HasPrefix(p.Have, "the zip's")
		old = old || (p.Need != "" && !strings.HasPrefix(p.Have, "the zip's"))
	}
	if old {
		// A newer copy in lib/ would not help: Lambda's LD_LIBRARY_PATH
		// finds the runtime's first (see CheckLibraries).
		fmt.Fprintf(&b, ". Lambda loads the runtime's own copy of a library it has, whatever the zip ships, so build against what %s has (glibc <= %s, GCC <= 11's libstdc++) or deploy the container image instead", e.Runtime, GLIBC)
	}
	if missing {
		b.WriteString(". Ship the missing libraries in lib/ with --lambda-libs DIR, built for glibc <= " + GLIBC)
	}
	return b.String()
}

func (e *LibrariesError) Unwrap() error { return ErrLibraries }

// CheckLibraries checks that every shared library the zip's programs need
// (bootstrap, and each library under lib/ that Lambda would load) is
// found on sys at a version that defines every symbol version they
// need, the way Lambda's dynamic loader finds it. It returns a
// *LibrariesError listing each that is not.
//
// Lambda sets LD_LIBRARY_PATH to /var/lang/lib:/lib64:/usr/lib64:
// /var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib, and the
// loader searches LD_LIBRARY_PATH before a library's DT_RUNPATH (ONNX
// Runtime's $ORIGIN): so a library the runtime has is always the
// runtime's copy, even when the zip ships one in lib/, and the zip's copy
// is loaded only for a library the runtime lacks. That is why the
// runtime's versions, not the shipped files, are checked for glibc,
// libgcc_s and libstdc++ whenever the runtime has them. (A DT_RPATH, which
// would come first, is not followed: none of what the packager ships has
// one.)
func CheckLibraries(files []artifact.File, sys *System) error {
	provided := map[string]string{} // soname → package
	for pkg := range sys.Packages {
		for _, so := range packageLibs[pkg] {
			provided[so] = pkg
		}
	}
	type object struct {
		path    string
		needs   []elf.DynamicVersionNeed
		libs    []string
		defines []string
	}
	shipped := map[string]*object{} // by zip path
	var roots []*object
	for _, f := range files {
		lib := path.Dir(f.Path) == "lib" && strings.Contains(path.Base(f.Path), ".so")
		if f.Path != "bootstrap" && !lib {
			continue
		}
		o := &object{path: f.Path}
		err := readELF(f, func(ef *elf.File) error {
			var err error
			if o.libs, err = ef.ImportedLibraries(); err != nil {
				return err
			}
			if ef.SectionByType(elf.SHT_GNU_VERSYM) == nil {
				return nil // no symbol versions to need or define
			}
			if o.needs, err = ef.DynamicVersionNeeds(); err != nil {
				return err
			}
			defs, _ := ef.DynamicVersions()
			for _, d := range defs {
				o.defines = append(o.defines, d.Name)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading %s for its libraries: %w", f.Path, err)
		}
		if lib {
			shipped[f.Path] = o
		}
		// The function binary is the root; ONNX Runtime is dlopened by
		// path, so a shipped library is a root too unless the runtime's
		// copy shadows it (see above).
		if _, shadowed := provided[path.Base(f.Path)]; f.Path == "bootstrap" || !shadowed {
			roots = append(roots, o)
		}
	}
	var problems []LibraryProblem
	seen := map[string]bool{}
	for len(roots) > 0 {
		o := roots[0]
		roots = roots[1:]
		if seen[o.path] {
			continue
		}
		seen[o.path] = true
		for _, so := range o.libs {
			vers := versionsNeeded(o.needs, so)
			if pkg, ok := provided[so]; ok {
				for _, v := range vers {
					if ok, have := sys.has(pkg, v); !ok {
						problems = append(problems, LibraryProblem{File: o.path, Library: so, Need: v, Have: sys.Runtime + "'s " + have})
					}
				}
				continue
			}
			// /var/task, then /var/task/lib (and $ORIGIN for a library
			// in lib/): the zip's root, then its lib/.
			dep := shipped[so]
			if dep == nil {
				dep = shipped["lib/"+so]
			}
			if dep == nil {
				problems = append(problems, LibraryProblem{File: o.path, Library: so})
				continue
			}
			for _, v := range vers {
				if !slices.Contains(dep.defines, v) {
					problems = append(problems, LibraryProblem{File: o.path, Library: so, Need: v, Have: "the zip's " + dep.path})
				}
			}
			roots = append(roots, dep)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return &LibrariesError{Runtime: sys.Runtime, Arch: sys.Arch, Problems: problems}
}

func versionsNeeded(needs []elf.DynamicVersionNeed, lib string) []string {
	var vs []string
	for _, n := range needs {
		if n.Name != lib {
			continue
		}
		for _, d := range n.Needs {
			vs = append(vs, d.Dep)
		}
	}
	slices.SortFunc(vs, compareVersionNames)
	return vs
}

// compareVersionNames orders "GLIBC_2.17" before "GLIBC_2.28", so
// messages list the oldest need first.
func compareVersionNames(a, b string) int {
	an, av, _ := strings.Cut(a, "_")
	bn, bv, _ := strings.Cut(b, "_")
	if c := strings.Compare(an, bn); c != 0 {
		return c
	}
	switch {
	case versionLess(av, bv):
		return -1
	case versionLess(bv, av):
		return 1
	}
	return strings.Compare(a, b)
}

// readELF opens f as an ELF file for fn; a file that is not ELF is an
// error (everything it is called for is a program or a library).
func readELF(f artifact.File, fn func(*elf.File) error) error {
	var r io.ReaderAt
	switch {
	case f.Opened != nil:
		r = f.Opened
	case f.Data != nil:
		r = bytes.NewReader(f.Data)
	default:
		src, err := os.Open(f.Src)
		if err != nil {
			return err
		}
		defer src.Close()
		r = src
	}
	ef, err := elf.NewFile(r)
	if err != nil {
		return err
	}
	return fn(ef)
}
