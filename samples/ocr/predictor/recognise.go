package predictor

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/cortexfn/cortex/runtime/onnx"
	"github.com/cortexfn/cortex/samples/ocr/raster"
)

// The recogniser's input: 48 pixels high, at least 320 wide (PaddleOCR's
// rec_image_shape 3,48,320); wider lines keep their aspect ratio up to
// maxRecWidth.
const (
	recHeight   = 48
	recMinWidth = 320
	maxRecWidth = 48 * 50
)

// recognise reads the text in one box, adding to t's Crop, Recognise and
// Decode.
func (o *OCR) recognise(ctx context.Context, f *raster.Frame, b box, t *Timings) (string, float64, error) {
	start := time.Now()
	in := recogniserInput(f, b)
	t.Crop += time.Since(start)
	start = time.Now()
	out, err := o.rec.Run(ctx, in)
	t.Recognise += time.Since(start)
	if err != nil {
		return "", 0, err
	}
	start = time.Now()
	text, conf := ctcGreedy(out[0], o.chars)
	t.Decode += time.Since(start)
	return text, conf, nil
}

// recogniserInput rectifies the box to a line 48 pixels high, normalised
// to [-1, 1] in BGR order and zero-padded on the right to at least 320.
// A box much taller than wide is read as vertical text, turned a quarter
// counter-clockwise as PaddleOCR does.
func recogniserInput(f *raster.Frame, b box) onnx.Tensor {
	r := b.r
	origin, u, v := r.corners()[0], r.a.scale(2*r.ha), r.b.scale(2*r.hb)
	length, height := 2*r.ha, 2*r.hb
	if height >= 1.5*length {
		origin, u, v = r.corners()[1], r.b.scale(2*r.hb), r.a.scale(-2*r.ha)
		length, height = height, length
	}
	w := int(math.Ceil(recHeight * length / math.Max(height, 1)))
	w = min(max(w, 1), maxRecWidth)
	tw := max(w, recMinWidth)
	data := make([]float32, 3*recHeight*tw)
	plane := recHeight * tw
	// Supersample when shrinking, so thin strokes are averaged, not lost.
	k := int(math.Ceil(math.Max(height/recHeight, length/float64(w))))
	k = min(max(k, 1), 4)
	for y := range recHeight {
		for x := range w {
			var rgb [3]float64
			for sy := range k {
				for sx := range k {
					fu := (float64(x) + (float64(sx)+0.5)/float64(k)) / float64(w)
					fv := (float64(y) + (float64(sy)+0.5)/float64(k)) / recHeight
					p := origin.add(u.scale(fu)).add(v.scale(fv))
					s := bilinear(f, p.x-0.5, p.y-0.5)
					rgb[0] += s[0]
					rgb[1] += s[1]
					rgb[2] += s[2]
				}
			}
			n := float64(k * k)
			i := y*tw + x
			// BGR, (v/255 - 0.5) / 0.5.
			data[i] = float32(rgb[2]/n/127.5 - 1)
			data[plane+i] = float32(rgb[1]/n/127.5 - 1)
			data[2*plane+i] = float32(rgb[0]/n/127.5 - 1)
		}
	}
	return onnx.Tensor{Shape: []int64{1, 3, recHeight, int64(tw)}, Data: data}
}

// bilinear samples the frame at (x, y) in pixel-centre coordinates,
// replicating the border.
func bilinear(f *raster.Frame, x, y float64) [3]float64 {
	x = math.Min(math.Max(x, 0), float64(f.Width-1))
	y = math.Min(math.Max(y, 0), float64(f.Height-1))
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, f.Width-1), min(y0+1, f.Height-1)
	dx, dy := x-float64(x0), y-float64(y0)
	var out [3]float64
	for c := range 3 {
		at := func(px, py int) float64 { return float64(f.Pix[(py*f.Width+px)*3+c]) }
		top := at(x0, y0)*(1-dx) + at(x1, y0)*dx
		bottom := at(x0, y1)*(1-dx) + at(x1, y1)*dx
		out[c] = top*(1-dy) + bottom*dy
	}
	return out
}

// ctcGreedy decodes the recogniser's 1xTxC probabilities: the best class
// at each step, repeats merged, blanks (class 0) dropped. The confidence is
// the mean probability of the characters kept.
func ctcGreedy(t onnx.Tensor, chars []string) (string, float64) {
	steps, classes := int(t.Shape[1]), int(t.Shape[2])
	var sb strings.Builder
	var sum float64
	n, prev := 0, -1
	for s := range steps {
		row := t.Data[s*classes : (s+1)*classes]
		best := 0
		for c, p := range row {
			if p > row[best] {
				best = c
			}
		}
		if best != 0 && best != prev && best < len(chars) {
			sb.WriteString(chars[best])
			sum += float64(row[best])
			n++
		}
		prev = best
	}
	if n == 0 {
		return "", 0
	}
	return sb.String(), sum / float64(n)
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

func clampInt(v, lo, hi int) int { return min(max(v, lo), hi) }
