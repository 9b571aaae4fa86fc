package http_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/onnx"
)

// These tests run the real server (runtime.Serve: the same http.Server a
// function binary runs) on loopback and attack it the way a misbehaving or
// hostile client would. Each checks the server's answer and that it keeps
// serving afterwards.

type hostile struct {
	addr  string
	calls chan []byte // bodies that reached the predictor
}

func startHostile(t *testing.T, limits runtime.Limits) *hostile {
	t.Helper()
	h := &hostile{calls: make(chan []byte, 100)}
	p := functions.PredictorFunc(func(ctx context.Context, req *functions.Request) (*functions.Response, error) {
		h.calls <- req.Body
		var v any
		if err := functions.DecodeJSON(req.Body, &v); err != nil {
			return nil, err
		}
		if req.Query.Get("big") != "" {
			return functions.JSON(200, map[string]string{"text": strings.Repeat("cortex ", 2000)})
		}
		return functions.JSON(200, v)
	})
	rt, err := runtime.New(p, runtime.Config{Name: "hostile", Limits: limits},
		runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		runtime.WithReadHeaderTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	h.addr = ln.Addr().String()
	waitReady(t, "http://"+h.addr)
	return h
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("server not ready within 10s")
}

// healthy checks the server still answers /healthz.
func (h *hostile) healthy(t *testing.T) {
	t.Helper()
	resp, err := http.Get("http://" + h.addr + "/healthz")
	if err != nil {
		t.Fatalf("after the attack /healthz failed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after the attack /healthz = %d", resp.StatusCode)
	}
}

func (h *hostile) post(t *testing.T, body []byte, header ...string) reply {
	t.Helper()
	return do(t, "POST", "http://"+h.addr+"/predict", string(body), header...)
}

func TestSlowHeaderClientIsCutOff(t *testing.T) {
	h := startHostile(t, runtime.Limits{})
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Start a request and never finish its headers.
	if _, err := io.WriteString(c, "POST /predict HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	// The server drops the connection after its header timeout; the bound
	// here is generous, it only stops a hung test.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept a connection whose headers never came")
	}
	h.healthy(t)
}

func TestOversizedHeaders(t *testing.T) {
	h := startHostile(t, runtime.Limits{})
	r := h.post(t, []byte(`{}`), "X-Huge", strings.Repeat("a", runtime.MaxHeaderBytes+4096))
	if r.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status = %d, want 431", r.status)
	}
	h.healthy(t)
}

func gzipped(t *testing.T, data []byte) []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return b.Bytes()
}

// gzippedZeros is gzipped(t, make([]byte, n)) for n a multiple of 8 MiB,
// without compressing n bytes: deflating 64 MiB race-instrumented took
// most of TestCompressedBodies. Once the window holds only zeros, the
// blocks a sync flush ends that encode the next chunk of zeros are the
// same bytes whatever came before, so they are written again and the
// stream is closed by hand: an empty final block (fixed Huffman, end of
// block) and the gzip trailer, CRC-32 and size of the n bytes. Each flush
// costs a few bytes: 8 MiB chunks keep 64 MiB within the 64 KiB the bomb
// must fit in (65204 bytes; 1 MiB chunks made 66388).
func gzippedZeros(t *testing.T, n int) []byte {
	const chunk = 8 << 20
	if n%chunk != 0 || n < 2*chunk {
		t.Fatalf("gzippedZeros(%d): want a multiple of %d, at least two", n, chunk)
	}
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zeros := make([]byte, chunk)
	if _, err := zw.Write(zeros); err != nil {
		t.Fatal(err)
	}
	if err := zw.Flush(); err != nil {
		t.Fatal(err)
	}
	from := b.Len()
	if _, err := zw.Write(zeros); err != nil {
		t.Fatal(err)
	}
	if err := zw.Flush(); err != nil {
		t.Fatal(err)
	}
	next := bytes.Clone(b.Bytes()[from:])
	for range n/chunk - 2 {
		b.Write(next)
	}
	out := append(b.Bytes(), 0x03, 0x00) // BFINAL, fixed Huffman, end of block
	out = binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(make([]byte, n)))
	return binary.LittleEndian.AppendUint32(out, uint32(n))
}

func zstded(t *testing.T, data []byte, opts ...zstd.EOption) []byte {
	zw, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return zw.EncodeAll(data, nil)
}

