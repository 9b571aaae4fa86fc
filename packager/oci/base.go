package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/dpkg"
)

// NonRootUID is the user (and group) a function runs as: distroless's
// "nonroot", so files and policies written for distroless images fit.
const NonRootUID = 65532

// caBundles are where distributions keep the CA certificate bundle; the
// first found is shipped at /etc/ssl/certs/ca-certificates.crt, where Go
// and OpenSSL look.
var caBundles = []string{
	"/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine
	"/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL, Amazon Linux
	"/etc/ssl/cert.pem",                  // macOS, BSDs
}

// cLibraries are what a cgo binary and libonnxruntime.so.1 load (ldd):
// glibc's pieces, the C++ runtime and libgcc_s.
var cLibraries = []string{
	"libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0",
	"libstdc++.so.6", "libgcc_s.so.1",
}

// loaders is the dynamic loader each architecture's binaries name in
// PT_INTERP.
var loaders = map[string]string{
	"amd64": "/lib64/ld-linux-x86-64.so.2",
	"arm64": "/lib/ld-linux-aarch64.so.1",
}

var libDirs = map[string][]string{
	"amd64": {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"},
	"arm64": {"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64"},
}

// BaseInfo describes the base an image was built on.
type BaseInfo struct {
	// Ref is the base image reference, or "builtin" / "builtin-cc".
	Ref string `json:"ref"`
	// Packages lists where the built-in base's files came from, with
	// versions ("libc6=2.36-9+deb12u14"), when the build machine's package
	// manager knows them. The CA bundle is generated rather than owned by
	// a package: ca-certificates, which generates it, stands for it.
	Packages []string `json:"packages,omitempty"`
	// Files lists the built-in base's files that no package accounts for
	// exactly, by their path on the build machine and their digest
	// ("/etc/ssl/certs/ca-certificates.crt@sha256:..."): the CA bundle,
	// whose content depends on the machine's configuration, and every file
	// on a machine without dpkg.
	Files []string `json:"files,omitempty"`
	// CUDA reports whether the base carries CUDA (it sets CUDA_VERSION, as
	// the nvidia/cuda images do).
	CUDA bool `json:"cuda"`
}

// builtinBase returns the files of the built-in base: a scratch-like root
// with /etc/passwd and /etc/group naming uid 65532, CA certificates, /tmp
// and a home directory; with cc, also the build machine's glibc, loader,
// libstdc++ and libgcc_s, placed where they are on the build machine so its
// loader finds them (an ONNX function is a cgo binary that loads ONNX
// Runtime, a C++ library).
func builtinBase(arch string, cc bool, ns noteSink) ([]artifact.File, BaseInfo, error) {
	info := BaseInfo{Ref: "builtin"}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRootUID, NonRootUID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRootUID)
	files := []artifact.File{
		{Path: "etc/passwd", Data: []byte(passwd)},
		{Path: "etc/group", Data: []byte(group)},
		{Path: "tmp", Dir: true, Mode: 0o777 | os.ModeSticky},
		{Path: "home/nonroot", Dir: true, Mode: 0o755, UID: NonRootUID, GID: NonRootUID},
	}
	var hostFiles []string
	ca := ""
	for _, p := range caBundles {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			ca = p
			break
		}
	}
	if ca == "" {
		return nil, info, fmt.Errorf("no CA certificate bundle on this machine (looked at %s): install the ca-certificates package, or give a base image", strings.Join(caBundles, ", "))
	}
	files = append(files, artifact.File{Path: "etc/ssl/certs/ca-certificates.crt", Src: ca})
	hostFiles = append(hostFiles, ca)

	if cc && arch != hostArch() {
		info.Ref = "builtin-cc"
		libs, err := crossLibraries(arch)
		if err != nil {
			return nil, info, err
		}
		for _, l := range libs {
			files = append(files, l)
			hostFiles = append(hostFiles, l.Src)
		}
	} else if cc {
		info.Ref = "builtin-cc"
		loader := loaders[arch]
		real, err := filepath.EvalSymlinks(loader)
		if err != nil {
			return nil, info, fmt.Errorf("the dynamic loader %s is not on this machine: give a base image with glibc: %w", loader, err)
		}
		files = append(files, artifact.File{Path: loader, Src: real, Mode: 0o755})
		hostFiles = append(hostFiles, real)
		for _, lib := range cLibraries {
			dir, real, err := findLibrary(lib, libDirs[arch])
			if err != nil {
				return nil, info, err
			}
			files = append(files, artifact.File{Path: filepath.ToSlash(filepath.Join(dir, lib)), Src: real, Mode: 0o755})
			hostFiles = append(hostFiles, real)
		}
	}
	pkgs, unowned, haveDpkg := packagesOf(hostFiles)
	info.Packages = pkgs
	if !haveDpkg {
		unowned = hostFiles
		if ns != nil {
			ns("the built-in base's files come from this machine, which has no dpkg-query to name their packages: they are recorded by sha256 instead")
		}
	}
	for _, f := range unowned {
		sum, err := fileDigest(f)
		if err != nil {
			return nil, info, err
		}
		info.Files = append(info.Files, f+"@"+sum)
	}
	return files, info, nil
}

