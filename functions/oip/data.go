package oip

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Data holds the elements of a tensor, flattened in row-major order, as a
// slice of the Go type of its datatype (see the package documentation). The
// zero Data holds no elements.
type Data struct {
	v any
}

// NewData returns Data holding s. It does not copy s.
func NewData[T Element](s []T) Data { return Data{v: s} }

// Values returns the elements of d when they are held as []T. It does not
// copy them.
func Values[T Element](d Data) ([]T, bool) {
	s, ok := d.v.([]T)
	return s, ok
}

// Value returns the slice d holds ([]float32, []int64, ...), or nil.
func (d Data) Value() any { return d.v }

// Len returns the number of elements.
func (d Data) Len() int {
	switch s := d.v.(type) {
	case []bool:
		return len(s)
	case []uint8:
		return len(s)
	case []uint16:
		return len(s)
	case []uint32:
		return len(s)
	case []uint64:
		return len(s)
	case []int8:
		return len(s)
	case []int16:
		return len(s)
	case []int32:
		return len(s)
	case []int64:
		return len(s)
	case []float32:
		return len(s)
	case []float64:
		return len(s)
	case []string:
		return len(s)
	}
	return 0
}

// MarshalJSON encodes the elements as a flat JSON array. NaN and infinities,
// which JSON cannot carry, become null.
func (d Data) MarshalJSON() ([]byte, error) {
	return appendData(make([]byte, 0, 16+8*d.Len()), d, nil)
}

// appendData appends d as a JSON array, nested by shape when shape has more
// than one dimension (a nil shape means flat).
func appendData(dst []byte, d Data, shape []int64) ([]byte, error) {
	switch s := d.v.(type) {
	case nil:
		return append(dst, "[]"...), nil
	case []bool:
		return appendNested(dst, s, shape, func(b []byte, v bool) []byte { return strconv.AppendBool(b, v) })
	case []uint8:
		return appendNested(dst, s, shape, func(b []byte, v uint8) []byte { return strconv.AppendUint(b, uint64(v), 10) })
	case []uint16:
		return appendNested(dst, s, shape, func(b []byte, v uint16) []byte { return strconv.AppendUint(b, uint64(v), 10) })
	case []uint32:
		return appendNested(dst, s, shape, func(b []byte, v uint32) []byte { return strconv.AppendUint(b, uint64(v), 10) })
	case []uint64:
		return appendNested(dst, s, shape, func(b []byte, v uint64) []byte { return strconv.AppendUint(b, v, 10) })
	case []int8:
		return appendNested(dst, s, shape, func(b []byte, v int8) []byte { return strconv.AppendInt(b, int64(v), 10) })
	case []int16:
		return appendNested(dst, s, shape, func(b []byte, v int16) []byte { return strconv.AppendInt(b, int64(v), 10) })
	case []int32:
		return appendNested(dst, s, shape, func(b []byte, v int32) []byte { return strconv.AppendInt(b, int64(v), 10) })
	case []int64:
		return appendNested(dst, s, shape, func(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) })
	case []float32:
		return appendNested(dst, s, shape, appendFloat32)
	case []float64:
		return appendNested(dst, s, shape, appendFloat64)
	case []string:
		return appendNested(dst, s, shape, appendString)
	}
	return dst, fmt.Errorf("oip: cannot encode tensor data of type %T", d.v)
}

func appendFloat32(b []byte, v float32) []byte {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 32)
}

func appendFloat64(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendNested[T any](dst []byte, s []T, shape []int64, elem func([]byte, T) []byte) ([]byte, error) {
	if len(shape) <= 1 {
		dst = append(dst, '[')
		for i, v := range s {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = elem(dst, v)
		}
		return append(dst, ']'), nil
	}
	n, ok := elementCount(shape)
	if !ok || n != int64(len(s)) {
		return dst, fmt.Errorf("oip: shape %v does not match %d elements", shape, len(s))
	}
	if n == 0 {
		return appendEmpty(dst, shape), nil
	}
	rows := shape[0]
	step := len(s) / int(rows)
	dst = append(dst, '[')
	for r := 0; r < int(rows); r++ {
		if r > 0 {
			dst = append(dst, ',')
		}
		dst, _ = appendNested(dst, s[r*step:(r+1)*step], shape[1:], elem)
	}
	return append(dst, ']'), nil
}

// appendEmpty writes the nesting of an empty tensor: [[],[]] for [2 0].
func appendEmpty(dst []byte, shape []int64) []byte {
	dst = append(dst, '[')
	if len(shape) > 1 {
		for i := int64(0); i < shape[0]; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendEmpty(dst, shape[1:])
		}
	}
	return append(dst, ']')
}

