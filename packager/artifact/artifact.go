// Package artifact is what building a function produces, held once: the
// function binary, its stages, models, shared libraries and runtime
// configuration, each a File. The outputs (packager/oci's image,
// packager/lambdazip's zip, packager/knative's Service) are written from
// an Artifact; none of them builds anything itself.
//
// It owns the one file type every output ships; it imports only the
// standard library and packager/spec, so every output package may import
// it.
package artifact

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/cortexfn/cortex/packager/spec"
)

// File is one file a function ships, or a directory of an image. Exactly
// one of Src and Data gives a regular file's bytes; a Dir has neither.
type File struct {
	// Path is slash-separated and relative: to the function's root
	// (/app in the image, /var/task in Lambda) in an Artifact, to the
	// image's root in a layer ("app/model/iris.onnx").
	Path string
	// Src is a file on disk, streamed when an output is written: it is
	// never read whole into memory.
	Src string
	// Opened, when set, is Src opened once when it was checked: outputs
	// read it (at offsets, so several may) and never open Src again, so a
	// path swapped after the check cannot change what ships. Src then only
	// names it.
	Opened *os.File
	// Data is the content of a small generated file.
	Data []byte
	// Mode is the permission bits (and sticky bit); 0 means 0644 for files
	// and 0755 for directories.
	Mode fs.FileMode
	// Dir marks a directory (image layers only).
	Dir bool
	// UID and GID own the entry in an image layer (0 unless set).
	UID, GID int
}

// Size returns the file's size: 0 for a directory, len(Data), or Src's
// size on disk. A Src that is not a regular file is an error.
func (f File) Size() (int64, error) {
	if f.Dir {
		return 0, nil
	}
	if f.Src == "" && f.Opened == nil {
		return int64(len(f.Data)), nil
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", f.Src)
	}
	return st.Size(), nil
}

// Stat describes the file on disk f names: Opened when f holds it open
// (what was checked is what is described), else Src.
func (f File) Stat() (fs.FileInfo, error) {
	if f.Opened != nil {
		return f.Opened.Stat()
	}
	return os.Stat(f.Src)
}

// Under returns files with dir (slash-separated) put before every Path.
func Under(dir string, files []File) []File {
	out := make([]File, len(files))
	for i, f := range files {
		f.Path = path.Join(dir, f.Path)
		out[i] = f
	}
	return out
}

// Artifact is a built function: everything its outputs ship, and what they
// need to know about it. Paths of its Files are relative to the function's
// root.
type Artifact struct {
	// Spec is the function's cortex.yaml.
	Spec *spec.Spec
	// Arch is the GOARCH the binary and libraries are built for.
	Arch string
	// Binary is the function executable; its Path is the function's name.
	Binary File
	// BinaryCached reports whether the binary came from the build cache.
	BinaryCached bool
	// Cgo reports whether the binary links C libraries (glibc): the image
	// then needs them in its base.
	Cgo bool
	// Runtime holds the shared libraries the binary loads
	// (lib/libonnxruntime.so.1), empty for a function that loads none.
	Runtime []File
	// Models holds predictor.model, or every model of a multi-model
	// function, each file once. A model named by reference is not among
	// them (ModelRefs).
	Models []File
	// ModelRefs are the models named by reference (oci://, https://,
	// s3://), which the function fetches when it starts instead of
	// shipping them.
	ModelRefs []ModelRef
	// Stages holds the WebAssembly stages (pre, post); StagePaths maps
	// the spec's field ("pre", "post") to its file's Path.
	Stages     []File
	StagePaths map[string]string
	// Config is the runtime configuration, cortex.json.
	Config File
	// SpecSHA256 is the hex digest of cortex.yaml as it was read.
	SpecSHA256 string
	// Created is the time every output records.
	Created time.Time
}

// ModelRef is a model named by reference.
type ModelRef struct {
	// Name is the model's name in a multi-model function, "" for
	// predictor.model.
	Name string
	// Ref is the reference as the spec writes it.
	Ref string
	// SHA256 is the hex digest the spec gives for it, or "".
	SHA256 string
}

// Close closes the files the build opened (File.Opened).
func (a *Artifact) Close() error {
	for _, group := range [][]File{a.Runtime, a.Models, a.Stages, {a.Binary, a.Config}} {
		for _, f := range group {
			if f.Opened != nil {
				f.Opened.Close()
			}
		}
	}
	return nil
}

// ONNXRuntime reports whether the function ships ONNX Runtime.
func (a *Artifact) ONNXRuntime() bool { return len(a.Runtime) > 0 }

// ModelSize is the models' size on disk.
func (a *Artifact) ModelSize() int64 {
	var n int64
	for _, f := range a.Models {
		if s, err := f.Size(); err == nil {
			n += s
		}
	}
	return n
}

// Copy writes f's bytes to w: Data, or Src streamed. A Src whose size is
// not size (it changed since it was measured) is an error, not a silently
// different output.
func (f File) Copy(w io.Writer, size int64) error {
	in, err := f.Open()
	if err != nil {
		return err
	}
	defer in.Close()
	n, err := io.Copy(w, io.LimitReader(in, size+1))
	if err != nil {
		return fmt.Errorf("reading %s: %w", f.Src, err)
	}
	if n != size {
		return fmt.Errorf("%s changed while it was being packaged (size %d, then %d)", f.Src, size, n)
	}
	return nil
}

// Open returns a reader of f's bytes from the start: Data, Opened (read at
// offsets, so it may be read again and concurrently) or Src.
func (f File) Open() (io.ReadSeekCloser, error) {
	switch {
	case f.Opened != nil:
		st, err := f.Opened.Stat()
		if err != nil {
			return nil, err
		}
		return nopCloser{io.NewSectionReader(f.Opened, 0, st.Size())}, nil
	case f.Src != "":
		return os.Open(f.Src)
	}
	return nopCloser{bytes.NewReader(f.Data)}, nil
}

type nopCloser struct{ io.ReadSeeker }

func (nopCloser) Close() error { return nil }

// Name is how messages name f: its source on disk, else its path.
func (f File) Name() string {
	if f.Src != "" {
		return f.Src
	}
	return f.Path
}
