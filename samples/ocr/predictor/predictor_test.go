package predictor_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/samples/ocr/predictor"
	"github.com/cortexfn/cortex/samples/ocr/raster"
	"github.com/cortexfn/cortex/samples/ocr/testpage"
)

// The tests run the real models (fetched by scripts/fetch-ocr-models.sh
// into ../model) on images they render themselves.

var sampleDir = filepath.Join("..")

func newOCR(t testing.TB) *predictor.OCR {
	t.Helper()
	dir, err := filepath.Abs(sampleDir)
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "model")
	if _, err := os.Stat(filepath.Join(model, predictor.DetectorFile)); err != nil {
		t.Fatalf("%v: run scripts/fetch-ocr-models.sh (or `make models`) to fetch the OCR models", err)
	}
	o := predictor.New().(*predictor.OCR)
	if err := o.Init(context.Background(), functions.Config{Name: "ocr", Dir: dir, Model: model}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() {
		if err := o.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return o
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// read runs the whole pipeline in-process: the pre stage's code, then the
// predictor.
func read(t testing.TB, o *predictor.OCR, img []byte) *predictor.Output {
	t.Helper()
	f, err := raster.Prepare(img, raster.Limits{})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	out, err := o.Read(context.Background(), f, nil)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return out
}

// TestAccuracy reads the rendered pages (testpage.Pages: English text and
// digits in Go Regular, 16 to 48 px, at several positions, one page in two
// columns): every line is found, in reading order, each box covers its
// line's ink, and at least 95% of the characters are right.
//
// How characters are counted: per line, the Levenshtein distance between
// what was read and what was drawn, both with their spaces removed, summed
// over all lines and divided by the number of non-space characters drawn.
// Spaces are left out because the recogniser (trained mostly on Chinese,
// where words are not spaced) often drops or merges the space between
// words; the words themselves must still be read right, in order.
func TestAccuracy(t *testing.T) {
	o := newOCR(t)
	var chars, errs, spaced, spacedErrs int
	for _, p := range testpage.Pages {
		t.Run(p.Name, func(t *testing.T) {
			out := read(t, o, p.PNG())
			want := p.Texts()
			var got []string
			for _, l := range out.Lines {
				got = append(got, l.Text)
			}
			t.Logf("read %q", got)
			if len(got) != len(want) {
				t.Fatalf("got lines %q, want %q", got, want)
			}
			for i := range want {
				d := distance(noSpace(got[i]), noSpace(want[i]))
				chars += len(noSpace(want[i]))
				errs += d
				spaced += len(want[i])
				spacedErrs += distance(got[i], want[i])
				if d > len(want[i])/4 {
					t.Errorf("line %d: got %q, want %q (reading order or recognition)", i, got[i], want[i])
				}
				// The i-th box covers the i-th line's ink (so the lines
				// come in reading order), give or take a sixth of the font
				// size; the unclip margin makes it a little larger.
				ink, tol := p.Lines[i].Ink(), max(2, int(p.Lines[i].Size/6))
				b := out.Lines[i].Box
				if b[0][0] > ink.Min.X+tol || b[0][1] > ink.Min.Y+tol || b[2][0] < ink.Max.X-tol || b[2][1] < ink.Max.Y-tol {
					t.Errorf("line %d %q: box %v does not cover the ink at %v", i, want[i], b, ink)
				}
				if b[0][0] < ink.Min.X-3*tol || b[0][1] < ink.Min.Y-3*tol || b[2][0] > ink.Max.X+3*tol || b[2][1] > ink.Max.Y+3*tol {
					t.Errorf("line %d %q: box %v is much larger than the ink at %v", i, want[i], b, ink)
				}
			}
		})
	}
	acc := 1 - float64(errs)/float64(chars)
	t.Logf("character accuracy %.2f%% (%d errors in %d characters, spaces not counted); counting spaces, %.2f%% (%d in %d)",
		100*acc, errs, chars, 100*(1-float64(spacedErrs)/float64(spaced)), spacedErrs, spaced)
	if acc < 0.95 {
		t.Errorf("character accuracy %.2f%%, want at least 95%%", 100*acc)
	}
}

func noSpace(s string) string { return strings.ReplaceAll(s, " ", "") }

// distance is the Levenshtein distance between a and b, in bytes (the test
// text is ASCII).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func TestNoText(t *testing.T) {
	o := newOCR(t)
	blank := image.NewGray(image.Rect(0, 0, 300, 200))
	draw.Draw(blank, blank.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	// A photo-like gradient with no text in it.
	grad := image.NewRGBA(image.Rect(0, 0, 256, 128))
	for y := range 128 {
		for x := range 256 {
			grad.Set(x, y, color.RGBA{uint8(x), uint8(2 * y), 128, 255})
		}
	}
	for _, tt := range []struct {
		name string
		img  image.Image
	}{{"blank", blank}, {"gradient", grad}} {
		t.Run(tt.name, func(t *testing.T) {
			out := read(t, o, encodePNG(t, tt.img))
			if out.Lines == nil || len(out.Lines) != 0 {
				t.Errorf("got %+v, want an empty list of lines", out.Lines)
			}
			b, _ := json.Marshal(out)
			if got, want := string(b), `{"lines":[]}`; got != want {
				t.Errorf("JSON: got %s, want %s", got, want)
			}
		})
	}
}

// TestJPEGAndJSON reads the same page sent as JPEG, as base64 JSON and as
// a data: URL.
func TestJPEGAndJSON(t *testing.T) {
	o := newOCR(t)
	img := testpage.Render(400, 100, []testpage.Line{{Text: "TEXT 2024", X: 20, Y: 30, Size: 32}})
	var j bytes.Buffer
	if err := jpeg.Encode(&j, img, &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(encodePNG(t, img))
	for _, tt := range []struct {
		name string
		body []byte
	}{
		{"jpeg", j.Bytes()},
		{"json", []byte(`{"image": "` + b64 + `"}`)},
		{"data url", []byte(`{"image": "data:image/png;base64,` + b64 + `"}`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := read(t, o, tt.body)
			if len(out.Lines) != 1 || noSpace(out.Lines[0].Text) != "TEXT2024" {
				t.Errorf("got %+v, want one line TEXT 2024", out.Lines)
			}
		})
	}
}

// bombPNG returns a PNG of a few hundred bytes whose header claims w x h
// pixels: decoding it would allocate w*h*4 bytes.
func bombPNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

// TestBadInput checks what the pre stage's code refuses, and how (the stage
// turns each error into the status in the table).
func TestBadInput(t *testing.T) {
	good := encodePNG(t, testpage.Render(200, 60, []testpage.Line{{Text: "OK", X: 10, Y: 10, Size: 24}}))
	tests := []struct {
		name   string
		body   []byte
		err    error
		status int
		msg    string
	}{
		{"empty", nil, raster.ErrBadRequest, 400, "empty"},
		{"text", []byte("hello, this is not an image"), raster.ErrNotImage, 415, "PNG or JPEG"},
		{"gif", []byte("GIF89a\x01\x00\x01\x00"), raster.ErrNotImage, 415, "PNG or JPEG"},
		{"bad json", []byte(`{"image": `), raster.ErrBadRequest, 400, "not valid"},
		{"json without image", []byte(`{"picture": "x"}`), raster.ErrBadRequest, 400, `no "image"`},
		{"json not base64", []byte(`{"image": "***"}`), raster.ErrBadRequest, 400, "not base64"},
		{"truncated", good[:len(good)/2], raster.ErrCorrupt, 422, "truncated"},
		{"bad header", good[:20], raster.ErrCorrupt, 422, "header"},
		{"bomb", bombPNG(100000, 100000), raster.ErrTooLarge, 413, "each side may be at most 16384"},
		{"too many pixels", bombPNG(16000, 16000), raster.ErrTooLarge, 413, "the limit is 16777216 pixels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := raster.Prepare(tt.body, raster.Limits{})
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Prepare: got %v, want %v containing %q", err, tt.err, tt.msg)
			}
		})
	}
}

// TestPredictWithoutStage: a body that did not come through the pre stage
// is a 400 that says so.
func TestPredictWithoutStage(t *testing.T) {
	o := newOCR(t)
	_, err := o.Predict(context.Background(), &functions.Request{Body: []byte("not a frame")})
	if functions.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "pre stage") {
		t.Errorf("Predict: got %v, want a 400 naming the pre stage", err)
	}
}

