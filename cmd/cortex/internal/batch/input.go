package batch

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// item is one input: a request body and where it came from.
type item struct {
	index int
	line  int    // its line in a JSONL input (from 1), else 0
	file  string // its file's name in a directory input, else ""
	path  string // the file to read the body from (directory inputs)
	body  []byte
	ctype string
}

// input is a JSONL file or a directory of files, one request body each.
type input struct {
	path   string
	dir    bool
	files  []string // a directory's files, sorted by name
	total  int
	digest string
}

// openInput reads what identifies the input and counts its items: a
// JSONL file's SHA-256 and its lines that are not blank; a directory's
// regular files (not dot-files, not in subdirectories), sorted by name,
// and a SHA-256 of their names, sizes and modification times (reading
// every byte of a directory of images twice would double the job's
// reading).
func openInput(path string) (*input, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--input: %w", err)
	}
	in := &input{path: path, dir: fi.IsDir()}
	h := sha256.New()
	if in.dir {
		ents, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("--input: %w", err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
				continue
			}
			info, err := e.Info()
			if err != nil {
				return nil, fmt.Errorf("--input: %w", err)
			}
			in.files = append(in.files, e.Name())
			fmt.Fprintf(h, "%q %d %d\n", e.Name(), info.Size(), info.ModTime().UnixNano())
		}
		slices.Sort(in.files)
		in.total = len(in.files)
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--input: %w", err)
		}
		defer f.Close()
		r := bufio.NewReaderSize(io.TeeReader(f, h), 1<<20)
		for {
			line, err := r.ReadSlice('\n')
			if len(bytes.TrimSpace(line)) > 0 {
				in.total++
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				// A line longer than the buffer: count it once.
				for errors.Is(err, bufio.ErrBufferFull) {
					_, err = r.ReadSlice('\n')
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", path, err)
			}
		}
	}
	in.digest = hex.EncodeToString(h.Sum(nil))
	return in, nil
}

// each calls fn with each item from index skip on, in order, until fn
// returns an error. A JSONL line is not checked here: whoever sends it
// checks that it is JSON (in parallel, and once: packing rows checks
// them). A directory's items carry their path; the body is read by
// whoever sends it.
func (in *input) each(skip int, fn func(*item) error) error {
	if in.dir {
		for i := skip; i < len(in.files); i++ {
			name := in.files[i]
			it := &item{index: i, file: name, path: filepath.Join(in.path, name), ctype: contentType(name)}
			if err := fn(it); err != nil {
				return err
			}
		}
		return nil
	}
	f, err := os.Open(in.path)
	if err != nil {
		return fmt.Errorf("--input: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	index, line := 0, 0
	// Lines and items are carved from slabs: a job of small rows would
	// otherwise make two allocations a row.
	var arena []byte
	var items []item
	var long []byte
	for {
		b, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = r.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
		}
		if len(b) > 0 {
			line++
			if t := bytes.TrimSpace(b); len(t) > 0 {
				if index >= skip {
					if len(t) > cap(arena)-len(arena) {
						arena = make([]byte, 0, max(64<<10, len(t)))
					}
					body := append(arena[len(arena):len(arena)], t...)
					arena = arena[:len(arena)+len(t)]
					if len(items) == 0 {
						items = make([]item, 256)
					}
					it := &items[0]
					items = items[1:]
					*it = item{index: index, line: line, body: body[:len(t):len(t)], ctype: "application/json"}
					if err := fn(it); err != nil {
						return err
					}
				}
				index++
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", in.path, err)
		}
	}
}

// syntaxError says where a line that is not JSON goes wrong.
func syntaxError(b []byte) error {
	var v json.RawMessage
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("not valid JSON: %v (at byte %d)", se, se.Offset)
	}
	if err == nil {
		err = errors.New("trailing data")
	}
	return fmt.Errorf("not valid JSON: %w", err)
}

// contentTypes are the types of the files a function is most often given,
// fixed here so that a job does not depend on the machine's MIME table;
// other extensions ask it, then fall back to application/octet-stream.
var contentTypes = map[string]string{
	".json": "application/json",
	".png":  "image/png",
	".jpg":  "image/jpeg",
	".jpeg": "image/jpeg",
	".gif":  "image/gif",
	".webp": "image/webp",
	".bmp":  "image/bmp",
	".tif":  "image/tiff",
	".tiff": "image/tiff",
	".txt":  "text/plain; charset=utf-8",
	".csv":  "text/csv",
	".wav":  "audio/wav",
	".mp3":  "audio/mpeg",
	".flac": "audio/flac",
	".pdf":  "application/pdf",
	".npy":  "application/octet-stream",
}

func contentType(name string) string {
	ext := strings.ToLower(filepath.Ext(name))
	if t, ok := contentTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}
