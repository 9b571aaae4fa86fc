package onnx

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

// Routing: which loaded model version serves a request or a description,
// and the answers for a model or version that is not there.

// Predict routes the request to its model and version, loading it if it
// is not loaded. It takes OIP requests only: the runtime converts a KServe
// V1 request with the metadata DescribeModel gives for its model.
//
// A request whose context carries an oip.Pin in which DescribeModel held
// the session of the same model and version (the runtime's KServe V1
// conversion) is served by that session, the one its body was converted
// for, even if a reload has replaced it since.
func (r *Repository) Predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	inst := r.pinned(ctx, req.Model, req.Version)
	if inst == nil {
		var err error
		if inst, err = r.acquire(ctx, req.Model, req.Version); err != nil {
			return nil, err
		}
	}
	defer r.release(inst)
	return inst.p.Predict(ctx, req)
}

// DescribeModel returns the tensor metadata of a model version (the
// highest when version is empty), loading it if need be, for
// GET /v2/models/{name}[/versions/{v}] and the KServe V1 conversion.
// Versions lists the model's versions. When ctx carries an oip.Pin, the
// session described is held in it, for Predict.
func (r *Repository) DescribeModel(ctx context.Context, name, version string) (oip.ModelMetadata, error) {
	inst, err := r.acquire(ctx, name, version)
	if err != nil {
		return oip.ModelMetadata{}, err
	}
	md := inst.p.ModelMetadata()
	md.Name = name
	md.Versions = r.Versions(name)
	oip.PinFrom(ctx).Hold(&pin{repo: r, name: name, version: version, inst: inst}, func() { r.release(inst) })
	return md, nil
}

// pin is a session DescribeModel held in a request's oip.Pin, with its
// reference, under the model name and version the request gave.
type pin struct {
	repo          *Repository
	name, version string
	inst          *instance
}

// pinned returns the session ctx's oip.Pin holds for this model and
// version, with a reference of its own the caller must release; nil when
// there is none.
func (r *Repository) pinned(ctx context.Context, name, version string) *instance {
	p, ok := oip.PinFrom(ctx).Held().(*pin)
	if !ok || p.repo != r || p.name != name || p.version != version {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.inst.refs == 0 {
		return nil // the Pin was released meanwhile, and the session closed
	}
	p.inst.refs++
	return p.inst
}

// named is a version with the name of its model.
type named struct {
	*version
	name string
}

// lookup finds the version a request names, or the error to answer.
func (r *Repository) lookup(name, label string) (named, error) {
	if name == "" {
		switch {
		case r.opts.def != "":
			name = r.opts.def
		case len(r.names) == 1:
			name = r.names[0]
		default:
			return named{}, functions.Errorf(http.StatusBadRequest,
				"this function serves several models; name one with ?model=NAME, POST /v2/models/NAME/infer or POST /v1/models/NAME:predict: %s",
				quoteList(r.names))
		}
	}
	m := r.models[name]
	if m == nil {
		return named{}, oip.ModelNotFound(name, r.names)
	}
	if label == "" {
		label = m.order[len(m.order)-1]
	}
	v := m.versions[label]
	if v == nil {
		if m.order[0] == "" {
			return named{}, functions.Errorf(http.StatusNotFound, "model %q has no versions; call it without /versions/%s", name, label)
		}
		return named{}, functions.Errorf(http.StatusNotFound, "model %q has no version %q; its versions are %s", name, label, quoteList(m.order))
	}
	return named{v, name}, nil
}

// quoteList quotes each name and joins them with commas, for messages.
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
