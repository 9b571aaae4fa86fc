package packager

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/build"
	"github.com/cortexfn/cortex/packager/lambdazip"
	"github.com/cortexfn/cortex/packager/oci"
	"github.com/cortexfn/cortex/packager/onnxruntime"
	"github.com/cortexfn/cortex/packager/spec"
	"google.golang.org/protobuf/encoding/protowire"
)

// ErrHardLink: a file to ship has hard links outside the function
// directory (Options.AllowHardlinks ships it anyway).
var ErrHardLink = errors.New("packager: hard-linked from outside the function directory")

// dirFiles opens the files a function ships through an os.Root over its
// directory, so that a file swapped for a symbolic link to the outside
// after it was checked cannot be opened: each file is opened once, and the
// outputs write what was opened (artifact.File.Opened). Close closes them.
type dirFiles struct {
	dir, real      string
	root           *os.Root
	allowHardlinks bool
	// inodes counts the links to each inode within the directory, made
	// on the first file with more than one link.
	inodes map[inode]uint64
	opened []*os.File
}

func openDir(dir string, allowHardlinks bool) (*dirFiles, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("function directory %s: %w", dir, err)
	}
	root, err := os.OpenRoot(real)
	if err != nil {
		return nil, fmt.Errorf("function directory %s: %w", dir, err)
	}
	return &dirFiles{dir: dir, real: real, root: root, allowHardlinks: allowHardlinks}, nil
}

// close closes the root, and every file opened unless keep: the files of
// a built artifact stay open until the artifact is closed.
func (d *dirFiles) close(keep bool) {
	if !keep {
		for _, f := range d.opened {
			f.Close()
		}
	}
	d.opened = nil
	d.root.Close()
}

// open opens real (a resolved path inside the directory) through the root
// and checks what was opened: a regular file, with no hard link outside
// the directory.
func (d *dirFiles) open(field, relPath, real string) (*os.File, error) {
	rel, err := filepath.Rel(d.real, real)
	if err != nil {
		return nil, err
	}
	f, err := d.root.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", field, relPath, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s: %s is not a regular file (%s)", field, relPath, st.Mode().Type())
	}
	if err == nil {
		err = d.checkLinks(field, relPath, st)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	d.opened = append(d.opened, f)
	return f, nil
}

// checkLinks refuses a file whose link count says some of its names live
// outside the directory: a hard link carries the outside file's bytes
// past every path check.
func (d *dirFiles) checkLinks(field, relPath string, st fs.FileInfo) error {
	id, links, ok := fileInode(st)
	if !ok || links <= 1 || d.allowHardlinks {
		return nil
	}
	if d.inodes == nil {
		d.inodes = map[inode]uint64{}
		fs.WalkDir(d.root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return nil
			}
			if info, err := e.Info(); err == nil {
				if id, _, ok := fileInode(info); ok {
					d.inodes[id]++
				}
			}
			return nil
		})
	}
	if inside := d.inodes[id]; inside < links {
		return fmt.Errorf("%s: %s has %d hard links and only %d of them are in the function directory: %w; copy the file in (cp, not ln) or pass --allow-hardlinks",
			field, relPath, links, inside, ErrHardLink)
	}
	return nil
}

