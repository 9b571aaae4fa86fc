package onnx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// PredictBatch serves several inference requests with as few runs of the
// model as it can (the runtime calls it when batching is configured). It
// answers every request on its own: a malformed request gets its own 400,
// one that does not fit the model its own 422, and neither fails the
// others.
//
// Requests whose inputs agree on everything but the first (batch)
// dimension, and that ask for the same outputs, are concatenated along that
// dimension, run once, and the outputs split back by each request's row
// count. The rest run one by one, concurrently. Concatenating needs every
// model input and output to have a dynamic first dimension; for other
// models every request runs on its own.
func (p *Predictor) PredictBatch(ctx context.Context, reqs []*functions.Request) ([]*functions.Response, error) {
	resps := make([]*functions.Response, len(reqs))
	groups, alone, err := p.plan(reqs, resps)
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	serve := func(g []*batchMember) {
		if err := p.runGroup(ctx, g, resps); err != nil {
			// The run failed as a whole: serve each member on its
			// own, so each gets its own answer or error.
			slog.Warn("onnx: batched run failed; running its requests one by one", "requests", len(g), "err", err)
			for _, m := range g {
				wg.Go(func() { resps[m.i] = p.predictOne(ctx, reqs[m.i]) })
			}
		}
	}
	for _, i := range alone {
		wg.Go(func() { resps[i] = p.predictOne(ctx, reqs[i]) })
	}
	// The first group (usually the only one) runs on the caller's
	// goroutine, whose stack has grown already; only the others start
	// goroutines of their own.
	for _, g := range groups[min(1, len(groups)):] {
		wg.Go(func() { serve(g) })
	}
	if len(groups) > 0 {
		serve(groups[0])
	}
	wg.Wait()
	return resps, nil
}

// batchMember is a decoded request that can be concatenated with others.
type batchMember struct {
	i      int                   // index in the batch
	ir     *oip.InferenceRequest // decoded request
	inputs []*oip.RequestInput   // in the model's input order
	want   []bool                // outputs asked for
	rows   int64                 // first dimension, the same for every input
}

// plan decodes the requests and groups those that can run together.
// Requests that fail to decode are answered in resps; requests that cannot
// join a group are returned in alone, for Predict to serve and explain.
// The members' bookkeeping shares a few arrays allocated once per batch.
func (p *Predictor) plan(reqs []*functions.Request, resps []*functions.Response) (groups [][]*batchMember, alone []int, err error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.session == nil {
		return nil, nil, &functions.Error{Status: http.StatusServiceUnavailable, Message: "the model is not loaded"}
	}
	if !p.batchable() {
		for i := range reqs {
			alone = append(alone, i)
		}
		return nil, alone, nil
	}
	var (
		members = make([]batchMember, len(reqs))
		inputs  = make([]*oip.RequestInput, len(reqs)*len(p.inputs))
		wants   = make([]bool, len(reqs)*len(p.outputs))
		keys    [][]byte // each group's key
		key     []byte
	)
	for i, req := range reqs {
		if p.checkModel(req.Model) != nil {
			alone = append(alone, i) // for Predict to refuse
			continue
		}
		ir, err := oip.DecodeRequest(req.Body, p.maxElements)
		if err != nil {
			resps[i] = errorResponse(req, err)
			continue
		}
		m := &members[i]
		*m = batchMember{i: i, ir: ir, inputs: inputs[i*len(p.inputs) : (i+1)*len(p.inputs)], want: wants[i*len(p.outputs) : (i+1)*len(p.outputs)]}
		var ok bool
		if key, ok = p.member(m, key[:0]); !ok {
			alone = append(alone, i)
			continue
		}
		g := -1
		for j, k := range keys {
			if string(k) == string(key) {
				g = j
				break
			}
		}
		if g < 0 {
			g = len(groups)
			keys = append(keys, slices.Clone(key))
			groups = append(groups, make([]*batchMember, 0, len(reqs)-i))
		}
		groups[g] = append(groups[g], m)
	}
	return groups, alone, nil
}

// batchable reports whether every input and output has a dynamic first
// dimension, so requests can be stacked along it.
func (p *Predictor) batchable() bool {
	for _, ts := range [][]tensorInfo{p.inputs, p.outputs} {
		for _, t := range ts {
			if len(t.Shape) == 0 || t.Shape[0] >= 0 {
				return false
			}
		}
	}
	return true
}