// crossPackages are the Debian packages that carry another architecture's
// glibc, libstdc++ and libgcc_s for cross builds (installed under
// /usr/TRIPLET/lib, where no loader of that architecture looks).
var crossPackages = map[string][]string{
	"arm64": {"libc6-arm64-cross", "libstdc++6-arm64-cross", "libgcc-s1-arm64-cross"},
	"amd64": {"libc6-amd64-cross", "libstdc++6-amd64-cross", "libgcc-s1-amd64-cross"},
}

// crossLibraries returns the loader and cLibraries of arch from the Debian
// cross packages installed on this machine (found through dpkg, so their
// versions are the ones recorded), placed where arch's own loader looks:
// the loader at its PT_INTERP path, the libraries in the first of
// libDirs[arch].
func crossLibraries(arch string) ([]artifact.File, error) {
	pkgs := crossPackages[arch]
	install := "apt-get install " + strings.Join(pkgs, " ")
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("the built-in base for a cgo (onnx) function cannot be built for linux/%s on a %s machine: give a base image that carries glibc, libstdc++ and libgcc_s for linux/%s", arch, hostArch(), arch)
	}
	byName := map[string]string{}
	for _, p := range pkgs {
		files, err := dpkg.Files(p)
		if err != nil {
			return nil, fmt.Errorf("the built-in base for a cgo (onnx) function built for linux/%s on a %s machine is assembled from Debian's %s cross packages, and %w: install them with `%s` (`make tools` in a cortex checkout does), or give a base image for linux/%s (--base)", arch, hostArch(), arch, err, install, arch)
		}
		for _, f := range files {
			if _, seen := byName[filepath.Base(f)]; !seen {
				byName[filepath.Base(f)] = f
			}
		}
	}
	loader := loaders[arch]
	var out []artifact.File
	for _, lib := range append([]string{filepath.Base(loader)}, cLibraries...) {
		p, ok := byName[lib]
		if !ok {
			return nil, fmt.Errorf("%s is not in Debian's %s cross packages (%s) installed on this machine: reinstall them with `%s`, or give a base image for linux/%s (--base)", lib, arch, strings.Join(pkgs, ", "), install, arch)
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, fmt.Errorf("%s of Debian's %s cross packages: %w: reinstall them with `%s`", lib, arch, err, install)
		}
		dest := filepath.ToSlash(filepath.Join(libDirs[arch][0], lib))
		if lib == filepath.Base(loader) {
			dest = loader
		}
		out = append(out, artifact.File{Path: dest, Src: real, Mode: 0o755})
	}
	return out, nil
}

// CrossLibrary returns where lib (a file name, "libstdc++.so.6") of
// Debian's cross packages for arch is on this machine, or "" when they are
// not installed or do not have it.
func CrossLibrary(arch, lib string) string {
	for _, p := range crossPackages[arch] {
		files, err := dpkg.Files(p)
		if err != nil {
			continue
		}
		for _, f := range files {
			if filepath.Base(f) == lib {
				return f
			}
		}
	}
	return ""
}

// fileDigest returns "sha256:HEX" of the file at path.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