// elementCount is the product of shape's dimensions; ok is false when a
// dimension is negative or the product overflows.
func elementCount(shape []int64) (n int64, ok bool) {
	n = 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// maxDepth bounds how deeply tensor data may nest.
const maxDepth = 32

// errTooMany is returned by the walker when a tensor exceeds its bound.
var errTooMany = errors.New("too many elements")

// walker decodes a JSON array of scalars, flat or nested, into a []T.
type walker[T any] struct {
	b     []byte
	pos   int
	dt    Datatype
	limit int
	out   []T
	conv  func(tok []byte, str bool) (T, error)
	// dims[i] is the length of the arrays at depth i, -1 until seen.
	dims []int64
	// leaf is the depth at which scalars sit, -1 until one is seen.
	leaf int
}

// decodeData decodes raw (a JSON array or a lone scalar) as elements of dt.
// hint is the expected number of elements (0 if unknown); limit bounds it.
// It returns the data and the shape of the nesting ([n] for a flat array,
// nil for a lone scalar). Errors describe the problem without naming the
// tensor; the caller adds that.
func decodeData(raw []byte, dt Datatype, hint, limit int) (Data, []int64, error) {
	switch dt {
	case BOOL:
		return walk(raw, dt, hint, limit, convBool)
	case UINT8:
		return walk(raw, dt, hint, limit, convUint[uint8](dt, math.MaxUint8))
	case UINT16:
		return walk(raw, dt, hint, limit, convUint[uint16](dt, math.MaxUint16))
	case UINT32:
		return walk(raw, dt, hint, limit, convUint[uint32](dt, math.MaxUint32))
	case UINT64:
		return walk(raw, dt, hint, limit, convUint[uint64](dt, math.MaxUint64))
	case INT8:
		return walk(raw, dt, hint, limit, convInt[int8](dt, math.MinInt8, math.MaxInt8))
	case INT16:
		return walk(raw, dt, hint, limit, convInt[int16](dt, math.MinInt16, math.MaxInt16))
	case INT32:
		return walk(raw, dt, hint, limit, convInt[int32](dt, math.MinInt32, math.MaxInt32))
	case INT64:
		return walk(raw, dt, hint, limit, convInt[int64](dt, math.MinInt64, math.MaxInt64))
	case FP16:
		return walk(raw, dt, hint, limit, convFloat32(dt, 65504))
	case FP32, BF16:
		return walk(raw, dt, hint, limit, convFloat32(dt, math.MaxFloat32))
	case FP64:
		return walk(raw, dt, hint, limit, convFloat64)
	case BYTES:
		return walk(raw, dt, hint, limit, convBytes)
	}
	return Data{}, nil, fmt.Errorf("datatype %q is not one of %s", dt, datatypeList)
}

func walk[T Element](raw []byte, dt Datatype, hint, limit int, conv func([]byte, bool) (T, error)) (Data, []int64, error) {
	w := walker[T]{b: raw, dt: dt, limit: limit, conv: conv, leaf: -1}
	// Trust the hint only as far as the body could hold that many elements
	// (each takes at least two bytes, "0,"), so a huge shape cannot make
	// us allocate.
	if hint > 0 && hint <= limit && hint <= len(raw)/2+1 {
		w.out = make([]T, 0, hint)
	}
	w.space()
	if w.pos < len(w.b) && w.b[w.pos] != '[' {
		// A lone scalar: the data of a tensor of shape [] or [1].
		if err := w.scalar(); err != nil {
			return Data{}, nil, err
		}
		if err := w.end(); err != nil {
			return Data{}, nil, err
		}
		return NewData(w.out), nil, nil
	}
	if err := w.value(0); err != nil {
		return Data{}, nil, err
	}
	if err := w.end(); err != nil {
		return Data{}, nil, err
	}
	shape := w.dims
	if w.leaf >= 0 {
		shape = shape[:w.leaf]
	}
	if w.out == nil {
		w.out = []T{}
	}
	return NewData(w.out), shape, nil
}

func (w *walker[T]) end() error {
	w.space()
	if w.pos != len(w.b) {
		return fmt.Errorf("has unexpected text after the data at offset %d", w.pos)
	}
	return nil
}

func (w *walker[T]) space() { w.pos = skipSpace(w.b, w.pos) }

// skipSpace returns the offset of the first byte at or after pos in b that
// is not JSON whitespace.
func skipSpace(b []byte, pos int) int {
	for pos < len(b) {
		switch b[pos] {
		case ' ', '\t', '\n', '\r':
			pos++
		default:
			return pos
		}
	}
	return pos
}

func (w *walker[T]) value(depth int) error {
	w.space()
	if w.pos >= len(w.b) {
		return errors.New("data ends early")
	}
	if w.b[w.pos] != '[' {
		if w.leaf < 0 {
			w.leaf = depth
		} else if w.leaf != depth {
			return fmt.Errorf("data is ragged: element %d sits at nesting depth %d, earlier ones at %d", len(w.out), depth, w.leaf)
		}
		return w.scalar()
	}
	if depth >= maxDepth {
		return fmt.Errorf("data nests deeper than %d levels", maxDepth)
	}
	if w.leaf >= 0 && depth >= w.leaf {
		return fmt.Errorf("data is ragged: an array at nesting depth %d where earlier elements were values", depth)
	}
	w.pos++
	var n int64
	w.space()
	if w.pos < len(w.b) && w.b[w.pos] == ']' {
		w.pos++
		return w.dim(depth, 0)
	}
	for {
		if err := w.value(depth + 1); err != nil {
			return err
		}
		n++
		w.space()
		if w.pos >= len(w.b) {
			return errors.New("data ends early")
		}
		switch w.b[w.pos] {
		case ',':
			w.pos++
		case ']':
			w.pos++
			return w.dim(depth, n)
		default:
			return fmt.Errorf("data has %q where ',' or ']' belongs at offset %d", w.b[w.pos], w.pos)
		}
	}
}

// dim records that an array at depth has n elements, and checks that the
// data is not ragged.
func (w *walker[T]) dim(depth int, n int64) error {
	for len(w.dims) <= depth {
		w.dims = append(w.dims, -1)
	}
	switch w.dims[depth] {
	case -1:
		w.dims[depth] = n
	case n:
	default:
		return fmt.Errorf("data is ragged: an array at nesting depth %d has %d elements, an earlier one %d", depth, n, w.dims[depth])
	}
	return nil
}

func (w *walker[T]) scalar() error {
	if len(w.out) >= w.limit {
		return errTooMany
	}
	start := w.pos
	var tok []byte
	str := false
	if w.b[w.pos] == '"' {
		end, err := stringEnd(w.b, w.pos)
		if err != nil {
			return err
		}
		tok, str, w.pos = w.b[start:end], true, end
	} else {
		for w.pos < len(w.b) {
			c := w.b[w.pos]
			if c == ',' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			w.pos++
		}
		tok = w.b[start:w.pos]
	}
	v, err := w.conv(tok, str)
	if err != nil {
		return fmt.Errorf("element %d: %w", len(w.out), err)
	}
	w.out = append(w.out, v)
	return nil
}

// stringEnd returns the offset just after the JSON string starting at i.
func stringEnd(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("data has an unterminated string at offset %d", i)
}

// str views b as a string without copying; only for parsing b in place.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// describe returns tok for an error message, shortened.
func describe(tok []byte, isStr bool) string {
	if isStr {
		return "a string"
	}
	if len(tok) > 32 {
		return string(tok[:32]) + "..."
	}
	return string(tok)
}

func convBool(tok []byte, isStr bool) (bool, error) {
	switch {
	case isStr:
	case str(tok) == "true":
		return true, nil
	case str(tok) == "false":
		return false, nil
	}
	return false, fmt.Errorf("want true or false for BOOL, got %s", describe(tok, isStr))
}

// integral parses tok as a number with no fractional part; it accepts 3,
// 3.0 and 3e2 alike (some encoders write integers that way).
func integral(tok []byte, dt Datatype) (float64, error) {
	f, err := strconv.ParseFloat(str(tok), 64)
	if err != nil || !validNumber(tok) {
		return 0, fmt.Errorf("want an integer for %s, got %s", dt, describe(tok, false))
	}
	if f != math.Trunc(f) {
		return 0, fmt.Errorf("want an integer for %s, got %s", dt, tok)
	}
	return f, nil
}

func convInt[T int8 | int16 | int32 | int64](dt Datatype, lo, hi int64) func([]byte, bool) (T, error) {
	return func(tok []byte, isStr bool) (T, error) {
		if isStr || !validNumber(tok) {
			return 0, fmt.Errorf("want an integer for %s, got %s", dt, describe(tok, isStr))
		}
		v, err := strconv.ParseInt(str(tok), 10, 64)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
				return 0, fmt.Errorf("%s is out of range for %s (%d to %d)", tok, dt, lo, hi)
			}
			f, ferr := integral(tok, dt)
			if ferr != nil {
				return 0, ferr
			}
			if f < float64(lo) || f >= -float64(lo) {
				return 0, fmt.Errorf("%s is out of range for %s (%d to %d)", tok, dt, lo, hi)
			}
			v = int64(f)
		}
		if v < lo || v > hi {
			return 0, fmt.Errorf("%s is out of range for %s (%d to %d)", tok, dt, lo, hi)
		}
		return T(v), nil
	}
}

