// Package predictor is the OCR sample: it finds the lines of text in an
// image and reads them, with the PaddleOCR v4 detection and recognition
// models, two ONNX sessions held by one Go predictor.
//
// The pre stage (../stages, WebAssembly) decodes the caller's image and
// resizes it for the detector; this package receives its frame (package
// raster) and runs:
//
//  1. detection (DB): a per-pixel text probability map;
//  2. its post-processing: threshold, connected regions, a minimum-area
//     rectangle around each, scored and grown ("unclipped") as PaddleOCR
//     does;
//  3. reading order: top to bottom, then left to right within a line;
//  4. for each box, a crop of the frame rectified to 48 pixels high;
//  5. recognition (CRNN/SVTR) and CTC greedy decoding against the
//     character dictionary.
//
// Request:  POST /predict with a PNG or JPEG body, or {"image": "<base64>"}
// (the schemas of both, and of the response, are published: see Schema)
// Response: 200 {"lines": [{"text": "HELLO", "box": [[x,y] x4], "confidence": 0.98}]}
//
// Boxes are in the caller's image's pixels, clockwise from the top left. An
// image with no text gets {"lines": []}.
//
// predictor.model names a directory holding ch_PP-OCRv4_det_infer.onnx,
// ch_PP-OCRv4_rec_infer.onnx and ppocr_keys_v1.txt
// (scripts/fetch-ocr-models.sh puts them there).
package predictor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime/onnx"
	"github.com/cortexfn/cortex/samples/ocr/raster"
)

// The files predictor.model holds.
const (
	DetectorFile   = "ch_PP-OCRv4_det_infer.onnx"
	RecogniserFile = "ch_PP-OCRv4_rec_infer.onnx"
	DictionaryFile = "ppocr_keys_v1.txt"
)

// Line is one line of text found.
type Line struct {
	Text string `json:"text" jsonschema:"description=The text read."`
	// Box is the line's corners in the caller's image, clockwise from the
	// top left.
	Box        [4][2]int `json:"box" jsonschema:"description=The line's corners [x\\, y] in the image's pixels\\, clockwise from the top left."`
	Confidence float64   `json:"confidence" jsonschema:"description=The recogniser's confidence\\, 0 to 1.,minimum=0,maximum=1"`
}

// Output is the response body.
type Output struct {
	Lines []Line `json:"lines" jsonschema:"description=The lines of text\\, top to bottom then left to right; none for an image without text."`
}

// Schema describes the function's route as its caller sees it (the pre
// stage takes the image, this predictor the frame the stage makes): a
// PNG or JPEG body, or JSON {"image": "<base64>"}, answered with Output.
// The page offers a file upload for the image.
func (o *OCR) Schema() functions.Schema { return schema() }

var schema = sync.OnceValue(func() functions.Schema {
	out, err := functions.ReflectSchema(reflect.TypeFor[Output]())
	if err != nil {
		panic(err) // Output is plain JSON: cannot happen
	}
	return functions.Schema{
		Input: json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",` +
			`"properties":{"image":{"type":"string","contentEncoding":"base64","contentMediaType":"image/png",` +
			`"description":"A PNG or JPEG image, base64-encoded (a data: URL is taken too)."}},"required":["image"]}`),
		InputMediaTypes: []string{"image/png", "image/jpeg"},
		Output:          out,
	}
})

// OCR is the predictor. New returns one; Init loads the models.
type OCR struct {
	det, rec *onnx.Session
	// chars maps the recogniser's classes to text: 0 is the CTC blank,
	// then the dictionary, then a space.
	chars []string
}

// New returns the predictor. It is what the generated main calls.
func New() functions.Predictor { return &OCR{} }