// collect lists the regular files at rel (a file or a directory) under
// the function directory d. Nothing may lead outside it: not rel itself,
// nor a symbolic link anywhere below it, nor a hard link. A symbolic link
// to a file inside ships as a copy of that file (layers and zips hold
// regular files only). Each file is opened here, once.
func (d *dirFiles) collect(field, rel string) ([]artifact.File, error) {
	root := d.dir
	clean := filepath.Clean(filepath.FromSlash(rel))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%s: %q: %w; copy it into the function directory", field, rel, ErrOutsideDir)
	}
	realRoot := d.real
	inside := func(p string) bool {
		r, err := filepath.Rel(realRoot, p)
		return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator))
	}
	top := filepath.Join(root, clean)
	if _, err := os.Lstat(top); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", field, rel, err)
	}
	var out []artifact.File
	add := func(relPath, p string) error {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return fmt.Errorf("%s: %s is a broken symbolic link", field, relPath)
		}
		if !inside(real) {
			return fmt.Errorf("%s: %s is a symbolic link to %s: %w; copy the file in instead", field, relPath, real, ErrOutsideDir)
		}
		st, err := os.Stat(real)
		if err != nil {
			return err
		}
		switch {
		case st.Mode().IsRegular():
			f, err := d.open(field, relPath, real)
			if err != nil {
				return err
			}
			mode := fs.FileMode(0o644)
			if st.Mode().Perm()&0o111 != 0 {
				mode = 0o755
			}
			out = append(out, artifact.File{Path: relPath, Src: real, Opened: f, Mode: mode})
			return nil
		case st.IsDir():
			return fmt.Errorf("%s: %s is a symbolic link to a directory; cortex ships regular files only: copy the directory in", field, relPath)
		}
		return fmt.Errorf("%s: %s is not a regular file (%s)", field, relPath, st.Mode().Type())
	}
	st, err := os.Stat(top)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", field, rel, err)
	}
	if !st.IsDir() {
		if err := add(filepath.ToSlash(clean), top); err != nil {
			return nil, err
		}
		return out, d.externalData(field, &out, add)
	}
	realTop, err := filepath.EvalSymlinks(top)
	if err != nil {
		return nil, err
	}
	if !inside(realTop) {
		return nil, fmt.Errorf("%s: %s leads to %s: %w", field, rel, realTop, ErrOutsideDir)
	}
	err = filepath.WalkDir(realTop, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		r, err := filepath.Rel(realTop, p)
		if err != nil {
			return err
		}
		return add(path.Join(filepath.ToSlash(clean), filepath.ToSlash(r)), p)
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %s is an empty directory", field, rel)
	}
	return out, d.externalData(field, &out, add)
}

