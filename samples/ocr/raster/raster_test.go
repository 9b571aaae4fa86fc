package raster_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/cortexfn/cortex/samples/ocr/raster"
)

func TestDetectSize(t *testing.T) {
	tests := []struct {
		name         string
		w, h         int
		wantW, wantH int
	}{
		{"small stays, rounded to 32", 100, 50, 96, 64},
		{"tiny grows to 32", 10, 5, 32, 32},
		{"wide shrinks to 960", 1920, 1080, 960, 544},
		{"tall shrinks to 960", 1000, 4000, 256, 960},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, h := raster.DetectSize(tt.w, tt.h, raster.DefaultDetectSide)
			if w != tt.wantW || h != tt.wantH {
				t.Errorf("DetectSize(%d, %d): got %dx%d, want %dx%d", tt.w, tt.h, w, h, tt.wantW, tt.wantH)
			}
		})
	}
}

func TestPrepareRoundTrip(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 200, 100))
	img.Set(10, 10, color.NRGBA{255, 0, 0, 255})
	// Transparent pixels become white.
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	f, err := raster.Prepare(b.Bytes(), raster.Limits{})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if f.OrigWidth != 200 || f.OrigHeight != 100 || f.Width != 192 || f.Height != 96 {
		t.Errorf("frame: got %dx%d from %dx%d, want 192x96 from 200x100", f.Width, f.Height, f.OrigWidth, f.OrigHeight)
	}
	if got := f.Pix[(50*f.Width+100)*3:][:3]; !bytes.Equal(got, []byte{255, 255, 255}) {
		t.Errorf("a transparent pixel: got %v, want white", got)
	}
	g, err := raster.Unmarshal(f.Marshal())
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if g.OrigWidth != f.OrigWidth || g.Height != f.Height || !bytes.Equal(g.Pix, f.Pix) {
		t.Error("Unmarshal(Marshal(f)) differs from f")
	}
}

func TestUnmarshalErrors(t *testing.T) {
	ok := (&raster.Frame{OrigWidth: 1, OrigHeight: 1, Width: 2, Height: 1, Pix: make([]byte, 6)}).Marshal()
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"no magic", []byte("PNG1234567890123456789")},
		{"short pixels", ok[:len(ok)-1]},
		{"zero size", (&raster.Frame{}).Marshal()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := raster.Unmarshal(tt.b); !errors.Is(err, raster.ErrBadFrame) {
				t.Errorf("Unmarshal: got %v, want ErrBadFrame", err)
			}
		})
	}
}

// FuzzPrepare: whatever the body, Prepare returns a frame or one of its
// errors, never panics, and never decodes past its limits.
func FuzzPrepare(f *testing.F) {
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 3, 2)))
	f.Add(b.Bytes())
	f.Add([]byte(`{"image": "iVBORw0KGgo="}`))
	f.Add([]byte("\xff\xd8\xff\xe0"))
	f.Fuzz(func(t *testing.T, body []byte) {
		fr, err := raster.Prepare(body, raster.Limits{MaxPixels: 1 << 16})
		if err != nil {
			for _, want := range []error{raster.ErrBadRequest, raster.ErrNotImage, raster.ErrTooLarge, raster.ErrCorrupt} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("Prepare: unexpected error %v", err)
		}
		if len(fr.Pix) != fr.Width*fr.Height*3 {
			t.Fatalf("frame %dx%d with %d bytes", fr.Width, fr.Height, len(fr.Pix))
		}
	})
}

func FuzzUnmarshal(f *testing.F) {
	f.Add((&raster.Frame{OrigWidth: 1, OrigHeight: 1, Width: 1, Height: 1, Pix: make([]byte, 3)}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := raster.Unmarshal(b)
		if err == nil && len(fr.Pix) != fr.Width*fr.Height*3 {
			t.Fatalf("frame %dx%d with %d bytes", fr.Width, fr.Height, len(fr.Pix))
		}
	})
}
