package onnx_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
	"github.com/cortexfn/cortex/runtime/onnx"
)

func TestRepositoryRoutes(t *testing.T) {
	dir := repoTree(t, "iris/1/model.onnx", "iris/2/model.onnx", "setosa/model.onnx")
	srv, rt := serveRepo(t, dir, onnx.NewRepository(onnx.WithModelsDir("models"), onnx.WithPollInterval(-1)))

	if got, want := rt.Models(), []string{"iris", "setosa"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Models: got %v, want %v", got, want)
	}
	tests := []struct {
		name       string
		method     string
		path, body string
		status     int
		want       string // substring of the body
	}{
		{"query parameter", "POST", "/predict?model=setosa", repoRow, 200, `"model_name":"setosa"`},
		{"query parameter, other model", "POST", "/?model=iris", repoRow, 200, `"model_name":"iris"`},
		{"OIP path", "POST", "/v2/models/iris/infer", repoRow, 200, `"model_name":"iris"`},
		{"OIP path with a version", "POST", "/v2/models/iris/versions/1/infer", repoRow, 200, `"model_name":"iris"`},
		{"KServe V1 path", "POST", "/v1/models/setosa:predict", `{"instances":[[5.1,3.5,1.4,0.2],[6.3,3.3,6.0,2.5]]}`, 200, `{"predictions":[0,2]}`},
		{"unknown model, OIP", "POST", "/v2/models/rose/infer", repoRow, 404, `model \"rose\" not found; this function serves \"iris\", \"setosa\"`},
		{"unknown model, query", "POST", "/predict?model=rose", repoRow, 404, `this function serves \"iris\", \"setosa\"`},
		{"unknown model, V1", "POST", "/v1/models/rose:predict", `{"instances":[[1,2,3,4]]}`, 404, `this function serves \"iris\", \"setosa\"`},
		{"unknown version", "POST", "/v2/models/iris/versions/7/infer", repoRow, 404, `model \"iris\" has no version \"7\"; its versions are \"1\", \"2\"`},
		{"version of an unversioned model", "POST", "/v2/models/setosa/versions/1/infer", repoRow, 404, `model \"setosa\" has no versions`},
		{"no model named", "POST", "/predict", repoRow, 400, `this function serves several models; name one with ?model=NAME`},
		{"input that does not fit the model", "POST", "/v2/models/iris/infer", `{"inputs":[{"name":"input","shape":[1,5],"datatype":"FP32","data":[1,2,3,4,5]}]}`, 422, `$.inputs[0].shape: [1,5] does not match the model's [-1,4]`},
		{"metadata", "GET", "/v2/models/iris", "", 200, `"versions":["1","2"]`},
		{"metadata of a version", "GET", "/v2/models/iris/versions/2", "", 200, `"inputs":[{"name":"input","datatype":"FP32","shape":[-1,4]}]`},
		{"metadata of an unknown model", "GET", "/v2/models/rose", "", 404, `this function serves \"iris\", \"setosa\"`},
		{"metadata of an unknown version", "GET", "/v2/models/iris/versions/9", "", 404, `has no version \"9\"`},
		{"model ready", "GET", "/v2/models/setosa/ready", "", 200, `"ready":true`},
		{"V1 status", "GET", "/v1/models/iris", "", 200, `"ready":true`},
		{"V1 status, unknown", "GET", "/v1/models/rose", "", 404, `this function serves \"iris\", \"setosa\"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := repoCall(t, tt.method, srv.URL+tt.path, tt.body)
			if got.status != tt.status || !strings.Contains(got.raw, tt.want) {
				t.Errorf("%s %s: got %d %s\nwant %d with %s", tt.method, tt.path, got.status, got.raw, tt.status, tt.want)
			}
		})
	}
}

// TestRepositoryPredictDirect checks the answers of Predict itself, without
// the runtime in front: 404 for an unknown model, a default model for
// requests that name none.
func TestRepositoryPredictDirect(t *testing.T) {
	dir := repoTree(t, "a/m.onnx", "b/m.onnx")
	p := onnx.NewRepository(onnx.WithModel("a", "models/a/m.onnx"), onnx.WithModel("b", "models/b"),
		onnx.WithDefaultModel("b"), onnx.WithPollInterval(-1))
	if err := p.Init(context.Background(), functions.Config{Name: "fn", Dir: dir}); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	_, err := p.Predict(ctx, &functions.Request{Model: "c", Body: []byte(repoRow)})
	if got := functions.StatusOf(err); got != http.StatusNotFound || !strings.Contains(err.Error(), `serves "a", "b"`) {
		t.Errorf("unknown model: got %d %v, want 404 naming a and b", got, err)
	}
	resp, err := p.Predict(ctx, &functions.Request{Body: []byte(repoRow)})
	if err != nil || !bytes.Contains(resp.Body, []byte(`"model_name":"b"`)) {
		t.Errorf("no model named: got %v %s, want the default model b", err, resp.Body)
	}
}

// TestRepositoryPinnedVersion: the runtime converts a KServe V1 request
// with the description of its model, then predicts, with an oip.Pin in
// the context of both. A new version taken up in between does not serve
// that prediction: the version described does, the one whose inputs the
// request was converted for. Without the Pin, or once it is released, the
// new version serves.
func TestRepositoryPinnedVersion(t *testing.T) {
	dir := repoTree(t, "iris/1/model.onnx")
	p := onnx.NewRepository(onnx.WithModelsDir("models"), onnx.WithPollInterval(20*time.Millisecond))
	if err := p.Init(context.Background(), functions.Config{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	ctx, pin := oip.WithPin(context.Background())
	md, err := p.DescribeModel(ctx, "iris", "")
	if err != nil || md.Inputs[0].Name != "input" {
		t.Fatalf("DescribeModel: %+v, %v; want the iris model", md, err)
	}
	// Version 2 is another model, with other inputs.
	types, err := filepath.Abs(filepath.Join("testdata", "types.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	repoPlace(t, types, dir, "models/iris/2/model.onnx")
	repoWait(t, "version 2", func() bool { return slices.Equal(p.Versions("iris"), []string{"1", "2"}) })

	predict := func(ctx context.Context) error {
		resp, err := p.Predict(ctx, &functions.Request{Model: "iris", Protocol: functions.ProtocolOIP, Body: []byte(repoRow)})
		if err == nil && !bytes.Contains(resp.Body, []byte(`"model_name":"iris"`)) {
			err = fmt.Errorf("answer %s", resp.Body)
		}
		return err
	}
	if err := predict(ctx); err != nil {
		t.Errorf("the prediction after the description, version 2 taken up in between: %v; want version 1's answer", err)
	}
	if err := predict(context.Background()); functions.StatusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("a prediction without the Pin: %v; want version 2's 422 for iris's input", err)
	}
	pin.Release()
	if err := predict(ctx); functions.StatusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("a prediction once the Pin is released: %v; want version 2's 422 for iris's input", err)
	}
	// A description for one version does not serve a request for another.
	ctx, pin = oip.WithPin(context.Background())
	defer pin.Release()
	if _, err := p.DescribeModel(ctx, "iris", "1"); err != nil {
		t.Fatal(err)
	}
	if err := predict(ctx); functions.StatusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("a prediction for the default version with version 1 pinned: %v; want version 2's 422", err)
	}
}