var update = flag.Bool("update", false, "rewrite ../examples/page-*.json from the pipeline's answers")

// TestExamples checks that ../examples/page-*.json hold what the pipeline
// answers for the pages they carry; -update rewrites them.
func TestExamples(t *testing.T) {
	o := newOCR(t)
	for _, p := range testpage.Pages {
		t.Run(p.Name, func(t *testing.T) {
			img := p.PNG()
			out := read(t, o, img)
			path := filepath.Join(sampleDir, "examples", "page-"+p.Name+".json")
			if *update {
				writeExample(t, path, p, img, out)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			var ex struct {
				Request struct {
					Body struct {
						Image string `json:"image"`
					} `json:"body"`
				} `json:"request"`
				Response struct {
					Body predictor.Output `json:"body"`
				} `json:"response"`
			}
			if err := json.Unmarshal(b, &ex); err != nil {
				t.Fatal(err)
			}
			if ex.Request.Body.Image != base64.StdEncoding.EncodeToString(img) {
				t.Errorf("%s carries another image than the test renders (run with -update)", path)
			}
			if len(ex.Response.Body.Lines) != len(out.Lines) {
				t.Fatalf("%s expects %d lines, the pipeline reads %d (run with -update)", path, len(ex.Response.Body.Lines), len(out.Lines))
			}
			for i, l := range out.Lines {
				if w := ex.Response.Body.Lines[i]; w.Text != l.Text || w.Box != l.Box {
					t.Errorf("%s line %d: expects %q %v, the pipeline reads %q %v (run with -update)", path, i, w.Text, w.Box, l.Text, l.Box)
				}
			}
		})
	}
}

func writeExample(t *testing.T, path string, p testpage.Page, img []byte, out *predictor.Output) {
	t.Helper()
	type line struct {
		Text string    `json:"text"`
		Box  [4][2]int `json:"box"`
	}
	lines := make([]line, len(out.Lines))
	for i, l := range out.Lines {
		lines[i] = line{l.Text, l.Box}
	}
	ex := map[string]any{
		"description": fmt.Sprintf("a %dx%d PNG rendered by ../testpage (Go Regular) with the lines %q; the expected answer is what the pipeline read (go test -run TestExamples -update)", p.W, p.H, p.Texts()),
		"tolerance":   0.01,
		"request": map[string]any{"method": "POST", "path": "/predict",
			"headers": map[string]string{"Content-Type": "application/json"},
			"body":    map[string]string{"image": base64.StdEncoding.EncodeToString(img)}},
		"response": map[string]any{"status": 200, "body": map[string]any{"lines": lines}},
	}
	b, err := json.MarshalIndent(ex, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
