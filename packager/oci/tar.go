package oci

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/cortexfn/cortex/packager/artifact"
)

// mode is f's tar mode: the permission and sticky bits, 0644 for a file
// and 0755 for a directory when unset.
func mode(f artifact.File) int64 {
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

// normalize cleans the paths, adds every missing parent directory and sorts
// the entries, which puts parents before their children (a parent's path is
// a prefix of its children's). Duplicate paths are an error.
func normalize(files []artifact.File) ([]artifact.File, error) {
	seen := map[string]bool{}
	var out []artifact.File
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
				out = append(out, artifact.File{Path: d, Dir: true})
			}
		}
	}
	slices.SortFunc(out, func(a, b artifact.File) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// writeTar writes files as a deterministic tar: the order of normalize,
// every time set to mtime, owners numeric only, no user or group names,
// regular files and directories only. A Src whose size changes while it is
// copied is an error, not a silently different layer. tee, when set, is
// asked for each regular file (by its index in files) for a writer that
// gets the file's bytes too, as they are copied into the tar; nil: none.
func writeTar(w io.Writer, files []artifact.File, mtime time.Time, tee func(i int) io.Writer) error {
	tw := tar.NewWriter(w)
	for i, f := range files {
		hdr := &tar.Header{
			Name:    f.Path,
			Mode:    mode(f),
			Uid:     f.UID,
			Gid:     f.GID,
			ModTime: mtime,
		}
		if f.Dir {
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		} else {
			hdr.Typeflag = tar.TypeReg
			n, err := f.Size()
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
		var to io.Writer = tw
		if tee != nil {
			if t := tee(i); t != nil {
				to = io.MultiWriter(tw, t)
			}
		}
		if err := f.Copy(to, hdr.Size); err != nil {
			return err
		}
	}
	return tw.Close()
}
