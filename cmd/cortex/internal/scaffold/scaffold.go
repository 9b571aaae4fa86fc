// Package scaffold writes a new function directory for `cortex init`: a
// cortex.yaml that validates, the code or model it names, an example for
// `cortex test`, a .gitignore and, for Go code, a go.mod that requires the
// CLI's cortex version and a go.work that points editors and the go command
// at the CLI's SDK.
//
// It owns the templates; it must not import the packager beyond
// packager/spec (a scaffold is validated as cortex.yaml, never built).
package scaffold

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/template"

	"github.com/cortexfn/cortex/packager/spec"
)

// ErrExists is returned when the target directory already has files.
var ErrExists = errors.New("scaffold: directory exists and is not empty")

// Options are what a scaffold depends on besides its name and type.
type Options struct {
	// Version is the cortex version the go.mod requires (cortex.Version).
	Version string
	// SDKDir, when set, is the CLI's SDK on this machine: a go.work
	// (ignored by git) replaces github.com/cortexfn/cortex with it, so that
	// go vet, go test and gopls work in the function's directory.
	SDKDir string
	// SDKSum is the SDK's go.sum: written beside the go.work as its
	// go.work.sum (ignored by git too), it holds the checksums of the
	// modules the SDK needs, which the go command then verifies offline
	// rather than asking the checksum database for them.
	SDKSum []byte
}

// Write creates dir (which must not exist or be empty) holding a function
// named name of predictor type typ (spec.TypeGo or spec.TypeONNX). It never
// overwrites a file.
func Write(dir, name, typ string, o Options) ([]string, error) {
	files, err := Files(name, typ, o)
	if err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%w: %s; choose a new name or remove it", ErrExists, dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var written []string
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return written, err
		}
		// O_EXCL: never overwrite, even if something appeared meanwhile.
		fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return written, err
		}
		_, werr := fh.Write(f.Content)
		if cerr := fh.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return written, werr
		}
		written = append(written, p)
	}
	return written, nil
}

// File is one file of a scaffold, with a slash-separated relative path.
type File struct {
	Path    string
	Content []byte
}

// Files returns the files of a new function, without writing them.
func Files(name, typ string, o Options) ([]File, error) {
	probe := &spec.Spec{Name: name, Predictor: spec.Predictor{Type: typ, Model: "model/model.onnx", Path: "./predictor"}}
	if typ == spec.TypeONNX {
		probe.Predictor.Path = ""
	}
	probe.SetDefaults()
	if err := probe.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create function %q:\n%w", name, err)
	}
	if o.Version == "" {
		return nil, errors.New("scaffold: no cortex version")
	}
	data := struct{ Name, Version, SDKDir string }{name, o.Version, o.SDKDir}
	render := func(t *template.Template) []byte {
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			panic(err) // the templates are ours; a failure is a bug
		}
		return b.Bytes()
	}
	switch typ {
	case spec.TypeGo:
		files := []File{
			{"cortex.yaml", render(goSpec)},
			{"go.mod", render(goMod)},
			{".gitignore", render(gitignore)},
			{"predictor/predictor.go", render(goPredictor)},
			{"examples/hello.json", render(goExample)},
			{"examples/missing-name.json", render(goErrorExample)},
		}
		if o.SDKDir != "" {
			files = append(files, File{"go.work", render(goWork)})
			if len(o.SDKSum) > 0 {
				files = append(files, File{"go.work.sum", o.SDKSum})
			}
		}
		return files, nil
	default:
		return []File{
			{"cortex.yaml", render(onnxSpec)},
			{".gitignore", render(gitignore)},
			{"model/model.onnx", IdentityModel()},
			{"examples/identity.json", render(onnxExample)},
		}, nil
	}
}

// reference says where every cortex.yaml key is described, in words that
// hold outside the cortex repository.
const reference = `# Every key, its type, default and allowed values: cortex explain (one key:
# cortex explain limits.timeout), or docs/cortex-yaml.md in the cortex repository.`

var goSpec = template.Must(template.New("").Parse(`# A Cortex function with a Go predictor.
` + reference + `
name: {{.Name}}
predictor:
  type: go
  # The Go package that exports func New() functions.Predictor.
  path: ./predictor
  # Passed to Init as functions.Config.Values.
  config:
    greeting: Hello
# Defaults shown; change what you need.
# compute: {cpu: "1", mem: 1Gi, gpu: 0}
# autoscaling: {min_scale: 0, max_scale: 10}
# limits: {max_body: 6MiB, timeout: 30s, max_concurrency: 64, max_queue: 128}
`))

var goMod = template.Must(template.New("").Parse(`module {{.Name}}

go 1.26.0

// cortex builds this function with the SDK of the CLI that builds it, which
// must be this version. Add your own dependencies here as usual
// (go mod edit -require=MODULE@VERSION): cortex resolves them at build time.
require github.com/cortexfn/cortex {{.Version}}
`))

