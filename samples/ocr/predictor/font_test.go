package predictor_test

import (
	"image"
	"image/color"
	"image/draw"
	"strings"
)

// The tests render their own images, from known text, with this 5x7 pixel
// font (the HD44780 character generator's shapes): no font file, no
// dependency. Each glyph is 7 rows of 5 columns; '#' is ink.
var glyphs = map[rune][7]string{
	'A': {".###.", "#...#", "#...#", "#...#", "#####", "#...#", "#...#"},
	'B': {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."},
	'C': {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."},
	'D': {"###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."},
	'E': {"#####", "#....", "#....", "####.", "#....", "#....", "#####"},
	'F': {"#####", "#....", "#....", "####.", "#....", "#....", "#...."},
	'G': {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"},
	'H': {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'I': {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'J': {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."},
	'K': {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"},
	'L': {"#....", "#....", "#....", "#....", "#....", "#....", "#####"},
	'M': {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"},
	'N': {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"},
	'O': {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'P': {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."},
	'Q': {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"},
	'R': {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"},
	'S': {".####", "#....", "#....", ".###.", "....#", "....#", "####."},
	'T': {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."},
	'U': {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'V': {"#...#", "#...#", "#...#", ".#.#.", ".#.#.", "..#..", "..#.."},
	'W': {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."},
	'X': {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"},
	'Y': {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."},
	'Z': {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"},
	'0': {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."},
	'1': {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'2': {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"},
	'3': {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."},
	'4': {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."},
	'5': {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."},
	'6': {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."},
	'7': {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."},
	'8': {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."},
	'9': {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."},
	'-': {".....", ".....", ".....", "#####", ".....", ".....", "....."},
	'.': {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."},
	':': {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."},
	' ': {".....", ".....", ".....", ".....", ".....", ".....", "....."},
}

// textLine is text drawn at (x, y), each font pixel scale x scale image
// pixels.
type textLine struct {
	text  string
	x, y  int
	scale int
}

// render draws lines in black on a white w x h image. Font pixels become
// strokes about half a pixel wide joining their neighbours (diagonals
// included), so letters look drawn rather than blocky; everything is drawn
// at 4x and averaged down, so edges are anti-aliased as real text is.
func render(w, h int, lines []textLine) *image.Gray {
	const ss = 4
	big := image.NewGray(image.Rect(0, 0, w*ss, h*ss))
	draw.Draw(big, big.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	ink := image.NewUniform(color.Black)
	for _, l := range lines {
		unit := float64(l.scale * ss)
		half := 0.28 * unit // half the stroke width
		stamp := func(x, y float64) {
			draw.Draw(big, image.Rect(int(x-half), int(y-half), int(x+half+0.5), int(y+half+0.5)), ink, image.Point{}, draw.Src)
		}
		ox := float64(l.x * ss)
		for _, r := range strings.ToUpper(l.text) {
			g := glyphs[r]
			at := func(x, y int) bool { return x >= 0 && x < 5 && y >= 0 && y < 7 && g[y][x] == '#' }
			for gy := range 7 {
				for gx := range 5 {
					if !at(gx, gy) {
						continue
					}
					cx, cy := ox+(float64(gx)+0.5)*unit, float64(l.y*ss)+(float64(gy)+0.5)*unit
					stamp(cx, cy)
					for _, d := range [][2]int{{1, 0}, {0, 1}, {1, 1}, {-1, 1}} {
						if !at(gx+d[0], gy+d[1]) || (d[0] != 0 && d[1] != 0 && (at(gx+d[0], gy) || at(gx, gy+d[1]))) {
							continue
						}
						for k := 1; k <= 8; k++ {
							f := float64(k) / 8
							stamp(cx+f*float64(d[0])*unit, cy+f*float64(d[1])*unit)
						}
					}
				}
			}
			ox += float64(advance(r)) * unit
		}
	}
	small := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			sum := 0
			for dy := range ss {
				for dx := range ss {
					sum += int(big.GrayAt(x*ss+dx, y*ss+dy).Y)
				}
			}
			small.SetGray(x, y, color.Gray{Y: uint8(sum / (ss * ss))})
		}
	}
	return small
}

// advance is how many font pixels a rune moves the pen: 5 columns and a gap,
// a narrower space.
func advance(r rune) int {
	if r == ' ' {
		return 4
	}
	return 6
}

// width is the width in image pixels of the ink of a line.
func (l textLine) width() int {
	n := 0
	for _, r := range l.text {
		n += advance(r)
	}
	return (n - 1) * l.scale
}
