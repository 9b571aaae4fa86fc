package oip

import (
	"bytes"
	"strconv"
)

// scanRequest is the fast path of DecodeRequest's envelope: it reads the
// common shape of an inference request (id, inputs with name, shape,
// datatype and numeric data, outputs with names) straight from the bytes,
// into the same wireRequest that encoding/json would produce, without
// encoding/json's reflection and second pass over the data.
//
// It accepts only what it can read exactly as encoding/json does, and
// reports ok=false for anything else: a key spelt another way (encoding/json
// matches keys without regard to case), a repeated key, parameters, a string
// with an escape or a byte outside printable ASCII, data holding anything
// but numbers and arrays, a null, whitespace or nesting out of the ordinary.
// The caller then decodes with encoding/json, which also words every error:
// the fast path never produces an error message of its own.
//
// Data is a sub-slice of body, not a copy: decodeData copies the elements.
func scanRequest(body []byte) (w wireRequest, ok bool) {
	s := scanner{b: body}
	var seen uint8
	const (
		sawID = 1 << iota
		sawInputs
		sawOutputs
	)
	ok = s.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			if !firstTime(&seen, sawID) {
				return false
			}
			id, ok := s.str()
			w.ID = string(id)
			return ok
		case "inputs":
			if !firstTime(&seen, sawInputs) {
				return false
			}
			w.Inputs = make([]wireInput, 0, 1)
			return s.array(func() bool {
				in, ok := s.input()
				w.Inputs = append(w.Inputs, in)
				return ok
			})
		case "outputs":
			if !firstTime(&seen, sawOutputs) {
				return false
			}
			w.Outputs = []RequestOutput{}
			return s.array(func() bool {
				var o RequestOutput
				var named bool
				ok := s.object(func(key []byte) bool {
					if string(key) != "name" || named {
						return false
					}
					named = true
					name, ok := s.str()
					o.Name = string(name)
					return ok
				})
				w.Outputs = append(w.Outputs, o)
				return ok
			})
		}
		return false
	})
	s.space()
	return w, ok && s.pos == len(s.b)
}

// scanner reads JSON from b at pos. Every method reports false for input
// it does not take, leaving the decision to encoding/json.
type scanner struct {
	b   []byte
	pos int
}

// firstTime marks key bit in seen and reports whether it was not marked
// yet: a repeated key is left to encoding/json.
func firstTime(seen *uint8, bit uint8) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

func (s *scanner) space() { s.pos = skipSpace(s.b, s.pos) }

// next skips space and reports whether the next byte is c, consuming it.
func (s *scanner) next(c byte) bool {
	s.space()
	if s.pos < len(s.b) && s.b[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// object reads an object, calling member after each key and its colon to
// read the value.
func (s *scanner) object(member func(key []byte) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		key, ok := s.str()
		if !ok || !s.next(':') || !member(key) {
			return false
		}
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// array reads an array, calling elem to read each element.
func (s *scanner) array(elem func() bool) bool {
	if !s.next('[') {
		return false
	}
	if s.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.next(']') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// str reads a string of printable ASCII without escapes, which reads the
// same in every decoder.
func (s *scanner) str() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	start := s.pos
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		switch {
		case c == '"':
			s.pos++
			return s.b[start : s.pos-1], true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return nil, false
		}
		s.pos++
	}
	return nil, false
}

// number reads a number as JSON spells it and returns its text.
func (s *scanner) number() ([]byte, bool) {
	s.space()
	start := s.pos
	if s.pos < len(s.b) && s.b[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.b) && s.b[s.pos] == '0':
		s.pos++
	case s.digits() == 0:
		return nil, false
	}
	if s.pos < len(s.b) && s.b[s.pos] == '.' {
		s.pos++
		if s.digits() == 0 {
			return nil, false
		}
	}
	if s.pos < len(s.b) && (s.b[s.pos] == 'e' || s.b[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.b) && (s.b[s.pos] == '+' || s.b[s.pos] == '-') {
			s.pos++
		}
		if s.digits() == 0 {
			return nil, false
		}
	}
	return s.b[start:s.pos], true
}

func (s *scanner) digits() int {
	n := 0
	for s.pos < len(s.b) && s.b[s.pos] >= '0' && s.b[s.pos] <= '9' {
		s.pos++
		n++
	}
	return n
}

// input reads one element of inputs.
func (s *scanner) input() (in wireInput, ok bool) {
	var seen uint8
	const (
		sawName = 1 << iota
		sawShape
		sawDatatype
		sawData
	)
	ok = s.object(func(key []byte) bool {
		switch string(key) {
		case "name":
			if !firstTime(&seen, sawName) {
				return false
			}
			name, ok := s.str()
			in.Name = string(name)
			return ok
		case "datatype":
			if !firstTime(&seen, sawDatatype) {
				return false
			}
			dt, ok := s.str()
			in.Datatype = datatypeOf(dt)
			return ok
		case "shape":
			if !firstTime(&seen, sawShape) {
				return false
			}
			in.Shape = make([]int64, 0, 4)
			return s.array(func() bool {
				num, ok := s.number()
				if !ok || bytes.ContainsAny(num, ".eE") {
					return false // encoding/json refuses a fraction for an int64
				}
				d, err := strconv.ParseInt(string(num), 10, 64)
				in.Shape = append(in.Shape, d)
				return err == nil
			})
		case "data":
			if !firstTime(&seen, sawData) {
				return false
			}
			s.space()
			start := s.pos
			if !s.numbers(0) {
				return false
			}
			in.Data = s.b[start:s.pos]
			return true
		}
		return false
	})
	return in, ok
}

// maxScanDepth is how deeply nested data the fast path reads; deeper data
// is left to encoding/json.
const maxScanDepth = 8

// numbers reads a number or an array, nested up to maxScanDepth, of
// numbers.
func (s *scanner) numbers(depth int) bool {
	s.space()
	if s.pos < len(s.b) && s.b[s.pos] == '[' {
		if depth == maxScanDepth {
			return false
		}
		return s.array(func() bool { return s.numbers(depth + 1) })
	}
	_, ok := s.number()
	return ok
}

// datatypeOf is Datatype(b) without an allocation for the names of the
// datatypes.
func datatypeOf(b []byte) Datatype {
	for _, d := range datatypes {
		if string(d) == string(b) {
			return d
		}
	}
	return Datatype(b)
}