func convUint[T uint8 | uint16 | uint32 | uint64](dt Datatype, hi uint64) func([]byte, bool) (T, error) {
	return func(tok []byte, isStr bool) (T, error) {
		if isStr || !validNumber(tok) {
			return 0, fmt.Errorf("want an integer for %s, got %s", dt, describe(tok, isStr))
		}
		v, err := strconv.ParseUint(str(tok), 10, 64)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
				return 0, fmt.Errorf("%s is out of range for %s (0 to %d)", tok, dt, hi)
			}
			f, ferr := integral(tok, dt)
			if ferr != nil {
				return 0, ferr
			}
			if f < 0 || f >= float64(hi)+1 {
				return 0, fmt.Errorf("%s is out of range for %s (0 to %d)", tok, dt, hi)
			}
			v = uint64(f)
		}
		if v > hi {
			return 0, fmt.Errorf("%s is out of range for %s (0 to %d)", tok, dt, hi)
		}
		return T(v), nil
	}
}

func convFloat32(dt Datatype, max float64) func([]byte, bool) (float32, error) {
	return func(tok []byte, isStr bool) (float32, error) {
		if isStr || !validNumber(tok) {
			return 0, fmt.Errorf("want a number for %s, got %s", dt, describe(tok, isStr))
		}
		f, err := strconv.ParseFloat(str(tok), 64)
		if err != nil || math.Abs(f) > max {
			return 0, fmt.Errorf("%s is out of range for %s (magnitude at most %g)", tok, dt, max)
		}
		return float32(f), nil
	}
}