func TestCompressedBodies(t *testing.T) {
	const limit = 64 << 10
	h := startHostile(t, runtime.Limits{MaxBody: limit})
	doc := []byte(`{"greeting":"` + strings.Repeat("hello ", 1000) + `"}`)
	bomb := make([]byte, 64<<20) // 64 MiB of zeros: about 64 KiB gzipped, 2 KiB as zstd

	tests := []struct {
		name       string
		body       []byte
		encoding   string
		wantStatus int
		wantMsg    string
	}{
		{name: "gzip", body: gzipped(t, doc), encoding: "gzip", wantStatus: 200},
		{name: "zstd", body: zstded(t, doc), encoding: "zstd", wantStatus: 200},
		{name: "gzip bomb", body: gzippedZeros(t, len(bomb)), encoding: "gzip", wantStatus: 413, wantMsg: "decompresses to more than"},
		{name: "zstd bomb", body: zstded(t, bomb), encoding: "zstd", wantStatus: 413, wantMsg: "decompresses to more than"},
		{name: "zstd huge window", body: zstded(t, bomb[:limit*4], zstd.WithWindowSize(1<<28), zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithSingleSegment(false)),
			encoding: "zstd", wantStatus: 413},
		{name: "truncated gzip", body: gzipped(t, doc)[:40], encoding: "gzip", wantStatus: 400, wantMsg: "not valid gzip"},
		{name: "garbage zstd", body: []byte("definitely not zstd"), encoding: "zstd", wantStatus: 400, wantMsg: "not valid zstd"},
		{name: "unknown encoding", body: doc, encoding: "br", wantStatus: 415, wantMsg: "gzip or zstd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.post(t, tt.body, "Content-Encoding", tt.encoding)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantMsg != "" {
				wantError(tt.wantMsg)(t, r)
			}
			if tt.wantStatus == 200 {
				got := <-h.calls
				if !bytes.Equal(got, doc) {
					t.Errorf("predictor got %d bytes, want the %d decompressed", len(got), len(doc))
				}
			}
		})
	}
	h.healthy(t)
}

func TestTruncatedBody(t *testing.T) {
	h := startHostile(t, runtime.Limits{})
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Promise 100 bytes, send 10, and stop sending.
	fmt.Fprintf(c, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\": 1, ")
	c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("status = %d, want 400", resp.StatusCode)
	}
	select {
	case b := <-h.calls:
		t.Errorf("a truncated body reached the predictor: %q", b)
	default:
	}
	h.healthy(t)
}

func TestHostileJSON(t *testing.T) {
	h := startHostile(t, runtime.Limits{MaxBody: 4 << 20})
	tests := []struct {
		name string
		body []byte
	}{
		{name: "invalid UTF-8", body: []byte("{\"name\": \"\xff\xfe\xfd\", \"x\": \x80}")},
		{name: "deeply nested arrays", body: []byte(strings.Repeat("[", 1_000_000) + strings.Repeat("]", 1_000_000))},
		{name: "deeply nested objects", body: []byte(strings.Repeat(`{"a":`, 200_000) + "1" + strings.Repeat("}", 200_000))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.post(t, tt.body)
			if r.status != 400 {
				t.Fatalf("status = %d, want 400: %.200s", r.status, r.body)
			}
			if !utf8.ValidString(r.body) || !json.Valid([]byte(r.body)) {
				t.Errorf("error body is not valid UTF-8 JSON: %q", r.body)
			}
		})
	}
	h.healthy(t)
}

// The iris function under the same attacks: the ONNX predictor's decoder
// answers 400, never a crash.
func TestHostileJSONToONNX(t *testing.T) {
	rt, err := runtime.New(onnx.New(), irisConfig(runtime.Limits{MaxBody: 4 << 20}),
		runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer rt.Shutdown(context.Background())
	// Each is a 400: not a well-formed inference request. An invalid
	// UTF-8 name decodes (to U+FFFD) to a name the model does not have: a
	// 422, like any unknown input.
	misfits := map[string]bool{"invalid UTF-8 name": true}
	for name, body := range map[string]string{
		"invalid UTF-8 name": "{\"inputs\":[{\"name\":\"\xff\",\"shape\":[1,4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]}]}",
		"nested data":        `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}]}`,
		"huge shape":         `{"inputs":[{"name":"input","shape":[4611686018427387904,4],"datatype":"FP32","data":[1,2,3,4]}]}`,
		"overflowing shape":  `{"inputs":[{"name":"input","shape":[4294967296,4294967296],"datatype":"FP32","data":[1]}]}`,
		"NaN literal":        `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[NaN,1,2,3]}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := rt.Invoke(context.Background(), &functions.Request{Body: []byte(body)})
			want := 400
			if misfits[name] {
				want = 422
			}
			if got := functions.StatusOf(err); got != want {
				t.Fatalf("status = %d (%v), want %d", got, err, want)
			}
		})
	}
}

func TestResponseCompression(t *testing.T) {
	h := startHostile(t, runtime.Limits{})
	req, _ := http.NewRequest("POST", "http://"+h.addr+"/predict?big=1", strings.NewReader(`{}`))
	req.Header.Set("Accept-Encoding", "gzip")
	// A Transport that leaves decompression to us, to see the encoding.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding = %q, want gzip for a large JSON answer", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if err := json.NewDecoder(zr).Decode(&v); err != nil || !strings.HasPrefix(v["text"], "cortex cortex") {
		t.Fatalf("decompressed answer = %v, %v", v, err)
	}
	<-h.calls
}