// member checks m's decoded request as Predict would, fills in m's inputs,
// wanted outputs and rows, and appends to key the key of the group it can
// join. It reports false when Predict must serve the request (it is then
// Predict that says what is wrong).
func (p *Predictor) member(m *batchMember, key []byte) ([]byte, bool) {
	ir := m.ir
	if !p.wantInto(m.want, ir) || len(ir.Inputs) != len(p.inputs) {
		return key, false
	}
	m.rows = -1
	for j := range ir.Inputs {
		in := &ir.Inputs[j]
		idx := p.inputIndex(in.Name)
		if idx < 0 || m.inputs[idx] != nil {
			return key, false
		}
		model := &p.inputs[idx]
		if in.Datatype != model.Datatype || !model.Accepts(in.Shape) || len(in.Shape) == 0 || in.Shape[0] <= 0 {
			return key, false
		}
		if m.rows >= 0 && in.Shape[0] != m.rows {
			return key, false
		}
		m.rows = in.Shape[0]
		m.inputs[idx] = in
	}
	// The key: each input's shape past the batch dimension, then the
	// outputs wanted.
	for _, in := range m.inputs {
		for _, d := range in.Shape[1:] {
			key = strconv.AppendInt(key, d, 10)
			key = append(key, ',')
		}
		key = append(key, ';')
	}
	for _, w := range m.want {
		key = strconv.AppendBool(key, w)
		key = append(key, ',')
	}
	return key, true
}