func convFloat64(tok []byte, isStr bool) (float64, error) {
	if isStr || !validNumber(tok) {
		return 0, fmt.Errorf("want a number for FP64, got %s", describe(tok, isStr))
	}
	f, err := strconv.ParseFloat(str(tok), 64)
	if err != nil {
		return 0, fmt.Errorf("%s is out of range for FP64", tok)
	}
	return f, nil
}

func convBytes(tok []byte, isStr bool) (string, error) {
	if !isStr {
		return "", fmt.Errorf("want a string for BYTES, got %s", describe(tok, false))
	}
	inner := tok[1 : len(tok)-1]
	simple := true
	for _, c := range inner {
		if c == '\\' || c < 0x20 {
			simple = false
			break
		}
	}
	if simple && utf8.Valid(inner) {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return "", fmt.Errorf("invalid string: %v", err)
	}
	return s, nil
}

// validNumber reports whether tok is a number as JSON writes it (strconv
// also takes "inf", "0x10", "1_000" and a leading "+", which JSON does not).
func validNumber(tok []byte) bool {
	i := 0
	if i < len(tok) && tok[i] == '-' {
		i++
	}
	if i >= len(tok) {
		return false
	}
	switch {
	case tok[i] == '0':
		i++
	case tok[i] >= '1' && tok[i] <= '9':
		for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(tok) && tok[i] == '.' {
		i++
		j := i
		for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(tok) && (tok[i] == 'e' || tok[i] == 'E') {
		i++
		if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
			i++
		}
		j := i
		for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(tok)
}
