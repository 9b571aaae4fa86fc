package http

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/cortexfn/cortex/functions"
)

// Compressed request bodies (Content-Encoding gzip or zstd) are accepted
// only under a cap on the decompressed size, which is the function's body
// limit: the predictor sees the decompressed body, so that is what the limit
// is about. A small body that inflates past it (a decompression bomb) is a
// 413 after reading at most limit+1 decompressed bytes, never an
// out-of-memory. The zstd decoder's window and memory are bounded too, since
// a frame header can ask for a window of gigabytes.

// zstdMaxWindow bounds the window a zstd frame may ask for (8 MiB is what
// zstd's own command line tool allows without --long).
const zstdMaxWindow = 8 << 20

var zstdDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(zstdMaxWindow),
		zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		panic(err) // only for invalid options: a programmer error
	}
	return d
}}

// decodeBody returns the body decoded per its Content-Encoding, bounded by
// limit decompressed bytes.
func decodeBody(encoding string, body []byte, limit int64) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		return body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, badEncoding("gzip", err)
		}
		defer zr.Close()
		return readCapped(zr, "gzip", limit)
	case "zstd":
		d := zstdDecoders.Get().(*zstd.Decoder)
		defer func() {
			_ = d.Reset(nil)
			zstdDecoders.Put(d)
		}()
		if err := d.Reset(bytes.NewReader(body)); err != nil {
			return nil, badEncoding("zstd", err)
		}
		return readCapped(d, "zstd", limit)
	default:
		return nil, &functions.Error{Status: http.StatusUnsupportedMediaType,
			Message: fmt.Sprintf("Content-Encoding %q is not supported: send the body uncompressed, gzip or zstd", encoding)}
	}
}

func readCapped(r io.Reader, name string, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if n > limit {
		return nil, &functions.Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf(
			"%s request body decompresses to more than the function's limit of %d bytes (limits.max_body in cortex.yaml)", name, limit)}
	}
	if err != nil {
		if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return nil, &functions.Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf(
				"zstd request body asks for a window over %d bytes; compress with a smaller window", zstdMaxWindow), Err: err}
		}
		return nil, badEncoding(name, err)
	}
	return buf.Bytes(), nil
}

func badEncoding(name string, err error) error {
	return &functions.Error{Status: http.StatusBadRequest,
		Message: fmt.Sprintf("request body is not valid %s (Content-Encoding: %s): %v", name, name, err), Err: err}
}

// compressResponses wraps h so that JSON and text answers are compressed
// (zstd or gzip) for clients that ask; other content types, which are
// usually already compressed or binary tensors, pass as they are.
func compressResponses(h http.Handler) http.Handler {
	wrap, err := gzhttp.NewWrapper(
		gzhttp.MinSize(1024),
		gzhttp.CompressionLevel(gzip.BestSpeed),
		gzhttp.ContentTypeFilter(compressible),
	)
	if err != nil {
		panic(err) // only for invalid options: a programmer error
	}
	compressing := wrap(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header["Accept-Encoding"]; ok {
			compressing.ServeHTTP(w, r)
			return
		}
		// A client that accepts no encoding gets its answer as it is:
		// what gzhttp would do, with its Vary header, without wrapping
		// the writer and parsing the request's headers on every request.
		w.Header()["Vary"] = append(w.Header()["Vary"], "Accept-Encoding")
		h.ServeHTTP(w, r)
	})
}

func compressible(ct string) bool {
	ct = strings.ToLower(ct)
	return strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, "text/") ||
		strings.HasSuffix(strings.SplitN(ct, ";", 2)[0], "+json")
}
