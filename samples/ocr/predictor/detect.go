package predictor

import (
	"math"
	"slices"

	"github.com/cortexfn/cortex/runtime/onnx"
	"github.com/cortexfn/cortex/samples/ocr/raster"
)

// PaddleOCR's DB post-processing settings (det_db_thresh, det_db_box_thresh,
// det_db_unclip_ratio, min_size) and its recogniser's drop_score.
const (
	pixelThreshold = 0.3
	boxThreshold   = 0.6
	unclipRatio    = 1.5
	minBoxSide     = 3
	maxBoxes       = 1000
	minConfidence  = 0.5
)

// The detector's normalisation (ImageNet), in the BGR channel order
// PaddleOCR's models were trained with.
var (
	detMean = [3]float32{0.485, 0.456, 0.406}
	detStd  = [3]float32{0.229, 0.224, 0.225}
)

// detectorInput turns the frame into the detector's 1x3xHxW tensor.
func detectorInput(f *raster.Frame) onnx.Tensor {
	n := f.Width * f.Height
	data := make([]float32, 3*n)
	var lut [3][256]float32
	for c := range 3 {
		for v := range 256 {
			lut[c][v] = (float32(v)/255 - detMean[c]) / detStd[c]
		}
	}
	for i := range n {
		p := f.Pix[i*3:]
		// BGR: channel 0 is blue.
		data[i], data[n+i], data[2*n+i] = lut[0][p[2]], lut[1][p[1]], lut[2][p[0]]
	}
	return onnx.Tensor{Shape: []int64{1, 3, int64(f.Height), int64(f.Width)}, Data: data}
}

type point struct{ x, y float64 }

func (p point) add(q point) point     { return point{p.x + q.x, p.y + q.y} }
func (p point) sub(q point) point     { return point{p.x - q.x, p.y - q.y} }
func (p point) scale(s float64) point { return point{p.x * s, p.y * s} }
func (p point) dot(q point) float64   { return p.x*q.x + p.y*q.y }
func cross(o, a, b point) float64     { return (a.x-o.x)*(b.y-o.y) - (a.y-o.y)*(b.x-o.x) }

// rect is a rotated rectangle: centre, a unit axis a pointing right
// (a.x >= |a.y|), b = a turned a quarter clockwise (pointing down), and the
// half-lengths along each.
type rect struct {
	c      point
	a, b   point
	ha, hb float64
}

// corners returns the corners clockwise from the top left.
func (r rect) corners() [4]point {
	a, b := r.a.scale(r.ha), r.b.scale(r.hb)
	return [4]point{r.c.sub(a).sub(b), r.c.add(a).sub(b), r.c.add(a).add(b), r.c.sub(a).add(b)}
}

// box is a detected line.
type box struct {
	r     rect
	pts   [4]point
	score float64
}

// findBoxes runs DB post-processing on the probability map: threshold,
// 8-connected regions, each region's minimum-area rectangle, dropped when
// thin or unsure, then grown by area*ratio/perimeter on every side.
func findBoxes(prob []float32, w, h int) []box {
	label := make([]int32, w*h)
	var boxes []box
	var stack []int
	rows := map[int][2]int{}
	var next int32
	for start := range prob {
		if prob[start] <= pixelThreshold || label[start] != 0 {
			continue
		}
		next++
		clear(rows)
		var sum float64
		count := 0
		stack = append(stack[:0], start)
		label[start] = next
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x, y := i%w, i/w
			sum += float64(prob[i])
			count++
			if r, ok := rows[y]; ok {
				rows[y] = [2]int{min(r[0], x), max(r[1], x)}
			} else {
				rows[y] = [2]int{x, x}
			}
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					nx, ny := x+dx, y+dy
					if nx < 0 || ny < 0 || nx >= w || ny >= h {
						continue
					}
					j := ny*w + nx
					if label[j] == 0 && prob[j] > pixelThreshold {
						label[j] = next
						stack = append(stack, j)
					}
				}
			}
		}
		if count < 4 || len(boxes) >= maxBoxes {
			continue
		}
		pts := make([]point, 0, 2*len(rows))
		for y, r := range rows {
			pts = append(pts, point{float64(r[0]), float64(y)}, point{float64(r[1]), float64(y)})
		}
		r := minAreaRect(convexHull(pts))
		if 2*min(r.ha, r.hb) < minBoxSide {
			continue
		}
		score := sum / float64(count)
		if score < boxThreshold {
			continue
		}
		// Unclip: PaddleOCR offsets the polygon by area*ratio/perimeter.
		wd, ht := 2*r.ha, 2*r.hb
		d := wd * ht * unclipRatio / (2 * (wd + ht))
		r.ha += d
		r.hb += d
		if 2*min(r.ha, r.hb) < minBoxSide+2 {
			continue
		}
		b := box{r: r, score: score, pts: r.corners()}
		for i := range b.pts {
			b.pts[i] = point{math.Min(math.Max(b.pts[i].x, 0), float64(w)), math.Min(math.Max(b.pts[i].y, 0), float64(h))}
		}
		boxes = append(boxes, b)
	}
	return boxes
}

