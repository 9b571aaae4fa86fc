package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cortexfn/cortex/internal/cachetrim"
	"github.com/cortexfn/cortex/packager/artifact"
)

// The stat cache: a layer's files known by what the file system says of
// them, so that a code-only change packages a multi-GB model without
// reading it (the diffID cache in layer.go still hashes every byte).
//
// The key is, for each file, its absolute path, size, modification time
// and, where the platform has them, device, inode and change time (as
// git's index does: ctime moves on every write and cannot be set back,
// so rewriting a file in place and restoring its mtime is still seen),
// plus everything else that shapes the layer (paths in the layer, modes,
// owners, the tar time, compression and level). A generated file (Data)
// is keyed by its content. What the key cannot see is a file changed
// within the timestamp granularity of the file system without a size
// change; --no-cache reads everything again. The blob the entry names is
// checked by size here and by digest where it goes: a push asks the
// registry (HEAD) for each blob's digest before uploading it, and a
// registry verifies the digest of what it receives.

// layersDir is the layer cache's directory under Options.CacheDir.
const layersDir = "layers"

// statVersion changes when the key's makeup, the layer format or what
// a build records beside the key (v2: the files' digests) does.
const statVersion = "cortex-layer-stat-v2"

// statKey returns the key of the normalized files built at level, and
// false when one of them cannot be described (it cannot be stat'ed).
func (b *layerBuilder) statKey(files []artifact.File, level Level) (string, bool) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00", statVersion, b.compression, level, b.mtime.UnixNano())
	for _, f := range files {
		fmt.Fprintf(h, "%q %o %d %d %t\x00", f.Path, mode(f), f.UID, f.GID, f.Dir)
		switch {
		case f.Dir:
		case f.Src == "" && f.Opened == nil:
			d := sha256.Sum256(f.Data)
			fmt.Fprintf(h, "data %x\x00", d)
		default:
			desc, ok := fileStat(f)
			if !ok {
				return "", false
			}
			fmt.Fprintf(h, "%s\x00", desc)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), true
}

// fileStat describes the file on disk f names (Src, or Opened) by what
// the file system says of it: its absolute path, size, modification time
// and fileIdentity. false: it cannot be stat'ed, or is not a regular file.
func fileStat(f artifact.File) (string, bool) {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return "", false
	}
	abs, err := filepath.Abs(f.Src)
	if err != nil {
		return "", false
	}
	return fmt.Sprintf("file %q %d %d %s", abs, st.Size(), st.ModTime().UnixNano(), fileIdentity(st)), true
}

// The stat cache records, beside each layer, the SHA-256 of each file the
// layer's build read (a model layer's single pass, see stream; other
// layers' hashing pass), keyed by fileStat as the layer is: FileDigest
// answers from there, so the SBOM (packager/sbom) names an unchanged
// model by its digest without reading it. The digests
// do not depend on how the layer is compressed: they are kept once, in
// the layer cache's "files" directory.

// fileKey is the name of f's digest record, and false when f has none (a
// generated file, or one that cannot be stat'ed).
func fileKey(f artifact.File) (string, bool) {
	if f.Dir || (f.Src == "" && f.Opened == nil) {
		return "", false
	}
	desc, ok := fileStat(f)
	if !ok {
		return "", false
	}
	h := sha256.Sum256([]byte(statVersion + "\x00" + desc))
	return hex.EncodeToString(h[:]), true
}

// fileEntry is the digest record of a file.
type fileEntry struct {
	SHA256 string `json:"sha256"`
}

// FileDigest returns the SHA-256 (hex) of the file f names, when a layer
// built with cacheDir (Options.CacheDir) read it as it is now: the same
// absolute path, size, modification time and, on Linux, device, inode
// and change time. The stat cache's limits are FileDigest's: see the
// package documentation. false: not known; read the file.
func FileDigest(cacheDir string, f artifact.File) (string, bool) {
	if cacheDir == "" {
		return "", false
	}
	key, ok := fileKey(f)
	if !ok {
		return "", false
	}
	path := filepath.Join(cacheDir, layersDir, "files", key+".json")
	m, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	var e fileEntry
	if json.Unmarshal(m, &e) != nil || len(e.SHA256) != 64 {
		return "", false
	}
	if _, err := hex.DecodeString(e.SHA256); err != nil {
		return "", false
	}
	cachePolicy.Touch(path, time.Now())
	return e.SHA256, true
}

