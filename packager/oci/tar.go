package oci

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// File is one entry of a layer (or of a zip: the packager builds both from
// the same list). Exactly one of Src and Data gives a regular file's bytes;
// a Dir has neither.
type File struct {
	// Path is the entry's path inside the image, slash-separated and
	// relative to the root ("app/model/iris.onnx").
	Path string
	// Src is a file on disk, streamed when the layer is written: it is
	// never read whole into memory.
	Src string
	// Data is the content of a small generated file.
	Data []byte
	// Mode is the permission bits (and sticky bit); 0 means 0644 for files
	// and 0755 for directories.
	Mode fs.FileMode
	// Dir marks a directory.
	Dir bool
	// UID and GID own the entry (0 unless set: a home directory for the
	// non-root user is the one exception).
	UID, GID int
}

func (f File) mode() int64 {
	m := f.Mode
	if m == 0 {
		m = 0o644
		if f.Dir {
			m = 0o755
		}
	}
	var bits int64 = int64(m.Perm())
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}

// size returns the file's size: len(Data), or Src's size on disk.
func (f File) size() (int64, error) {
	if f.Dir {
		return 0, nil
	}
	if f.Src == "" {
		return int64(len(f.Data)), nil
	}
	st, err := os.Stat(f.Src)
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", f.Src)
	}
	return st.Size(), nil
}

// normalize cleans the paths, adds every missing parent directory and sorts
// the entries, which puts parents before their children (a parent's path is
// a prefix of its children's). Duplicate paths are an error.
func normalize(files []File) ([]File, error) {
	seen := map[string]bool{}
	var out []File
	for _, f := range files {
		p := strings.TrimPrefix(path.Clean("/"+f.Path), "/")
		if p == "" || p == "." {
			return nil, fmt.Errorf("entry %q has no name", f.Path)
		}
		if seen[p] {
			return nil, fmt.Errorf("two entries for %s", p)
		}
		seen[p] = true
		f.Path = p
		out = append(out, f)
	}
	for _, f := range slices.Clone(out) {
		for d := path.Dir(f.Path); d != "." && d != "/"; d = path.Dir(d) {
			if !seen[d] {
				seen[d] = true
				out = append(out, File{Path: d, Dir: true})
			}
		}
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// writeTar writes files as a deterministic tar: the order of normalize,
// every time set to mtime, owners numeric only, no user or group names,
// regular files and directories only. A Src whose size changes while it is
// copied is an error, not a silently different layer.
func writeTar(w io.Writer, files []File, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		hdr := &tar.Header{
			Name:    f.Path,
			Mode:    f.mode(),
			Uid:     f.UID,
			Gid:     f.GID,
			ModTime: mtime,
		}
		if f.Dir {
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		} else {
			hdr.Typeflag = tar.TypeReg
			n, err := f.size()
			if err != nil {
				return err
			}
			hdr.Size = n
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
		if f.Dir {
			continue
		}
		if f.Src == "" {
			if _, err := tw.Write(f.Data); err != nil {
				return err
			}
			continue
		}
		if err := copyFile(tw, f.Src, hdr.Size); err != nil {
			return err
		}
	}
	return tw.Close()
}

func copyFile(w io.Writer, src string, size int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	n, err := io.Copy(w, io.LimitReader(in, size+1))
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	if n != size {
		return fmt.Errorf("%s changed while it was being packaged (size %d, then %d)", src, size, n)
	}
	return nil
}
