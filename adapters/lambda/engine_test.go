package lambda_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/functions"
)

// testEngine is a small but real adapters.Engine over a predictor: it
// enforces MaxBody, recovers a predictor's panic as a 500, turns the
// context's deadline into a 504 and passes a functions.Error's status on.
// It is enough to drive the carrier; the real engine (*runtime.Runtime, with
// queues, metrics and WebAssembly stages) is tested in package runtime.
type testEngine struct {
	p       functions.Predictor
	maxBody int64

	mu   sync.Mutex
	last *functions.Request // the last request the predictor saw
}

func newTestEngine(p functions.PredictorFunc) *testEngine {
	return &testEngine{p: p, maxBody: 6 << 20}
}

func (e *testEngine) Name() string   { return "fn" }
func (e *testEngine) MaxBody() int64 { return e.maxBody }
func (e *testEngine) Ready() bool    { return true }

func (e *testEngine) Invoke(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	if int64(len(req.Body)) > e.maxBody {
		return nil, adapters.TooLarge(int64(len(req.Body)), e.maxBody)
	}
	e.mu.Lock()
	e.last = req
	e.mu.Unlock()
	type result struct {
		resp *functions.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- result{err: &functions.Error{Status: http.StatusInternalServerError,
					Message: "internal error: the predictor panicked (request id " + req.ID + ")"}}
			}
		}()
		resp, err := e.p.Predict(ctx, req)
		done <- result{resp, err}
	}()
	select {
	case r := <-done:
		if r.err == nil {
			return r.resp, nil
		}
		var fe *functions.Error
		if errors.As(r.err, &fe) {
			return nil, fe
		}
		return nil, &functions.Error{Status: http.StatusInternalServerError, Message: "internal error (request id " + req.ID + ")", Err: r.err}
	case <-ctx.Done():
		return nil, &functions.Error{Status: http.StatusGatewayTimeout, Message: fmt.Sprintf("prediction did not finish in time: %v", ctx.Err())}
	}
}

func (e *testEngine) lastRequest() *functions.Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

var _ adapters.Engine = (*testEngine)(nil)
