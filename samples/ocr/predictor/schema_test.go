package predictor_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/onnx"
	"github.com/cortexfn/cortex/samples/ocr/predictor"
)

// TestDescribe checks what the OCR function says about its route: it takes
// a PNG or JPEG body (a file upload on its page) or {"image": base64},
// and answers lines of text; its real answer fits the published output
// schema.
func TestDescribe(t *testing.T) {
	rt, err := runtime.New(predictor.New(), runtime.Config{Name: "ocr"})
	if err != nil {
		t.Fatal(err)
	}
	d := rt.Describe(context.Background())
	if !slices.Equal(d.Schema.InputMediaTypes, []string{"image/png", "image/jpeg"}) {
		t.Errorf("input media types %q", d.Schema.InputMediaTypes)
	}
	var in struct {
		Properties struct {
			Image struct {
				Type, ContentEncoding, ContentMediaType string
			}
		}
		Required []string
	}
	if err := json.Unmarshal(d.Schema.Input, &in); err != nil {
		t.Fatal(err)
	}
	if img := in.Properties.Image; img.Type != "string" || img.ContentEncoding != "base64" || !strings.HasPrefix(img.ContentMediaType, "image/") ||
		!slices.Equal(in.Required, []string{"image"}) {
		t.Errorf("input schema %s", d.Schema.Input)
	}
	in64, err := functions.NewValidator(d.Schema.Input)
	if err != nil {
		t.Fatal(err)
	}
	png := encodePNG(t, image.NewGray(image.Rect(0, 0, 8, 8)))
	if err := in64.Check([]byte(`{"image": "` + base64.StdEncoding.EncodeToString(png) + `"}`)); err != nil {
		t.Errorf("the JSON form of a PNG fails the input schema: %v", err)
	}

	out, err := functions.NewValidator(d.Schema.Output)
	if err != nil {
		t.Fatal(err)
	}
	o := newOCR(t)
	answer := read(t, o, png)
	answer.Lines = append(answer.Lines, predictor.Line{Text: "HELLO", Box: [4][2]int{{1, 2}, {30, 2}, {30, 9}, {1, 9}}, Confidence: 0.98})
	b, err := json.Marshal(answer)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Check(b); err != nil {
		t.Errorf("an answer fails the output schema: %v\n%s", err, b)
	}
	if err := out.Check([]byte(`{"lines": [{"text": "x", "box": [[1, 2]], "confidence": 2}]}`)); err == nil {
		t.Error("a box of one corner and a confidence of 2 pass the output schema")
	}
}

// TestModelRequestSchemas gives the OIP request schema of each of the
// OCR sample's models, from the metadata their files declare: each takes
// a request of the model's shape and refuses one of another.
func TestModelRequestSchemas(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join(sampleDir, "model"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		file      string
		good, bad string // shapes; the data is a zero per element
	}{
		{predictor.DetectorFile, "[1,3,32,32]", "[1,4,32,32]"},
		{predictor.RecogniserFile, "[1,3,48,16]", "[1,3,32,16]"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			s, err := onnx.Open(context.Background(), filepath.Join(dir, tt.file), onnx.SessionOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			md := oip.ModelMetadata{Name: strings.TrimSuffix(tt.file, ".onnx"), Inputs: s.Inputs(), Outputs: s.Outputs()}
			v, err := functions.NewValidator(oip.RequestSchema(md))
			if err != nil {
				t.Fatal(err)
			}
			body := func(shape string) []byte {
				var dims []int
				if err := json.Unmarshal([]byte(shape), &dims); err != nil {
					t.Fatal(err)
				}
				n := 1
				for _, d := range dims {
					n *= d
				}
				data := strings.TrimSuffix(strings.Repeat("0,", n), ",")
				return []byte(`{"inputs": [{"name": "` + md.Inputs[0].Name + `", "datatype": "FP32", "shape": ` + shape + `, "data": [` + data + `]}]}`)
			}
			if err := v.Check(body(tt.good)); err != nil {
				t.Errorf("shape %s: %v; the model takes it (%s)", tt.good, err, dims(md.Inputs[0].Shape))
			}
			if err := v.Check(body(tt.bad)); err == nil || !strings.Contains(err.Error(), "$.inputs[0].shape") {
				t.Errorf("shape %s: %v; want a 422 at $.inputs[0].shape (the model's is %s)", tt.bad, err, dims(md.Inputs[0].Shape))
			}
		})
	}
}

func dims(s []int64) string { b, _ := json.Marshal(s); return string(b) }
