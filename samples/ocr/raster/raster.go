// Package raster is what the OCR sample's pre stage hands its predictor: the
// caller's image, decoded, flattened onto white and resized for the text
// detector, as packed RGB bytes behind a small header.
//
// Prepare runs inside the WebAssembly stage (GOOS=wasip1) and, in tests and
// benchmarks, in-process; Unmarshal runs in the predictor. Both sides share
// this package so the wire format has one definition.
//
// # Wire format (little-endian)
//
//	offset  size  field
//	0       4     magic "OCR1"
//	4       4     uint32 width of the caller's image, in pixels
//	8       4     uint32 height of the caller's image
//	12      4     uint32 W, width of the pixels below (a multiple of 32)
//	16      4     uint32 H, height of the pixels below (a multiple of 32)
//	20      W*H*3 pixels, row by row, R G B per pixel, 0-255
//
// The pixels stay bytes rather than the detector's normalised float32: a
// float tensor is four times larger (about 11 MB at 960x960, over the
// function's body limit) and the predictor normalises while it fills the
// tensor at no extra cost.
package raster

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/jpeg" // register the decoders Prepare accepts
	_ "image/png"
	"math"
)

// Magic starts every frame.
const Magic = "OCR1"

// HeaderSize is the size of the header before the pixels.
const HeaderSize = 20

// Defaults for Limits.
const (
	// DefaultMaxPixels bounds the caller's image: 16 MP (4096x4096) covers
	// a 12 MP phone photo and a page scanned at 300 dpi.
	DefaultMaxPixels = 16 << 20
	// DefaultMaxSide bounds either side of the caller's image.
	DefaultMaxSide = 16384
	// DefaultDetectSide is the longest side of the image the detector sees,
	// as PaddleOCR's det_limit_side_len.
	DefaultDetectSide = 960
)

// Limits bounds Prepare. The zero value means the defaults.
type Limits struct {
	MaxPixels  int
	MaxSide    int
	DetectSide int
}

func (l Limits) withDefaults() Limits {
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.MaxSide <= 0 {
		l.MaxSide = DefaultMaxSide
	}
	if l.DetectSide <= 0 {
		l.DetectSide = DefaultDetectSide
	}
	return l
}

// Errors Prepare returns, each wrapped with detail. The stage turns them
// into statuses: ErrBadRequest 400, ErrNotImage 415, ErrTooLarge 413,
// ErrCorrupt 422.
var (
	ErrBadRequest = errors.New("raster: bad request")
	ErrNotImage   = errors.New("raster: not a PNG or JPEG image")
	ErrTooLarge   = errors.New("raster: image too large")
	ErrCorrupt    = errors.New("raster: corrupt image")
)

// Frame is a decoded, resized image.
type Frame struct {
	// OrigWidth and OrigHeight are the caller's image's size; boxes are
	// reported in its coordinates.
	OrigWidth, OrigHeight int
	// Width and Height are the size of Pix.
	Width, Height int
	// Pix holds Width*Height RGB pixels, row by row.
	Pix []byte
}

// Prepare decodes body (a PNG or JPEG, raw or as base64 in the JSON object
// {"image": "..."}) and resizes it for the detector. The image's size is
// read from its header and checked against the limits before any pixel is
// decoded, so a small file that claims huge dimensions costs nothing.
func Prepare(body []byte, lim Limits) (*Frame, error) {
	lim = lim.withDefaults()
	img, err := unwrap(body)
	if err != nil {
		return nil, err
	}
	if !isPNG(img) && !isJPEG(img) {
		return nil, fmt.Errorf("%w: send PNG or JPEG bytes as the body, or {\"image\": \"<base64>\"}", ErrNotImage)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the image header: %v", ErrCorrupt, err)
	}
	w, h := cfg.Width, cfg.Height
	switch {
	case w <= 0 || h <= 0:
		return nil, fmt.Errorf("%w: the %s image is %dx%d", ErrCorrupt, format, w, h)
	case w > lim.MaxSide || h > lim.MaxSide:
		return nil, fmt.Errorf("%w: the %s image is %dx%d; each side may be at most %d pixels", ErrTooLarge, format, w, h, lim.MaxSide)
	case int64(w)*int64(h) > int64(lim.MaxPixels):
		return nil, fmt.Errorf("%w: the %s image is %dx%d = %d pixels; the limit is %d pixels", ErrTooLarge, format, w, h, int64(w)*int64(h), lim.MaxPixels)
	}
	src, _, err := image.Decode(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("%w: decoding the %s image: %v (is it truncated?)", ErrCorrupt, format, err)
	}
	rgb := flatten(src)
	dw, dh := DetectSize(w, h, lim.DetectSide)
	return &Frame{OrigWidth: w, OrigHeight: h, Width: dw, Height: dh, Pix: Resize(rgb, w, h, dw, dh)}, nil
}

// unwrap returns the image bytes of body: body itself, or the base64 in
// {"image": "..."} (a data: URL prefix is allowed).
func unwrap(body []byte) ([]byte, error) {
	t := bytes.TrimLeft(body, " \t\r\n")
	if len(t) == 0 {
		return nil, fmt.Errorf("%w: the body is empty; send a PNG or JPEG image", ErrBadRequest)
	}
	if t[0] != '{' {
		return body, nil
	}
	var in struct {
		Image *string `json:"image"`
	}
	if err := json.Unmarshal(t, &in); err != nil {
		return nil, fmt.Errorf("%w: the body looks like JSON but is not valid: %v", ErrBadRequest, err)
	}
	if in.Image == nil || *in.Image == "" {
		return nil, fmt.Errorf("%w: the JSON body has no \"image\": send {\"image\": \"<base64 PNG or JPEG>\"}", ErrBadRequest)
	}
	s := *in.Image
	if i := bytes.IndexByte([]byte(s), ','); i >= 0 && len(s) > 5 && s[:5] == "data:" {
		s = s[i+1:]
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: \"image\" is not base64: %v", ErrBadRequest, err)
	}
	return b, nil
}