// rememberFiles records the SHA-256 of files read while they were as
// keys says (fileKey, taken before they were read). A failure is
// ignored: the SBOM reads the file again, nothing worse.
func (b *layerBuilder) rememberFiles(keys, sums []string) {
	dir := filepath.Join(b.dir, "files")
	if os.MkdirAll(dir, 0o755) != nil {
		return
	}
	for i, key := range keys {
		if key == "" || sums[i] == "" {
			continue
		}
		m, _ := json.Marshal(fileEntry{SHA256: sums[i]})
		_ = writeFileAtomic(filepath.Join(dir, key+".json"), m)
	}
}

// statEntry is what the stat cache records for a key.
type statEntry struct {
	DiffID string `json:"diff_id"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// byStat returns the layer the stat cache has for key, when its blob is
// still in the cache with the size recorded.
func (b *layerBuilder) byStat(dir, key string) (*blobLayer, bool) {
	m, err := os.ReadFile(filepath.Join(dir, "stat", key+".json"))
	if err != nil {
		return nil, false
	}
	var e statEntry
	if json.Unmarshal(m, &e) != nil {
		return nil, false
	}
	diffID, err := v1.NewHash(e.DiffID)
	if err != nil {
		return nil, false
	}
	digest, err := v1.NewHash(e.Digest)
	if err != nil {
		return nil, false
	}
	blob := filepath.Join(dir, diffID.Hex+".blob")
	if st, err := os.Stat(blob); err != nil || st.Size() != e.Size {
		return nil, false
	}
	now := time.Now()
	cachePolicy.Touch(filepath.Join(dir, diffID.Hex+".json"), now) // the blob's entry
	cachePolicy.Touch(filepath.Join(dir, "stat", key+".json"), now)
	return &blobLayer{path: blob, diffID: diffID, digest: digest, size: e.Size, compression: b.compression}, true
}

// The layer cache is trimmed as the go command trims its build cache
// (internal/cachetrim): in each of its directories (a compression and
// level's blobs, their stat entries, the files' digests) entries unused
// for five days go, then the least recently used while the directory
// holds more than $CORTEX_PACKAGE_CACHE_MAX bytes (default 16 GiB). A
// hit marks the blob's entry used (cached, byStat); a trimmed entry only
// means that the next build reads and compresses again. Before it the
// layers grew by a copy of every model and runtime a build compressed.
var cachePolicy = cachetrim.Packaged()

// TrimCache trims the layer cache under cacheDir (Options.CacheDir). The
// packager calls it once a package is written, as the go command trims
// its cache on exit: every layer the package used has been marked used by
// then, so none of them goes while a build is about to read it.
func TrimCache(cacheDir string) {
	root := filepath.Join(cacheDir, layersDir)
	des, err := os.ReadDir(root)
	if err != nil {
		return
	}
	now := time.Now()
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		dir := filepath.Join(root, de.Name())
		cachePolicy.Trim(dir, now) // blobs, or the files' digests
		cachePolicy.Trim(filepath.Join(dir, "stat"), now)
	}
}

// remember records l under key. A failure is ignored: the next build
// reads the files again.
func (b *layerBuilder) remember(dir, key string, l *blobLayer) {
	if err := os.MkdirAll(filepath.Join(dir, "stat"), 0o755); err != nil {
		return
	}
	m, _ := json.Marshal(statEntry{DiffID: l.diffID.String(), Digest: l.digest.String(), Size: l.size})
	_ = writeFileAtomic(filepath.Join(dir, "stat", key+".json"), m)
}
