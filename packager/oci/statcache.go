package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

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

// statVersion changes when the key's makeup or the layer format does.
const statVersion = "cortex-layer-stat-v1"

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
			var st fs.FileInfo
			var err error
			if f.Opened != nil {
				st, err = f.Opened.Stat()
			} else {
				st, err = os.Stat(f.Src)
			}
			if err != nil || !st.Mode().IsRegular() {
				return "", false
			}
			abs, err := filepath.Abs(f.Src)
			if err != nil {
				return "", false
			}
			fmt.Fprintf(h, "file %q %d %d %s\x00", abs, st.Size(), st.ModTime().UnixNano(), fileIdentity(st))
		}
	}
	return hex.EncodeToString(h.Sum(nil)), true
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
	return &blobLayer{path: blob, diffID: diffID, digest: digest, size: e.Size, compression: b.compression}, true
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
