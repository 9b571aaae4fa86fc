// Command fn is the function binary the Lambda end-to-end test runs: a
// predictor served by runtime.Main, exactly as a packaged function's
// generated main serves one. With AWS_LAMBDA_RUNTIME_API set, runtime.Main
// picks the Lambda carrier.
//
// The predictor reads {"op": ..., "n": ...} from the body, which must be
// JSON (a body that is not is a 400, as functions.DecodeJSON words it):
//
//	echo (default)  200 JSON describing the request it saw
//	fail            422 through a functions.Error
//	panic           panics
//	sleep           waits for the deadline
//	big             200 text/plain of n bytes
//	stream          streams n chunks "chunk i\n" (functions.Streamer); after
//	                the first it waits until the file named by "gate"
//	                exists, when one is named; "fail": true fails after
//	                the second chunk
//
// $CORTEX_CONFIG (the runtime's config) bounds request bodies;
// $CORTEX_TEST_INIT_ERROR makes Init fail with that message.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
)

func main() {
	runtime.Main(predictor{})
}

type predictor struct{}

func (predictor) Init(context.Context, functions.Config) error {
	if msg := os.Getenv("CORTEX_TEST_INIT_ERROR"); msg != "" {
		return errors.New(msg)
	}
	return nil
}

func (p predictor) Predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	if bytes.Contains(req.Body, []byte(`"stream"`)) {
		return functions.Collect(ctx, p, req)
	}
	return predict(ctx, req)
}

func (predictor) PredictStream(ctx context.Context, req *functions.Request, s functions.Stream) error {
	var in struct {
		Op   string `json:"op"`
		N    int    `json:"n"`
		Gate string `json:"gate"`
		Fail bool   `json:"fail"`
	}
	var doc any
	if err := functions.DecodeJSON(req.Body, &doc); err != nil {
		return err
	}
	_ = json.Unmarshal(req.Body, &in)
	if in.Op != "stream" {
		resp, err := predict(ctx, req)
		if err != nil {
			return err
		}
		s.Header().Set("Content-Type", resp.ContentType())
		return s.Send(resp.Body)
	}
	s.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for i := range in.N {
		if i == 2 && in.Fail {
			return functions.Errorf(http.StatusUnprocessableEntity, "cannot go on after %d chunks", i)
		}
		if err := s.Send(fmt.Appendf(nil, "chunk %d\n", i)); err != nil {
			return err
		}
		for i == 0 && in.Gate != "" {
			if _, err := os.Stat(in.Gate); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return nil
}

func predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	// The body must be JSON, as for a typed predictor: a body that is not
	// is a 400 that says why, the same on every carrier.
	var doc any
	if err := functions.DecodeJSON(req.Body, &doc); err != nil {
		return nil, err
	}
	var in struct {
		Op string `json:"op"`
		N  int    `json:"n"`
	}
	_ = json.Unmarshal(req.Body, &in)
	switch in.Op {
	case "fail":
		return nil, functions.Errorf(http.StatusUnprocessableEntity, "cannot classify this input")
	case "panic":
		panic("predictor exploded")
	case "sleep":
		<-ctx.Done()
		return nil, ctx.Err()
	case "big":
		return functions.Text(http.StatusOK, string(bytes.Repeat([]byte("a"), in.N))), nil
	}
	return functions.JSON(http.StatusOK, map[string]any{
		"method": req.Method, "path": req.Path, "query": req.Query, "body": string(req.Body),
		"id": req.ID, "carrier": req.Carrier, "attributes": req.Attributes,
	})
}