// wantInto is wanted writing into want, which the batch's members share:
// false when the request names an output the model lacks (Predict then
// says so).
func (p *Predictor) wantInto(want []bool, ir *oip.InferenceRequest) bool {
	if len(ir.Outputs) == 0 {
		for i := range want {
			want[i] = true
		}
		return true
	}
	for _, o := range ir.Outputs {
		found := false
		for i, t := range p.outputs {
			if t.Name == o.Name {
				want[i], found = true, true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// jsonContentType is the Content-Type of every batched answer; each
// response gets its own header map holding it.
const jsonContentType = "application/json"

// runGroup concatenates the members' inputs, runs the model once and
// answers each member with its rows of the outputs.
//
// What it copies: each input once, from the members' decoded requests into
// the tensor the model reads (not at all for a group of one), and each
// output at most once, from ONNX Runtime into Go memory (not at all when
// runModel shapes the outputs before the run). The outputs are split by
// slicing, and every member's answer is encoded straight into one buffer
// the whole group shares, with one allocation for all their responses.
func (p *Predictor) runGroup(ctx context.Context, g []*batchMember, resps []*functions.Response) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.session == nil {
		return errors.New("the model is not loaded")
	}
	var total int64
	for _, m := range g {
		total += m.rows
	}
	inputs := make([]ort.Value, len(p.inputs))
	defer destroyAll(inputs)
	parts := make([]oip.Data, len(g))
	for idx := range p.inputs {
		for k, m := range g {
			parts[k] = m.inputs[idx].Data
		}
		data, err := concatData(parts)
		if err != nil {
			return fmt.Errorf("input %q: %w", p.inputs[idx].Name, err)
		}
		first := g[0].inputs[idx]
		in := oip.RequestInput{Name: first.Name, Datatype: first.Datatype,
			Shape: append([]int64{total}, first.Shape[1:]...), Data: data}
		if inputs[idx], err = newValue(&in); err != nil {
			return fmt.Errorf("input %q: %w", in.Name, err)
		}
	}
	outputs, err := p.runModel(ctx, inputs, total)
	if err != nil {
		return err
	}
	defer destroyAll(outputs)

	// The outputs asked for, whole; each member's answer is its rows.
	var whole []oip.ResponseOutput
	var strides []int
	size := 0
	for i, v := range outputs {
		if !g[0].want[i] {
			continue
		}
		o, err := toOutput(p.outputs[i].Name, v)
		if err != nil {
			return fmt.Errorf("output %q: %w", p.outputs[i].Name, err)
		}
		if len(o.Shape) == 0 || o.Shape[0] != total {
			return fmt.Errorf("output %q has shape %v, not %d rows", o.Name, o.Shape, total)
		}
		whole = append(whole, o)
		strides = append(strides, o.Data.Len()/int(total))
		size += 64 + 12*o.Data.Len()
	}
	// The members' answers share: buf, their bodies; shapes, their
	// outputs' shapes; rs and cts, their responses and Content-Type
	// values. One scratch response is encoded per member.
	rank := 0
	for _, o := range whole {
		rank += len(o.Shape)
	}
	buf := make([]byte, 0, size+len(g)*(64+len(p.name)))
	shapes := make([]int64, len(g)*rank)
	rs := make([]functions.Response, len(g))
	cts := make([]string, len(g))
	resp := oip.InferenceResponse{ModelName: p.name, Outputs: make([]oip.ResponseOutput, len(whole))}
	var off int64
	for k, m := range g {
		resp.ID = m.ir.ID
		sh := shapes[k*rank : (k+1)*rank]
		for j, o := range whole {
			shape := sh[:len(o.Shape):len(o.Shape)]
			sh = sh[len(o.Shape):]
			shape[0] = m.rows
			copy(shape[1:], o.Shape[1:])
			lo, hi := int(off)*strides[j], int(off+m.rows)*strides[j]
			resp.Outputs[j] = oip.ResponseOutput{Name: o.Name, Shape: shape, Datatype: o.Datatype, Data: sliceData(o.Data, lo, hi)}
		}
		off += m.rows
		start := len(buf)
		var err error
		if buf, err = resp.AppendJSON(buf); err != nil {
			return fmt.Errorf("encoding response: %w", err)
		}
		cts[k] = jsonContentType
		rs[k] = functions.Response{Status: http.StatusOK, Header: http.Header{"Content-Type": cts[k : k+1 : k+1]},
			Body: buf[start:len(buf):len(buf)]}
		resps[m.i] = &rs[k]
	}
	return nil
}

// predictOne serves one request of a batch with Predict, its error turned
// into that request's own response.
func (p *Predictor) predictOne(ctx context.Context, req *functions.Request) *functions.Response {
	resp, err := p.Predict(ctx, req)
	if err != nil {
		return errorResponse(req, err)
	}
	return resp
}

// errorResponse answers one request of a batch with err: its status and
// message when it carries them, else a 500 that keeps the details in the
// log.
func errorResponse(req *functions.Request, err error) *functions.Response {
	var fe *functions.Error
	if errors.As(err, &fe) && fe.Status >= 400 && fe.Status <= 599 {
		return functions.Bytes(fe.Status, "application/json", functions.ErrorBody(fe.Message, fe.Fields...))
	}
	slog.Error("onnx: prediction in a batch failed", "request_id", req.ID, "err", err)
	return functions.Bytes(http.StatusInternalServerError, "application/json",
		functions.ErrorBody("internal error (request id "+req.ID+")"))
}

// concatData joins tensors' elements in order. Every part holds the same
// element type: the members' datatypes all equal the model's.
func concatData(parts []oip.Data) (oip.Data, error) {
	switch parts[0].Value().(type) {
	case []float32:
		return concat[float32](parts)
	case []float64:
		return concat[float64](parts)
	case []int8:
		return concat[int8](parts)
	case []int16:
		return concat[int16](parts)
	case []int32:
		return concat[int32](parts)
	case []int64:
		return concat[int64](parts)
	case []uint8:
		return concat[uint8](parts)
	case []uint16:
		return concat[uint16](parts)
	case []uint32:
		return concat[uint32](parts)
	case []uint64:
		return concat[uint64](parts)
	case []bool:
		return concat[bool](parts)
	case []string:
		return concat[string](parts)
	}
	return oip.Data{}, fmt.Errorf("cannot concatenate %T data", parts[0].Value())
}

func concat[T oip.Element](parts []oip.Data) (oip.Data, error) {
	if len(parts) == 1 {
		return parts[0], nil // a group of one: its own data, not a copy
	}
	n := 0
	for _, d := range parts {
		v, ok := oip.Values[T](d)
		if !ok {
			return oip.Data{}, fmt.Errorf("mixed element types %T and %T", parts[0].Value(), d.Value())
		}
		n += len(v)
	}
	all := make([]T, 0, n)
	for _, d := range parts {
		v, _ := oip.Values[T](d)
		all = append(all, v...)
	}
	return oip.NewData(all), nil
}

// sliceData returns elements [lo, hi) of d, sharing its storage.
func sliceData(d oip.Data, lo, hi int) oip.Data {
	switch s := d.Value().(type) {
	case []float32:
		return oip.NewData(s[lo:hi:hi])
	case []float64:
		return oip.NewData(s[lo:hi:hi])
	case []int8:
		return oip.NewData(s[lo:hi:hi])
	case []int16:
		return oip.NewData(s[lo:hi:hi])
	case []int32:
		return oip.NewData(s[lo:hi:hi])
	case []int64:
		return oip.NewData(s[lo:hi:hi])
	case []uint8:
		return oip.NewData(s[lo:hi:hi])
	case []uint16:
		return oip.NewData(s[lo:hi:hi])
	case []uint32:
		return oip.NewData(s[lo:hi:hi])
	case []uint64:
		return oip.NewData(s[lo:hi:hi])
	case []bool:
		return oip.NewData(s[lo:hi:hi])
	case []string:
		return oip.NewData(s[lo:hi:hi])
	}
	return oip.Data{}
}

var _ functions.BatchPredictor = (*Predictor)(nil)