// convexHull returns the hull of pts, counter-clockwise (monotone chain).
func convexHull(pts []point) []point {
	slices.SortFunc(pts, func(p, q point) int {
		if p.x != q.x {
			return cmpFloat(p.x, q.x)
		}
		return cmpFloat(p.y, q.y)
	})
	pts = slices.Compact(pts)
	if len(pts) < 3 {
		return pts
	}
	hull := make([]point, 0, 2*len(pts))
	for _, p := range pts {
		for len(hull) >= 2 && cross(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	lower := len(hull) + 1
	for i := len(pts) - 2; i >= 0; i-- {
		p := pts[i]
		for len(hull) >= lower && cross(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	return hull[:len(hull)-1]
}

// minAreaRect returns the smallest rectangle around a convex hull: one of
// its sides lies along a hull edge (rotating calipers, by brute force over
// the edges, which is plenty for text regions).
func minAreaRect(hull []point) rect {
	best, bestArea := rect{}, math.Inf(1)
	try := func(u point) {
		n := point{-u.y, u.x}
		minU, maxU, minN, maxN := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
		for _, p := range hull {
			pu, pn := p.dot(u), p.dot(n)
			minU, maxU = math.Min(minU, pu), math.Max(maxU, pu)
			minN, maxN = math.Min(minN, pn), math.Max(maxN, pn)
		}
		if area := (maxU - minU) * (maxN - minN); area < bestArea {
			bestArea = area
			c := u.scale((minU + maxU) / 2).add(n.scale((minN + maxN) / 2))
			best = orient(c, u, (maxU-minU)/2, (maxN-minN)/2)
		}
	}
	try(point{1, 0})
	for i := range hull {
		e := hull[(i+1)%len(hull)].sub(hull[i])
		if l := math.Hypot(e.x, e.y); l > 0 {
			try(e.scale(1 / l))
		}
	}
	return best
}

// orient returns the rectangle with centre c, unit axis u and half-lengths
// hu (along u) and hn, with its a axis the more horizontal one, pointing
// right, and b pointing down.
func orient(c, u point, hu, hn float64) rect {
	n := point{-u.y, u.x}
	a, ha, hb := u, hu, hn
	if math.Abs(u.x) < math.Abs(u.y) {
		a, ha, hb = n, hn, hu
	}
	if a.x < 0 || (a.x == 0 && a.y > 0) {
		a = a.scale(-1)
	}
	return rect{c: c, a: a, b: point{-a.y, a.x}, ha: ha, hb: hb}
}

// sortReadingOrder sorts boxes top to bottom, then left to right among boxes
// on the same line (tops closer than half the shorter box's height), as
// PaddleOCR's sorted_boxes.
func sortReadingOrder(boxes []box) {
	slices.SortStableFunc(boxes, func(p, q box) int {
		if p.pts[0].y != q.pts[0].y {
			return cmpFloat(p.pts[0].y, q.pts[0].y)
		}
		return cmpFloat(p.pts[0].x, q.pts[0].x)
	})
	for i := 0; i < len(boxes)-1; i++ {
		for j := i; j >= 0; j-- {
			p, q := boxes[j], boxes[j+1]
			sameLine := math.Abs(q.pts[0].y-p.pts[0].y) < math.Min(p.r.hb, q.r.hb)
			if !sameLine || q.pts[0].x >= p.pts[0].x {
				break
			}
			boxes[j], boxes[j+1] = q, p
		}
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