// Init opens both sessions (on the GPU when the spec asks for one and CUDA
// is usable) and reads the dictionary.
func (o *OCR) Init(ctx context.Context, cfg functions.Config) error {
	if cfg.Model == "" {
		return errors.New("ocr: predictor.model is empty: name the directory that holds the models")
	}
	start := time.Now()
	chars, err := readDictionary(filepath.Join(cfg.Model, DictionaryFile))
	if err != nil {
		return err
	}
	opts := onnx.SessionOptions{GPU: cfg.GPU, Dir: cfg.Dir}
	det, err := onnx.Open(ctx, filepath.Join(cfg.Model, DetectorFile), opts)
	if err != nil {
		return fmt.Errorf("ocr: opening the detector: %w", err)
	}
	rec, err := onnx.Open(ctx, filepath.Join(cfg.Model, RecogniserFile), opts)
	if err != nil {
		det.Close()
		return fmt.Errorf("ocr: opening the recogniser: %w", err)
	}
	if out := rec.Outputs(); len(out) != 1 || len(out[0].Shape) != 3 || (out[0].Shape[2] != -1 && int(out[0].Shape[2]) != len(chars)) {
		det.Close()
		rec.Close()
		return fmt.Errorf("ocr: the recogniser's output %v does not match the %d classes of %s", out, len(chars), DictionaryFile)
	}
	o.det, o.rec, o.chars = det, rec, chars
	slog.Info("ocr: models loaded", "dir", cfg.Model, "classes", len(chars), "provider", det.Provider(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// LoadDuration is the time Init spent creating both sessions: the cold
// start's load phase (runtime.LoadTimer); the rest of Init is its init.
func (o *OCR) LoadDuration() time.Duration {
	if o.det == nil || o.rec == nil {
		return 0
	}
	return o.det.LoadDuration() + o.rec.LoadDuration()
}

// readDictionary reads one character per line and returns the recogniser's
// classes: the CTC blank, the characters, and a space (PaddleOCR's
// use_space_char).
func readDictionary(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ocr: reading the dictionary: %w", err)
	}
	defer f.Close()
	chars := []string{""}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		chars = append(chars, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ocr: reading the dictionary %s: %w", path, err)
	}
	if len(chars) < 2 {
		return nil, fmt.Errorf("ocr: the dictionary %s is empty", path)
	}
	return append(chars, " "), nil
}

// Predict reads the text in the frame the pre stage made.
func (o *OCR) Predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	f, err := raster.Unmarshal(req.Body)
	if err != nil {
		return nil, functions.Errorf(http.StatusBadRequest, "%v: this predictor runs behind the pre stage in ../stages (pre: ./stages in cortex.yaml)", err)
	}
	out, err := o.Read(ctx, f, nil)
	if err != nil {
		return nil, err
	}
	return functions.JSON(http.StatusOK, out)
}

// Timings splits one Read into its parts.
type Timings struct {
	// DetectInput is building the detector's normalised input tensor;
	// Detect is the detection model's run.
	DetectInput, Detect time.Duration
	// Boxes is DB post-processing: threshold, connected regions, rectangles,
	// unclip, reading order.
	Boxes time.Duration
	// Crop is rectifying each line to the recogniser's input; Recognise is
	// the recognition model's runs; Decode is CTC decoding and scaling the
	// boxes back to the caller's image.
	Crop, Recognise, Decode time.Duration
	Lines                   int
}

// Read runs the pipeline on a frame. When t is not nil it records where the
// time went.
func (o *OCR) Read(ctx context.Context, f *raster.Frame, t *Timings) (*Output, error) {
	if t == nil {
		t = new(Timings)
	}
	start := time.Now()
	in := detectorInput(f)
	t.DetectInput = time.Since(start)

	start = time.Now()
	prob, err := o.det.Run(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("ocr: detection: %w", err)
	}
	t.Detect = time.Since(start)

	start = time.Now()
	boxes := findBoxes(prob[0].Data, f.Width, f.Height)
	sortReadingOrder(boxes)
	t.Boxes = time.Since(start)

	sx, sy := float64(f.OrigWidth)/float64(f.Width), float64(f.OrigHeight)/float64(f.Height)
	out := &Output{Lines: []Line{}}
	for _, b := range boxes {
		text, conf, err := o.recognise(ctx, f, b, t)
		if err != nil {
			return nil, fmt.Errorf("ocr: recognition: %w", err)
		}
		start = time.Now()
		if text == "" || conf < minConfidence {
			t.Decode += time.Since(start)
			continue
		}
		l := Line{Text: text, Confidence: round4(conf)}
		for i, p := range b.pts {
			l.Box[i] = [2]int{clampInt(int(p.x*sx+0.5), 0, f.OrigWidth), clampInt(int(p.y*sy+0.5), 0, f.OrigHeight)}
		}
		out.Lines = append(out.Lines, l)
		t.Decode += time.Since(start)
	}
	t.Lines = len(out.Lines)
	return out, nil
}

// Close releases both sessions.
func (o *OCR) Close() error {
	var errs []error
	if o.det != nil {
		errs = append(errs, o.det.Close())
	}
	if o.rec != nil {
		errs = append(errs, o.rec.Close())
	}
	return errors.Join(errs...)
}

var (
	_ functions.Predictor      = (*OCR)(nil)
	_ functions.Initializer    = (*OCR)(nil)
	_ functions.Closer         = (*OCR)(nil)
	_ functions.SchemaProvider = (*OCR)(nil)
)