type noteSink func(string)

func findLibrary(lib string, dirs []string) (dir, real string, err error) {
	for _, d := range dirs {
		p := filepath.Join(d, lib)
		if r, err := filepath.EvalSymlinks(p); err == nil {
			if st, err := os.Stat(r); err == nil && st.Mode().IsRegular() {
				return d, r, nil
			}
		}
	}
	return "", "", fmt.Errorf("%s is not on this machine (looked in %s): install it (Debian: libc6, libstdc++6, libgcc-s1) or give a base image that carries it", lib, strings.Join(dirs, ", "))
}

// packagesOf asks dpkg which package owns each file and at which version
// (packager/dpkg). It returns the packages ("libc6=2.36-9+deb12u14") and
// the files no package owns; haveDpkg is false when there is no
// dpkg-query to ask.
func packagesOf(files []string) (pkgs, unowned []string, haveDpkg bool) {
	names, unowned, ok := dpkg.Owners(files)
	if !ok {
		return nil, nil, false
	}
	if slices.Contains(unowned, caBundles[0]) {
		names = append(names, "ca-certificates") // Debian's bundle is generated by this package, not owned by it
	}
	for _, p := range dpkg.Versions(names) {
		pkgs = append(pkgs, p.String())
	}
	return pkgs, unowned, true
}

// loadBase reads a base image: "oci:DIR[:TAG]" or a directory holding an
// OCI layout reads it from disk; anything else is a registry reference,
// pulled with the user's credentials (the docker config and credential
// helpers, authn.DefaultKeychain). An index resolves to linux/arch.
func loadBase(ref, arch string, ropts []remote.Option) (v1.Image, error) {
	platform := v1.Platform{OS: "linux", Architecture: arch}
	dir, tag, isLayout := strings.Cut(strings.TrimPrefix(ref, "oci:"), ":")
	if !strings.HasPrefix(ref, "oci:") {
		isLayout = false
		if st, err := os.Stat(filepath.Join(ref, "oci-layout")); err == nil && st.Mode().IsRegular() {
			dir, tag, isLayout = ref, "", true
		}
	} else {
		isLayout = true
	}
	if isLayout {
		idx, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			return nil, fmt.Errorf("reading base image layout %s: %w", dir, err)
		}
		return pickFromIndex(idx, tag, platform)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("base image %q: %w", ref, err)
	}
	opts := append([]remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithPlatform(platform)}, ropts...)
	img, err := remote.Image(r, opts...)
	if err != nil {
		return nil, fmt.Errorf("pulling base image %s: %w", ref, err)
	}
	return img, nil
}

func pickFromIndex(idx v1.ImageIndex, tag string, platform v1.Platform) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var cands []v1.Descriptor
	for _, d := range m.Manifests {
		if tag == "" || d.Annotations["org.opencontainers.image.ref.name"] == tag {
			cands = append(cands, d)
		}
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("no image tagged %q in the base image layout", tag)
	}
	for _, d := range cands {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			if img, err := pickFromIndex(child, "", platform); err == nil {
				return img, nil
			}
		case d.MediaType.IsImage():
			if d.Platform != nil && !d.Platform.Satisfies(platform) {
				continue
			}
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, err
			}
			cf, err := img.ConfigFile()
			if err != nil {
				return nil, err
			}
			if cf.OS != "" && (cf.OS != platform.OS || cf.Architecture != platform.Architecture) {
				continue
			}
			return img, nil
		}
	}
	return nil, errors.New("no linux/" + platform.Architecture + " image in the base image layout")
}

// ociLayer presents a Docker-typed base layer as its OCI equivalent (same
// bytes: a gzipped tar), so the whole image is one consistent OCI image.
type ociLayer struct{ v1.Layer }

func (l ociLayer) MediaType() (types.MediaType, error) {
	mt, err := l.Layer.MediaType()
	if err != nil {
		return "", err
	}
	switch mt {
	case types.DockerLayer:
		return types.OCILayer, nil
	case types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer, nil
	case types.DockerForeignLayer:
		return types.OCIRestrictedLayer, nil
	}
	return mt, nil
}