func isPNG(b []byte) bool  { return bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) }
func isJPEG(b []byte) bool { return bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}) }

// flatten draws src over white and returns its RGB bytes.
func flatten(src image.Image) []byte {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Over)
	rgb := make([]byte, 3*b.Dx()*b.Dy())
	for i, j := 0, 0; i < len(dst.Pix); i, j = i+4, j+3 {
		rgb[j], rgb[j+1], rgb[j+2] = dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2]
	}
	return rgb
}

// DetectSize returns the detector's input size for a w x h image: the
// longest side at most maxSide, keeping the aspect ratio, each side rounded
// to a multiple of 32 (at least 32), as PaddleOCR's DetResizeForTest.
func DetectSize(w, h, maxSide int) (int, int) {
	ratio := 1.0
	if m := max(w, h); m > maxSide {
		ratio = float64(maxSide) / float64(m)
	}
	round := func(v int) int {
		r := int(math.Round(float64(v)*ratio/32)) * 32
		return max(r, 32)
	}
	return round(w), round(h)
}

// Resize resamples sw x sh RGB pixels to dw x dh with a triangle filter
// that widens when shrinking (so downscaled text is averaged, not aliased).
func Resize(src []byte, sw, sh, dw, dh int) []byte {
	if sw == dw && sh == dh {
		return src
	}
	tmp := make([]float32, dw*sh*3)
	for _, c := range weights(sw, dw) {
		for y := range sh {
			row, out := src[y*sw*3:], tmp[(y*dw+c.dst)*3:]
			var r, g, b float32
			for k, w := range c.w {
				p := row[(c.first+k)*3:]
				r += w * float32(p[0])
				g += w * float32(p[1])
				b += w * float32(p[2])
			}
			out[0], out[1], out[2] = r, g, b
		}
	}
	dst := make([]byte, dw*dh*3)
	for _, c := range weights(sh, dh) {
		for x := range dw {
			var r, g, b float32
			for k, w := range c.w {
				p := tmp[((c.first+k)*dw+x)*3:]
				r += w * p[0]
				g += w * p[1]
				b += w * p[2]
			}
			o := dst[(c.dst*dw+x)*3:]
			o[0], o[1], o[2] = clamp(r), clamp(g), clamp(b)
		}
	}
	return dst
}

type contrib struct {
	dst, first int
	w          []float32
}

// weights returns, for each destination index, the source indices (from
// first) and normalised triangle-filter weights that make it.
func weights(src, dst int) []contrib {
	scale := float64(src) / float64(dst)
	support := max(1, scale)
	cs := make([]contrib, dst)
	for i := range dst {
		centre := (float64(i)+0.5)*scale - 0.5
		lo := max(0, int(math.Floor(centre-support)))
		hi := min(src-1, int(math.Ceil(centre+support)))
		c := contrib{dst: i, first: lo}
		var sum float64
		ws := make([]float64, 0, hi-lo+1)
		for j := lo; j <= hi; j++ {
			w := max(0, 1-math.Abs(float64(j)-centre)/support)
			ws = append(ws, w)
			sum += w
		}
		for _, w := range ws {
			if sum == 0 {
				sum = 1
			}
			c.w = append(c.w, float32(w/sum))
		}
		cs[i] = c
	}
	return cs
}

func clamp(v float32) byte {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return byte(v + 0.5)
}

// Marshal encodes the frame in the wire format.
func (f *Frame) Marshal() []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(f.Pix))
	copy(b, Magic)
	binary.LittleEndian.PutUint32(b[4:], uint32(f.OrigWidth))
	binary.LittleEndian.PutUint32(b[8:], uint32(f.OrigHeight))
	binary.LittleEndian.PutUint32(b[12:], uint32(f.Width))
	binary.LittleEndian.PutUint32(b[16:], uint32(f.Height))
	return append(b, f.Pix...)
}

// ErrBadFrame is wrapped by Unmarshal's errors.
var ErrBadFrame = errors.New("raster: not a frame from the OCR pre stage")

// Unmarshal decodes a frame. Pix aliases b.
func Unmarshal(b []byte) (*Frame, error) {
	if len(b) < HeaderSize || string(b[:4]) != Magic {
		return nil, fmt.Errorf("%w (it starts with no %q header)", ErrBadFrame, Magic)
	}
	u := func(off int) int { return int(binary.LittleEndian.Uint32(b[off:])) }
	f := &Frame{OrigWidth: u(4), OrigHeight: u(8), Width: u(12), Height: u(16)}
	if f.OrigWidth <= 0 || f.OrigHeight <= 0 || f.Width <= 0 || f.Height <= 0 || f.Width > 1<<16 || f.Height > 1<<16 ||
		int64(f.Width)*int64(f.Height)*3 != int64(len(b)-HeaderSize) {
		return nil, fmt.Errorf("%w: a %dx%d header over %d bytes of pixels", ErrBadFrame, f.Width, f.Height, len(b)-HeaderSize)
	}
	f.Pix = b[HeaderSize:]
	return f, nil
}