// externalData adds to out the external data files its ONNX models name
// (see onnxExternalData), each once, through add (which checks and opens
// it like any shipped file). A location that leads out of the model's
// directory, or names no file, is an error naming the model, the tensor
// and the file.
func (d *dirFiles) externalData(field string, out *[]artifact.File, add func(relPath, p string) error) error {
	have := map[string]artifact.File{}
	for _, f := range *out {
		have[f.Path] = f
	}
	for _, m := range slices.Clone(*out) {
		// A .onnx file that does not parse ships as it is, as before
		// external data was looked for: the runtime says what is wrong
		// with it when it loads it, and a Go predictor may name its
		// own files .onnx.
		refs, _ := modelExternalData(m)
		for _, ref := range refs {
			if !filepath.IsLocal(filepath.FromSlash(ref.Location)) || strings.Contains(ref.Location, `\`) {
				return fmt.Errorf("%s: %s: tensor %q names external data %q, which is not a path inside the model's directory: ONNX Runtime reads external data from beside the model; move the file there and name it relative to the model (onnx.save_model(..., location=\"NAME.data\"))",
					field, m.Path, ref.Tensor, ref.Location)
			}
			relPath := path.Join(path.Dir(m.Path), ref.Location)
			f, ok := have[relPath]
			if !ok {
				p := filepath.Join(d.dir, filepath.FromSlash(relPath))
				if _, err := os.Lstat(p); err != nil {
					return fmt.Errorf("%s: %s: tensor %q names external data %q, which is not there (%s): copy the model's .data files beside it", field, m.Path, ref.Tensor, ref.Location, relPath)
				}
				if err := add(relPath, p); err != nil {
					return fmt.Errorf("%s: external data of tensor %q: %w", m.Path, ref.Tensor, err)
				}
				f = (*out)[len(*out)-1]
				have[relPath] = f
			}
			if size, err := f.Size(); err == nil && ref.Length >= 0 && ref.Offset+ref.Length > size {
				return fmt.Errorf("%s: %s: tensor %q needs bytes %d to %d of %s, which has %d: the data file does not belong to this model, or is truncated",
					field, m.Path, ref.Tensor, ref.Offset, ref.Offset+ref.Length, relPath, size)
			}
		}
	}
	return nil
}

// modelExternalData returns the external data the file f names when it
// is an ONNX model (.onnx), else nothing.
func modelExternalData(f artifact.File) ([]externalRef, error) {
	if !strings.EqualFold(path.Ext(f.Path), ".onnx") {
		return nil, nil
	}
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	var ra io.ReaderAt
	switch {
	case f.Opened != nil:
		ra = f.Opened
	case f.Src != "":
		o, err := os.Open(f.Src)
		if err != nil {
			return nil, err
		}
		defer o.Close()
		ra = o
	default:
		ra = bytes.NewReader(f.Data)
	}
	return onnxExternalData(ra, size)
}

// splitModels parts models into the ONNX graphs and other model files,
// and the external data the graphs name: the image ships the data in a
// layer of its own (the bulk of a model over 2 GB), apart from the graph.
func splitModels(models []artifact.File) (graphs, data []artifact.File) {
	named := externalDataPaths(models)
	for _, m := range models {
		if named[m.Path] {
			data = append(data, m)
		} else {
			graphs = append(graphs, m)
		}
	}
	return graphs, data
}

// externalDataPaths returns the Paths of the files among models that the
// ONNX models among them name as external data: they go into the image in
// a layer of their own, apart from the models' graphs.
func externalDataPaths(models []artifact.File) map[string]bool {
	data := map[string]bool{}
	for _, m := range models {
		refs, _ := modelExternalData(m) // as in externalData
		for _, ref := range refs {
			data[path.Join(path.Dir(m.Path), ref.Location)] = true
		}
	}
	return data
}

// ErrNoONNXRuntime: the ONNX Runtime library to ship was not found.
var ErrNoONNXRuntime = errors.New("packager: ONNX Runtime library not found")

// findONNXRuntime returns the libonnxruntime.so.1 to ship for arch:
// explicit, else $CORTEX_ONNXRUNTIME_LIB (for the host's architecture),
// else the one in the cache (Options.CacheDir, then the default cache),
// fetched into the cache first when neither has it.
func findONNXRuntime(ctx context.Context, explicit, cache, arch string, progress io.Writer) (string, error) {
	if explicit != "" {
		if st, err := os.Stat(explicit); err != nil || !st.Mode().IsRegular() {
			return "", fmt.Errorf("%w: --onnxruntime %s is not a file", ErrNoONNXRuntime, explicit)
		}
		return explicit, nil
	}
	if p := os.Getenv(onnxruntime.LibraryEnv); p != "" && arch == goruntime.GOARCH {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	root, err := build.CacheRoot(cache)
	if err != nil {
		return "", err
	}
	if def, err := build.CacheRoot(""); err == nil && def != root {
		if p := onnxruntime.Path(def, arch); fileExists(p) {
			return p, nil
		}
	}
	p, err := onnxruntime.Ensure(ctx, root, arch, progress)
	if err != nil {
		return "", fmt.Errorf("%w for linux/%s: %w", ErrNoONNXRuntime, arch, err)
	}
	return p, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// lambdaLibs returns the C++ runtime libraries an ONNX function ships in
// its zip's lib/ (ONNX Runtime's RUNPATH is $ORIGIN, so it finds them
// there), and warnings when they cannot be shipped.
func lambdaLibs(dir, arch string) ([]artifact.File, []string) {
	libs := []string{"libstdc++.so.6", "libgcc_s.so.1"}
	var files []artifact.File
	var warnings []string
	for _, lib := range libs {
		var p string
		if dir != "" {
			p = filepath.Join(dir, lib)
		} else {
			if arch != goruntime.GOARCH {
				// Debian's cross packages of arch (the built-in base's).
				p = oci.CrossLibrary(arch, lib)
				if p == "" {
					warnings = append(warnings, fmt.Sprintf("the Lambda zip has no %s: this machine's is not %s and Debian's %s cross packages are not installed; give --lambda-libs DIR with copies built for Lambda (Amazon Linux 2023's libstdc++ and libgcc packages)", lib, arch, arch))
					continue
				}
			}
			for _, d := range []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64"} {
				if p != "" {
					break
				}
				if _, err := os.Stat(filepath.Join(d, lib)); err == nil {
					p = filepath.Join(d, lib)
				}
			}
		}
		real, err := filepath.EvalSymlinks(p)
		if p == "" || err != nil {
			warnings = append(warnings, fmt.Sprintf("the Lambda zip has no %s: not found%s; give --lambda-libs DIR", lib, map[bool]string{true: " in " + dir, false: " on this machine"}[dir != ""]))
			continue
		}
		_, newer, err := lambdazip.NewerThanLambda(real)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("the Lambda zip has no %s: %v", lib, err))
			continue
		}
		if newer {
			// It could not load on Lambda (it needs a newer glibc), and
			// need not: the runtime's own copy comes first on Lambda's
			// library path. lambdazip.CheckLibraries (writeLambda) checks
			// that the runtime's copy has every version the zip's files
			// need, and warns when it has not.
			continue
		}
		files = append(files, artifact.File{Path: "lib/" + lib, Src: real, Mode: 0o755})
	}
	return files, warnings
}

// oipMetadata is the Open Inference Protocol model metadata a client can
// read from the image before it runs (GET /v2/models/NAME answers the
// same at run time, with the tensors).
func oipMetadata(s *spec.Spec) string {
	md := map[string]any{"name": s.Name, "versions": []string{"1"}}
	switch s.Predictor.Type {
	case spec.TypeONNX:
		md["platform"] = "onnxruntime_onnx"
	case spec.TypeGo:
		md["platform"] = "cortex_go"
	}
	b, err := json.Marshal(md)
	if err != nil {
		return ""
	}
	return string(b)
}

// ONNX external data (models over protobuf's 2 GB limit): a tensor whose
// TensorProto.data_location is EXTERNAL keeps its bytes in another file,
// named by its external_data entry "location" relative to the model's
// directory (with "offset" and "length" within it). ONNX Runtime reads
// them from beside the model's path, so they ship with the model, at the
// same place relative to it.
//
// The model is walked with google.golang.org/protobuf/encoding/protowire
// (the wire format only: no ONNX Go bindings are needed to find a few
// fields) over a buffered reader that seeks past what it does not need, so
// a 2 GB model with its weights inside costs a few reads, not 2 GB of
// memory. The tensors looked at are the ones onnx.external_data_helper
// writes out: the graph's initializers and sparse initializers, and the
// tensors in node attributes, in subgraphs too.

// ONNX field numbers (onnx/onnx.proto3).
const (
	onnxModelGraph = 7 // ModelProto.graph

	onnxGraphNode              = 1  // GraphProto.node
	onnxGraphInitializer       = 5  // GraphProto.initializer
	onnxGraphSparseInitializer = 15 // GraphProto.sparse_initializer

	onnxNodeAttribute = 5 // NodeProto.attribute

	onnxAttrT             = 5  // AttributeProto.t
	onnxAttrG             = 6  // AttributeProto.g
	onnxAttrTensors       = 10 // AttributeProto.tensors
	onnxAttrGraphs        = 11 // AttributeProto.graphs
	onnxAttrSparseTensor  = 22 // AttributeProto.sparse_tensor
	onnxAttrSparseTensors = 23 // AttributeProto.sparse_tensors

	onnxSparseValues  = 1 // SparseTensorProto.values
	onnxSparseIndices = 2 // SparseTensorProto.indices

	onnxTensorName         = 8  // TensorProto.name
	onnxTensorExternalData = 13 // TensorProto.external_data
	onnxTensorDataLocation = 14 // TensorProto.data_location
	onnxLocationExternal   = 1  // TensorProto.DataLocation.EXTERNAL

	onnxEntryKey   = 1 // StringStringEntryProto.key
	onnxEntryValue = 2 // StringStringEntryProto.value
)

// externalRef is one tensor's external data.
type externalRef struct {
	Tensor   string
	Location string
	// Offset and Length locate the bytes in the file; Length -1 means to
	// the end of the file.
	Offset, Length int64
}

// onnxExternalData returns the external data the ONNX model in r (size
// bytes) names, in the order found.
func onnxExternalData(r io.ReaderAt, size int64) ([]externalRef, error) {
	w := &wireReader{ra: r, size: size}
	w.seek(0)
	var refs []externalRef
	var graph, node, attr, sparse func(end int64) error
	tensor := func(end int64) error {
		ref := externalRef{Length: -1}
		external := false
		err := w.fields(end, func(num protowire.Number, typ protowire.Type, v uint64, end int64) error {
			switch {
			case num == onnxTensorName && typ == protowire.BytesType:
				b, err := w.bytes(end, 1<<20)
				ref.Tensor = string(b)
				return err
			case num == onnxTensorDataLocation && typ == protowire.VarintType:
				external = v == onnxLocationExternal
			case num == onnxTensorExternalData && typ == protowire.BytesType:
				b, err := w.bytes(end, 1<<20)
				if err != nil {
					return err
				}
				return entry(b, &ref)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if external {
			refs = append(refs, ref)
		}
		return nil
	}
	sparse = func(end int64) error {
		return w.fields(end, func(num protowire.Number, typ protowire.Type, _ uint64, end int64) error {
			if typ != protowire.BytesType {
				return nil
			}
			if num == onnxSparseValues || num == onnxSparseIndices {
				return tensor(end)
			}
			return nil
		})
	}
	attr = func(end int64) error {
		return w.fields(end, func(num protowire.Number, typ protowire.Type, _ uint64, end int64) error {
			if typ != protowire.BytesType {
				return nil
			}
			switch num {
			case onnxAttrT, onnxAttrTensors:
				return tensor(end)
			case onnxAttrG, onnxAttrGraphs:
				return graph(end)
			case onnxAttrSparseTensor, onnxAttrSparseTensors:
				return sparse(end)
			}
			return nil
		})
	}
	node = func(end int64) error {
		return w.fields(end, func(num protowire.Number, typ protowire.Type, _ uint64, end int64) error {
			if typ != protowire.BytesType {
				return nil
			}
			if num == onnxNodeAttribute {
				return attr(end)
			}
			return nil
		})
	}
	graph = func(end int64) error {
		w.depth++
		defer func() { w.depth-- }()
		if w.depth > 64 {
			return errors.New("subgraphs nested more than 64 deep")
		}
		return w.fields(end, func(num protowire.Number, typ protowire.Type, _ uint64, end int64) error {
			if typ != protowire.BytesType {
				return nil
			}
			switch num {
			case onnxGraphInitializer:
				return tensor(end)
			case onnxGraphSparseInitializer:
				return sparse(end)
			case onnxGraphNode:
				return node(end)
			}
			return nil
		})
	}
	found := false
	err := w.fields(size, func(num protowire.Number, typ protowire.Type, _ uint64, end int64) error {
		if typ != protowire.BytesType {
			return nil
		}
		if num != onnxModelGraph {
			return nil
		}
		found = true
		return graph(end)
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errors.New("the file has no graph: is it an ONNX model?")
	}
	return refs, nil
}

// entry reads one StringStringEntryProto of a tensor's external_data.
func entry(b []byte, ref *externalRef) error {
	var key, value string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.BytesType && (num == onnxEntryKey || num == onnxEntryValue) {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if num == onnxEntryKey {
				key = string(v)
			} else {
				value = string(v)
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	var err error
	switch key {
	case "location":
		ref.Location = value
	case "offset":
		ref.Offset, err = strconv.ParseInt(value, 10, 64)
	case "length":
		ref.Length, err = strconv.ParseInt(value, 10, 64)
	}
	if err != nil || ref.Offset < 0 || ref.Length < -1 {
		return fmt.Errorf("tensor %q: external data %s %q is not a byte count", ref.Tensor, key, value)
	}
	return nil
}

// wireReader reads protobuf fields from a file at offsets, buffered, and
// seeks past the fields it is not asked to read.
type wireReader struct {
	ra    io.ReaderAt
	size  int64
	off   int64
	buf   *bufio.Reader
	depth int
}

func (w *wireReader) seek(off int64) {
	w.off = off
	sr := io.NewSectionReader(w.ra, off, w.size-off)
	if w.buf == nil {
		w.buf = bufio.NewReaderSize(sr, 64<<10)
		return
	}
	w.buf.Reset(sr)
}

func (w *wireReader) varint() (uint64, error) {
	b, _ := w.buf.Peek(binary.MaxVarintLen64)
	if len(b) == 0 {
		return 0, fmt.Errorf("malformed model at offset %d: %w", w.off, io.ErrUnexpectedEOF)
	}
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, fmt.Errorf("malformed model at offset %d: %w", w.off, protowire.ParseError(n))
	}
	w.buf.Discard(n)
	w.off += int64(n)
	return v, nil
}

// skipTo moves to off, forward.
func (w *wireReader) skipTo(off int64) {
	if n := off - w.off; n <= int64(w.buf.Buffered()) {
		w.buf.Discard(int(n))
		w.off = off
		return
	}
	w.seek(off)
}

// bytes reads the rest of a length-delimited field, up to end, when it
// is at most max bytes.
func (w *wireReader) bytes(end, max int64) ([]byte, error) {
	if end-w.off > max {
		return nil, fmt.Errorf("malformed model at offset %d: a %d-byte field where at most %d was expected", w.off, end-w.off, max)
	}
	b := make([]byte, end-w.off)
	if _, err := io.ReadFull(w.buf, b); err != nil {
		return nil, fmt.Errorf("malformed model at offset %d: %w", w.off, err)
	}
	w.off = end
	return b, nil
}

// fields calls fn for each field of the message that ends at end: with
// the value of a varint, or the end of a length-delimited field (which fn
// may read; what it leaves is skipped). Other fields are skipped.
func (w *wireReader) fields(end int64, fn func(num protowire.Number, typ protowire.Type, v uint64, end int64) error) error {
	for w.off < end {
		tag, err := w.varint()
		if err != nil {
			return err
		}
		num, typ := protowire.DecodeTag(tag)
		switch typ {
		case protowire.VarintType:
			v, err := w.varint()
			if err != nil {
				return err
			}
			if err := fn(num, typ, v, 0); err != nil {
				return err
			}
		case protowire.Fixed32Type, protowire.Fixed64Type:
			n := int64(4)
			if typ == protowire.Fixed64Type {
				n = 8
			}
			if n > end-w.off {
				return fmt.Errorf("malformed model at offset %d: a field runs past its message", w.off)
			}
			w.skipTo(w.off + n)
		case protowire.BytesType:
			n, err := w.varint()
			if err != nil {
				return err
			}
			if n > uint64(end-w.off) {
				return fmt.Errorf("malformed model at offset %d: a field runs past its message", w.off)
			}
			fieldEnd := w.off + int64(n)
			if err := fn(num, typ, 0, fieldEnd); err != nil {
				return err
			}
			if w.off > fieldEnd {
				return fmt.Errorf("malformed model at offset %d: a message runs past its field", w.off)
			}
			w.skipTo(fieldEnd)
		default:
			return fmt.Errorf("malformed model at offset %d: unsupported wire type %d", w.off, typ)
		}
	}
	if w.off != end {
		return fmt.Errorf("malformed model at offset %d: a field runs past its message", w.off)
	}
	return nil
}
