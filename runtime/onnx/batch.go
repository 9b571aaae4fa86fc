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
// answers every request on its own: a malformed request gets its own 400
// and never fails the others.
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
	for _, g := range groups {
		wg.Go(func() {
			if err := p.runGroup(ctx, g, resps); err != nil {
				// The run failed as a whole: serve each member on its
				// own, so each gets its own answer or error.
				slog.Warn("onnx: batched run failed; running its requests one by one", "requests", len(g), "err", err)
				for _, m := range g {
					wg.Go(func() { resps[m.i] = p.predictOne(ctx, reqs[m.i]) })
				}
			}
		})
	}
	for _, i := range alone {
		wg.Go(func() { resps[i] = p.predictOne(ctx, reqs[i]) })
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
	byKey := map[string]int{}
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
		m, key := p.member(i, ir)
		if m == nil {
			alone = append(alone, i)
			continue
		}
		g, ok := byKey[key]
		if !ok {
			g = len(groups)
			byKey[key] = g
			groups = append(groups, nil)
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

// member checks a decoded request as Predict would and returns it with the
// key of the group it can join; nil when Predict must serve it (it is then
// Predict that says what is wrong).
func (p *Predictor) member(i int, ir *oip.InferenceRequest) (*batchMember, string) {
	want, err := p.wanted(ir)
	if err != nil || len(ir.Inputs) != len(p.inputs) {
		return nil, ""
	}
	m := &batchMember{i: i, ir: ir, inputs: make([]*oip.RequestInput, len(p.inputs)), want: want, rows: -1}
	for j := range ir.Inputs {
		in := &ir.Inputs[j]
		idx := p.inputIndex(in.Name)
		if idx < 0 || m.inputs[idx] != nil {
			return nil, ""
		}
		model := &p.inputs[idx]
		if in.Datatype != model.Datatype || !model.Accepts(in.Shape) || len(in.Shape) == 0 || in.Shape[0] <= 0 {
			return nil, ""
		}
		if m.rows >= 0 && in.Shape[0] != m.rows {
			return nil, ""
		}
		m.rows = in.Shape[0]
		m.inputs[idx] = in
	}
	// The key: each input's shape past the batch dimension, then the
	// outputs wanted.
	key := make([]byte, 0, 64)
	for _, in := range m.inputs {
		for _, d := range in.Shape[1:] {
			key = strconv.AppendInt(key, d, 10)
			key = append(key, ',')
		}
		key = append(key, ';')
	}
	for _, w := range want {
		key = strconv.AppendBool(key, w)
		key = append(key, ',')
	}
	return m, string(key)
}

// runGroup concatenates the members' inputs, runs the model once and
// answers each member with its rows of the outputs.
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
	outputs := make([]ort.Value, len(p.outputs))
	defer destroyAll(outputs)
	if err := p.run(ctx, inputs, outputs); err != nil {
		return err
	}

	split := make([][]oip.ResponseOutput, len(g))
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
		stride := o.Data.Len() / int(total)
		var off int64
		for k, m := range g {
			shape := append([]int64{m.rows}, o.Shape[1:]...)
			d := sliceData(o.Data, int(off)*stride, int(off+m.rows)*stride)
			split[k] = append(split[k], oip.ResponseOutput{Name: o.Name, Shape: shape, Datatype: o.Datatype, Data: d})
			off += m.rows
		}
	}
	for k, m := range g {
		resp := oip.InferenceResponse{ModelName: p.name, ID: m.ir.ID, Outputs: split[k]}
		if resp.Outputs == nil {
			resp.Outputs = []oip.ResponseOutput{}
		}
		body, err := resp.MarshalJSON()
		if err != nil {
			return fmt.Errorf("encoding response: %w", err)
		}
		resps[m.i] = functions.Bytes(http.StatusOK, "application/json", body)
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
		return functions.Bytes(fe.Status, "application/json", functions.ErrorBody(fe.Message))
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
	s := make([][]T, len(parts))
	for i, d := range parts {
		v, ok := oip.Values[T](d)
		if !ok {
			return oip.Data{}, fmt.Errorf("mixed element types %T and %T", parts[0].Value(), d.Value())
		}
		s[i] = v
	}
	return oip.NewData(slices.Concat(s...)), nil
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
