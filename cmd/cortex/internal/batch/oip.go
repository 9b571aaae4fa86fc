package batch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// Packing rows of Open Inference Protocol (v2) requests into one request
// (--batch): a function's answer to a request costs far more than the
// model's work on an iris row, so a job of small rows is as fast as the
// requests it sends. Rows pack when they are OIP requests alike but for
// their data and id: the same inputs (names, datatypes, parameters, shape
// but the first dimension), the same parameters and requested outputs.
// Their data are joined along the first dimension, and each output of the
// answer, whose first dimension must be the rows' total, is split back:
// each row gets the answer it would have had alone (its id included), the
// data's numbers as the function wrote them.

// oipRequest is an OIP inference request; anything else in a row's JSON
// makes it a row that does not pack.
type oipRequest struct {
	ID         string          `json:"id,omitempty"`
	Parameters json.RawMessage `json:"parameters,omitempty"`
	Inputs     []oipTensor     `json:"inputs"`
	Outputs    json.RawMessage `json:"outputs,omitempty"`
}

// oipTensor is an input or output tensor; Data is kept as its text.
type oipTensor struct {
	Name       string          `json:"name"`
	Datatype   string          `json:"datatype"`
	Shape      []int64         `json:"shape"`
	Parameters json.RawMessage `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// oipResponse is an OIP inference response.
type oipResponse struct {
	ModelName    string          `json:"model_name"`
	ModelVersion string          `json:"model_version,omitempty"`
	ID           string          `json:"id,omitempty"`
	Parameters   json.RawMessage `json:"parameters,omitempty"`
	Outputs      []oipTensor     `json:"outputs"`
}

var errNoPack = errors.New("the rows are not OIP requests that pack")

func strictDecode(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}

// packed is a request made of several rows, and what splitting its answer
// needs.
type packed struct {
	body []byte
	rows []int64  // each row's first dimension
	ids  []string // each row's id
}

// skeletons remembers decoded skeletons, read-only once decoded: a job's
// rows, and the answers to its full batches, mostly share one, and
// decoding it would be most of what packing a row or splitting an answer
// costs besides copying. A nil *skeletons remembers nothing.
type skeletons[T any] struct {
	mu sync.Mutex
	m  map[string]*T
}

func (c *skeletons[T]) get(skel []byte) *T {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[string(skel)]
}

func (c *skeletons[T]) put(skel []byte, v *T) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= 64 {
		c.m = map[string]*T{}
	}
	c.m[string(skel)] = v
}

// decodeTensors decodes b, an OIP request or response whose tensors are
// in its top-level array key, and returns it with each tensor's data. The
// data are found by skeleton and the rest decoded, or taken from prev's
// (the previous row's skeleton, decoded as prevV) or the cache; when the
// skeleton does not account for every tensor, b is decoded whole. v is
// shared: it must not be changed.
func decodeTensors[T any](b []byte, key string, cache *skeletons[T], tensors func(*T) []oipTensor, prev []byte, prevV *T, skelBuf []byte) (v *T, data [][]byte, skel []byte, err error) {
	if skelBuf == nil {
		skelBuf = make([]byte, 0, min(len(b), 512))
	}
	skel, spans, ok := skeleton(b, key, skelBuf[:0], make([][2]int, 0, 4))
	if ok {
		spanData := func() [][]byte {
			data := make([][]byte, len(spans))
			for j, sp := range spans {
				data[j] = b[sp[0]:sp[1]]
			}
			return data
		}
		if prev != nil && bytes.Equal(skel, prev) {
			return prevV, spanData(), skel, nil
		}
		if v := cache.get(skel); v != nil {
			return v, spanData(), skel, nil
		}
		v := new(T)
		if strictDecode(skel, v) == nil {
			ts := tensors(v)
			fits := len(ts) == len(spans)
			for j := 0; fits && j < len(ts); j++ {
				fits = string(ts[j].Data) == dataPlaceholder
			}
			if fits {
				cache.put(skel, v)
				return v, spanData(), skel, nil
			}
		}
	}
	v = new(T)
	if err := strictDecode(b, v); err != nil {
		return nil, nil, nil, err
	}
	ts := tensors(v)
	data = make([][]byte, len(ts))
	for j := range ts {
		data[j] = ts[j].Data
	}
	return v, data, nil, nil
}

func requestTensors(r *oipRequest) []oipTensor   { return r.Inputs }
func responseTensors(r *oipResponse) []oipTensor { return r.Outputs }

// pack joins bodies, each an OIP request, into one. It returns errNoPack
// (wrapped) when they do not pack.
func pack(bodies [][]byte, cache *skeletons[oipRequest]) (*packed, error) {
	metas := make([]*oipRequest, len(bodies))
	data := make([][][]byte, len(bodies))
	var prev []byte
	bufs := [2][]byte{make([]byte, 0, 512), make([]byte, 0, 512)} // this row's skeleton and the previous one's
	for i, b := range bodies {
		var prevV *oipRequest
		if i > 0 {
			prevV = metas[i-1]
		}
		r, d, skel, err := decodeTensors(b, "inputs", cache, requestTensors, prev, prevV, bufs[i%2])
		if err != nil {
			return nil, fmt.Errorf("%w: row %d: %v", errNoPack, i, err)
		}
		metas[i] = r
		if len(r.Inputs) == 0 || len(d) != len(r.Inputs) {
			return nil, fmt.Errorf("%w: row %d has no inputs", errNoPack, i)
		}
		data[i], prev = d, skel
		if skel != nil {
			bufs[i%2] = skel[:0]
		}
	}
	first := metas[0]
	p := &packed{rows: make([]int64, len(metas)), ids: make([]string, len(metas))}
	var total int64
	for i, r := range metas {
		if i == 0 || r != metas[i-1] {
			if len(r.Inputs) != len(first.Inputs) || !bytes.Equal(r.Parameters, first.Parameters) || !bytes.Equal(r.Outputs, first.Outputs) {
				return nil, fmt.Errorf("%w: row %d differs from row 0 in its inputs, parameters or outputs", errNoPack, i)
			}
			for j, in := range r.Inputs {
				f := first.Inputs[j]
				if in.Name != f.Name || in.Datatype != f.Datatype || !bytes.Equal(in.Parameters, f.Parameters) || !sameRest(in.Shape, f.Shape) {
					return nil, fmt.Errorf("%w: row %d's input %q differs from row 0's", errNoPack, i, in.Name)
				}
				if in.Shape[0] != r.Inputs[0].Shape[0] {
					return nil, fmt.Errorf("%w: row %d's inputs have different first dimensions", errNoPack, i)
				}
			}
		}
		p.rows[i] = r.Inputs[0].Shape[0]
		p.ids[i] = r.ID
		total += p.rows[i]
	}

	var b bytes.Buffer
	size := 64
	for _, body := range bodies {
		size += len(body)
	}
	b.Grow(size)
	b.WriteByte('{')
	if len(first.Parameters) > 0 {
		b.WriteString(`"parameters":`)
		b.Write(first.Parameters)
		b.WriteByte(',')
	}
	b.WriteString(`"inputs":[`)
	var elems [][]byte
	for j, f := range first.Inputs {
		if j > 0 {
			b.WriteByte(',')
		}
		per := elements(f.Shape[1:])
		b.WriteString(`{"name":`)
		writeString(&b, f.Name)
		b.WriteString(`,"datatype":`)
		writeString(&b, f.Datatype)
		b.WriteString(`,"shape":[`)
		b.WriteString(strconv.FormatInt(total, 10))
		for _, d := range f.Shape[1:] {
			b.WriteByte(',')
			b.WriteString(strconv.FormatInt(d, 10))
		}
		b.WriteByte(']')
		if len(f.Parameters) > 0 {
			b.WriteString(`,"parameters":`)
			b.Write(f.Parameters)
		}
		b.WriteString(`,"data":[`)
		n := 0
		for i := range metas {
			var err error
			if elems, err = flatData(data[i][j], elems[:0]); err != nil {
				return nil, fmt.Errorf("%w: row %d's input %q: %v", errNoPack, i, f.Name, err)
			}
			if int64(len(elems)) != per*p.rows[i] {
				return nil, fmt.Errorf("%w: row %d's input %q has %d elements, its shape says %d", errNoPack, i, f.Name, len(elems), per*p.rows[i])
			}
			for _, e := range elems {
				if n > 0 {
					b.WriteByte(',')
				}
				b.Write(e)
				n++
			}
		}
		b.WriteString("]}")
	}
	b.WriteByte(']')
	if len(first.Outputs) > 0 {
		b.WriteString(`,"outputs":`)
		b.Write(first.Outputs)
	}
	b.WriteByte('}')
	p.body = b.Bytes()
	return p, nil
}

// split splits the answer to p into each row's answer, compact JSON, and
// returns each row's line: what lineHead appends for row i, the answer, then
// tail.
func (p *packed) split(body []byte, cache *skeletons[oipResponse], lineHead func(dst []byte, i int) []byte, tail string) ([][]byte, error) {
	resp, data, _, err := decodeTensors(body, "outputs", cache, responseTensors, nil, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("the answer to a packed request is not an OIP response: %w", err)
	}
	var total int64
	for _, r := range p.rows {
		total += r
	}
	flat := make([][][]byte, len(resp.Outputs))
	for k, o := range resp.Outputs {
		if len(o.Shape) == 0 || o.Shape[0] != total {
			return nil, fmt.Errorf("output %q has shape %v: its first dimension is not the %d rows sent", o.Name, o.Shape, total)
		}
		var err error
		if flat[k], err = flatData(data[k], make([][]byte, 0, total*max(elements(o.Shape[1:]), 0))); err != nil {
			return nil, fmt.Errorf("output %q: %w", o.Name, err)
		}
		if int64(len(flat[k])) != total*elements(o.Shape[1:]) {
			return nil, fmt.Errorf("output %q has %d elements, its shape %v says %d", o.Name, len(flat[k]), o.Shape, total*elements(o.Shape[1:]))
		}
	}
	// What every row's answer has in common, written once: the head
	// before its id, the head after it, and each output's text before its
	// first dimension, and from its other dimensions to its data.
	var head, mid bytes.Buffer
	head.WriteString(`{"model_name":`)
	writeString(&head, resp.ModelName)
	if resp.ModelVersion != "" {
		head.WriteString(`,"model_version":`)
		writeString(&head, resp.ModelVersion)
	}
	if len(resp.Parameters) > 0 {
		mid.WriteString(`,"parameters":`)
		if err := json.Compact(&mid, resp.Parameters); err != nil {
			return nil, err
		}
	}
	mid.WriteString(`,"outputs":[`)
	pre := make([][]byte, len(resp.Outputs))
	post := make([][]byte, len(resp.Outputs))
	pers := make([]int64, len(resp.Outputs))
	for k, o := range resp.Outputs {
		var b bytes.Buffer
		if k > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"name":`)
		writeString(&b, o.Name)
		b.WriteString(`,"datatype":`)
		writeString(&b, o.Datatype)
		b.WriteString(`,"shape":[`)
		pre[k] = bytes.Clone(b.Bytes())
		b.Reset()
		for _, d := range o.Shape[1:] {
			b.WriteByte(',')
			b.WriteString(strconv.FormatInt(d, 10))
		}
		b.WriteByte(']')
		if len(o.Parameters) > 0 {
			b.WriteString(`,"parameters":`)
			if err := json.Compact(&b, o.Parameters); err != nil {
				return nil, err
			}
		}
		b.WriteString(`,"data":[`)
		post[k] = bytes.Clone(b.Bytes())
		pers[k] = elements(o.Shape[1:])
	}
	size := len(body) + len(p.rows)*(head.Len()+mid.Len()+len(tail)+64)
	for k := range pre {
		size += len(p.rows) * (len(pre[k]) + len(post[k]) + 24)
	}
	for _, id := range p.ids {
		size += len(id) + 8
	}
	all := make([]byte, 0, size)
	out := make([][]byte, len(p.rows))
	var start int64
	for i, rows := range p.rows {
		begin := len(all)
		all = lineHead(all, i)
		all = append(all, head.Bytes()...)
		if p.ids[i] != "" {
			var b bytes.Buffer
			b.WriteString(`,"id":`)
			writeString(&b, p.ids[i])
			all = append(all, b.Bytes()...)
		}
		all = append(all, mid.Bytes()...)
		for k := range resp.Outputs {
			all = append(all, pre[k]...)
			all = strconv.AppendInt(all, rows, 10)
			all = append(all, post[k]...)
			for n, e := range flat[k][start*pers[k] : (start+rows)*pers[k]] {
				if n > 0 {
					all = append(all, ',')
				}
				all = append(all, e...)
			}
			all = append(all, "]}"...)
		}
		all = append(all, "]}"...)
		all = append(all, tail...)
		out[i] = all[begin:len(all):len(all)]
		start += rows
	}
	return out, nil
}

// sameRest reports whether two shapes have the same dimensions but the
// first, and a first one above 0.
func sameRest(a, b []int64) bool {
	if len(a) == 0 || len(a) != len(b) || a[0] < 1 {
		return false
	}
	for i := 1; i < len(a); i++ {
		if a[i] != b[i] || a[i] < 1 {
			return false
		}
	}
	return true
}

func elements(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}

// flatData appends to dst the elements of data, a JSON array of scalars
// nested to any depth (OIP allows row-major data flat or nested), each as
// its text in data. It checks the array's syntax as a JSON parser would
// (a row it packs is sent without another check).
func flatData(data []byte, dst [][]byte) ([][]byte, error) {
	i := ws(data, 0)
	dst, i, err := flatArray(data, i, dst)
	if err != nil {
		return nil, err
	}
	if ws(data, i) != len(data) {
		return nil, errors.New("data: trailing bytes after the array")
	}
	return dst, nil
}

func flatArray(b []byte, i int, dst [][]byte) ([][]byte, int, error) {
	if i >= len(b) || b[i] != '[' {
		return nil, 0, errors.New("data is not an array of scalars")
	}
	i = ws(b, i+1)
	if i < len(b) && b[i] == ']' {
		return dst, i + 1, nil
	}
	for {
		var err error
		switch {
		case i >= len(b):
			return nil, 0, errors.New("data: the array ends early")
		case b[i] == '[':
			if dst, i, err = flatArray(b, i, dst); err != nil {
				return nil, 0, err
			}
		default:
			j := scalarEnd(b, i)
			if j < 0 {
				return nil, 0, fmt.Errorf("data: not a JSON scalar at byte %d", i)
			}
			dst = append(dst, b[i:j])
			i = j
		}
		i = ws(b, i)
		if i >= len(b) {
			return nil, 0, errors.New("data: the array ends early")
		}
		switch b[i] {
		case ',':
			i = ws(b, i+1)
		case ']':
			return dst, i + 1, nil
		default:
			return nil, 0, fmt.Errorf("data: want , or ] at byte %d", i)
		}
	}
}

// scalarEnd returns the end of the JSON number, string, true, false or
// null at b[i], or -1 when there is none.
func scalarEnd(b []byte, i int) int {
	switch c := b[i]; {
	case c == '"':
		j := skipString(b, i)
		if j < 0 || !json.Valid(b[i:j]) {
			return -1
		}
		return j
	case c == 't' && bytes.HasPrefix(b[i:], []byte("true")):
		return i + 4
	case c == 'f' && bytes.HasPrefix(b[i:], []byte("false")):
		return i + 5
	case c == 'n' && bytes.HasPrefix(b[i:], []byte("null")):
		return i + 4
	}
	// A number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	digits := func() bool {
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j > k
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case !digits():
		return -1
	}
	if j < len(b) && b[j] == '.' {
		j++
		if !digits() {
			return -1
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if !digits() {
			return -1
		}
	}
	return j
}

// writeString writes s as a JSON string, as encoding/json does.
func writeString(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			b.Write(q)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}