// goWork points the go command and editors at the CLI's SDK: no published
// cortex module is needed. It names a path on this machine, so git ignores it;
// cortex init writes it and the cortex build itself never reads it.
var goWork = template.Must(template.New("").Parse(`// Written by cortex init for go vet, go test and editors on this machine
// (cortex itself builds with GOWORK=off). Not for version control.
go 1.26.0

use .

replace github.com/cortexfn/cortex => {{.SDKDir}}
`))

var gitignore = template.Must(template.New("").Parse(`# cortex package output
dist/
# go.work names the cortex SDK on this machine (cortex init writes it)
go.work
go.work.sum
`))

var goPredictor = template.Must(template.New("").Parse(`// Package predictor serves the {{.Name}} function.
//
// Cortex builds a main that calls New once and serves what it returns.
// Load models in Init (called before the function reports ready), not in New.
package predictor

import (
	"context"
	"net/http"

	"github.com/cortexfn/cortex/functions"
)

// Input is the request body.
type Input struct {
	Name string ` + "`json:\"name\"`" + `
}

// Output is the response body.
type Output struct {
	Message string ` + "`json:\"message\"`" + `
}

type predictor struct {
	greeting string
	functions.Predictor
}

// New returns the function's predictor.
func New() functions.Predictor {
	p := &predictor{greeting: "Hello"}
	p.Predictor = functions.Typed(p.predict)
	return p
}

// Init reads predictor.config from cortex.yaml.
func (p *predictor) Init(ctx context.Context, cfg functions.Config) error {
	if g, ok := cfg.Values["greeting"].(string); ok {
		p.greeting = g
	}
	return nil
}

func (p *predictor) predict(ctx context.Context, in Input) (Output, error) {
	if in.Name == "" {
		return Output{}, functions.Errorf(http.StatusUnprocessableEntity, "name is required")
	}
	return Output{Message: p.greeting + ", " + in.Name + "!"}, nil
}
`))

var goExample = template.Must(template.New("").Parse(`{"description": "greets by name",
 "request": {"method": "POST", "path": "/predict", "headers": {"Content-Type": "application/json"}, "body": {"name": "Ada"}},
 "response": {"status": 200, "body": {"message": "Hello, Ada!"}}}
`))

var goErrorExample = template.Must(template.New("").Parse(`{"description": "a missing name is a 422",
 "request": {"method": "POST", "path": "/predict", "headers": {"Content-Type": "application/json"}, "body": {}},
 "response": {"status": 422, "error_contains": "name"}}
`))

var onnxSpec = template.Must(template.New("").Parse(`# A Cortex function served by the built-in ONNX predictor: no Go code.
# model/model.onnx is a placeholder (Identity: output = input, float32 [N, 4]);
# replace it with your model and update examples/.
` + reference + `
name: {{.Name}}
predictor:
  type: onnx
  model: model/model.onnx
# Defaults shown; change what you need.
# compute: {cpu: "1", mem: 1Gi, gpu: 0}
# autoscaling: {min_scale: 0, max_scale: 10}
# limits: {max_body: 6MiB, timeout: 30s, max_concurrency: 64, max_queue: 128}
`))

var onnxExample = template.Must(template.New("").Parse(`{"description": "the placeholder model returns its input (Open Inference Protocol v2)",
 "request": {"method": "POST", "path": "/v2/models/{{.Name}}/infer", "headers": {"Content-Type": "application/json"},
             "body": {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}},
 "response": {"status": 200, "body": {"outputs": [{"name": "output", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}}}
`))

// IdentityModel returns a minimal ONNX model: one Identity node from
// "input" to "output", float32 tensors of shape [N, 4], IR version 8,
// opset 13. It is encoded by hand (protobuf wire format) so the CLI needs
// no ONNX or protobuf dependency.
func IdentityModel() []byte {
	tensorType := func() []byte {
		dimN := field(2, []byte("N"))                     // Dimension.dim_param
		dim4 := varintField(1, 4)                         // Dimension.dim_value
		shape := cat(field(1, dimN), field(1, dim4))      // TensorShapeProto.dim
		tensor := cat(varintField(1, 1), field(2, shape)) // elem_type FLOAT, shape
		return field(1, tensor)                           // TypeProto.tensor_type
	}
	valueInfo := func(name string) []byte {
		return cat(field(1, []byte(name)), field(2, tensorType()))
	}
	node := cat(field(1, []byte("input")), field(2, []byte("output")), field(3, []byte("identity")), field(4, []byte("Identity")))
	graph := cat(field(1, node), field(2, []byte("identity")), field(11, valueInfo("input")), field(12, valueInfo("output")))
	opset := cat(field(1, []byte("")), varintField(2, 13))
	return cat(varintField(1, 8), field(2, []byte("cortex")), field(7, graph), field(8, opset))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func varint(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// field encodes a length-delimited field (wire type 2).
func field(num int, payload []byte) []byte {
	return cat(varint(uint64(num)<<3|2), varint(uint64(len(payload))), payload)
}

// varintField encodes a varint field (wire type 0).
func varintField(num int, v uint64) []byte {
	return cat(varint(uint64(num)<<3), varint(v))
}
