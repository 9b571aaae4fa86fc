// Package testpage renders the OCR sample's test pages: known text drawn
// with a real font (Go Regular, from golang.org/x/image/font/gofont, so no
// font file or system package is needed), anti-aliased, black on white.
// The accuracy tests, the examples and the benchmark (internal/bench/ocr)
// all read pages made here, so they agree on what the text is.
package testpage

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Line is one line of text: its top-left corner (the top of the font's
// ascent, not of the ink) and its size in pixels (the em height).
type Line struct {
	Text string
	X, Y int
	Size float64
}

// Page is a rendered test image and the lines drawn on it, in reading
// order.
type Page struct {
	Name  string
	W, H  int
	Lines []Line
}

// Pages are the standard pages: several lines, sizes (16 to 48 px) and
// positions, two columns, and a page whose only line sits mid-page. The
// first, the receipt, is the benchmark's fixed image.
var Pages = []Page{
	{"receipt", 480, 220, []Line{
		{"INVOICE 20931", 20, 16, 36},
		{"Date 2024-03-17", 20, 70, 26},
		{"Total 1234.50", 20, 120, 26},
		{"Paid", 380, 172, 26},
	}},
	{"two-columns", 640, 180, []Line{
		{"North 12", 30, 30, 28},
		{"South 34", 360, 30, 28},
		{"East 56", 30, 110, 28},
		{"West 78", 360, 110, 28},
	}},
	{"sizes", 720, 300, []Line{
		{"Big Letters", 20, 14, 48},
		{"Medium text 42", 20, 100, 28},
		{"Small print 0987654321", 20, 170, 18},
		{"the quick brown fox jumps", 200, 240, 16},
	}},
	{"letter", 640, 250, []Line{
		{"Dear Customer", 24, 20, 24},
		{"Your order 7781 ships on 12 May 2025", 24, 70, 20},
		{"Pack my box with five dozen liquor jugs", 24, 110, 20},
		{"Call 555 0142 before 9 in the morning", 24, 150, 20},
		{"Sphinx of black quartz judge my vow", 24, 190, 20},
	}},
	{"offset", 800, 600, []Line{
		{"Cortex Functions", 300, 250, 40},
	}},
}

// Texts is the page's lines' text, in reading order.
func (p Page) Texts() []string {
	var t []string
	for _, l := range p.Lines {
		t = append(t, l.Text)
	}
	return t
}

// Image renders the page.
func (p Page) Image() *image.Gray { return Render(p.W, p.H, p.Lines) }

// PNG renders the page as a PNG.
func (p Page) PNG() []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, p.Image()); err != nil {
		panic(err) // encoding an in-memory image does not fail
	}
	return b.Bytes()
}

var (
	parsed  *opentype.Font
	parseMu sync.Mutex
	faces   = map[float64]font.Face{}
)

// face is Go Regular at size pixels (72 DPI: a point is a pixel), unhinted
// so that glyphs keep their outlines' shapes at every size.
func face(size float64) font.Face {
	parseMu.Lock()
	defer parseMu.Unlock()
	if f, ok := faces[size]; ok {
		return f
	}
	if parsed == nil {
		f, err := opentype.Parse(goregular.TTF)
		if err != nil {
			panic(err) // the embedded font is valid
		}
		parsed = f
	}
	f, err := opentype.NewFace(parsed, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		panic(err)
	}
	faces[size] = f
	return f
}

// Render draws lines in black on a white w x h image.
func Render(w, h int, lines []Line) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	for _, l := range lines {
		f := face(l.Size)
		d := font.Drawer{Dst: img, Src: image.NewUniform(color.Black), Face: f,
			Dot: fixed.P(l.X, l.Y).Add(fixed.Point26_6{Y: f.Metrics().Ascent})}
		d.DrawString(l.Text)
	}
	return img
}

// Ink is the rectangle the line's ink covers, in image pixels.
func (l Line) Ink() image.Rectangle {
	f := face(l.Size)
	b, _ := font.BoundString(f, l.Text)
	dot := fixed.P(l.X, l.Y).Add(fixed.Point26_6{Y: f.Metrics().Ascent})
	return image.Rect((dot.X + b.Min.X).Floor(), (dot.Y + b.Min.Y).Floor(), (dot.X + b.Max.X).Ceil(), (dot.Y + b.Max.Y).Ceil())
}
