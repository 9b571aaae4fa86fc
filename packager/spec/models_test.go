package spec_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime"
)

// TestModelsProblems covers the fields of a multi-model onnx function:
// predictor.models, models_dir, cache_size, poll_interval, default_model.
func TestModelsProblems(t *testing.T) {
	const name = "name: fn\n"
	tests := []struct {
		name string
		yaml string
		want []string // "line: path: message substring", one per problem
	}{
		{"models list", name + "predictor:\n  type: onnx\n  models:\n    - {name: a, path: a.onnx}\n    - {name: b, path: b}\n  cache_size: 1\n  default_model: b\n", nil},
		{"models dir", name + "predictor: {type: onnx, models_dir: models, cache_size: 2, poll_interval: 500ms}\n", nil},
		{"models not a list", name + "predictor: {type: onnx, models: a.onnx}\n", []string{`2: predictor.models: must be a list of {name, path, sha256} entries, not the string "a.onnx"`}},
		{"entry not a mapping", name + "predictor:\n  type: onnx\n  models:\n    - a.onnx\n    - {name: b, path: b.onnx}\n", []string{`5: predictor.models[0]: must be a mapping with name and path`}},
		{"entry unknown key", name + "predictor:\n  type: onnx\n  models:\n    - {name: a, file: a.onnx}\n", []string{
			`5: predictor.models[0].file: unknown key; known keys here: name, path, sha256`,
			`5: predictor.models[0].path: is required`}},
		{"entry without a name", name + "predictor:\n  type: onnx\n  models:\n    - {name: a, path: a.onnx}\n    - path: b.onnx\n", []string{`6: predictor.models[1].name: is required`}},
		{"bad model name", name + "predictor:\n  type: onnx\n  models:\n    - {name: \"a/b\", path: a.onnx}\n", []string{`5: predictor.models[0].name: "a/b" is not a valid model name`}},
		{"model name with a colon", name + "predictor:\n  type: onnx\n  models:\n    - {name: \"a:predict\", path: a.onnx}\n", []string{`5: predictor.models[0].name: "a:predict" is not a valid model name`}},
		{"duplicate model name", name + "predictor:\n  type: onnx\n  models:\n    - {name: a, path: a.onnx}\n    - {name: a, path: b.onnx}\n", []string{`6: predictor.models[1].name: "a" is already the name of predictor.models[0]`}},
		{"path not onnx", name + "predictor:\n  type: onnx\n  models:\n    - {name: a, path: /abs/a.onnx}\n", []string{`5: predictor.models[0].path: "/abs/a.onnx" is an absolute path`}},
		{"model and models", name + "predictor:\n  type: onnx\n  model: m.onnx\n  models: [{name: a, path: a.onnx}]\n", []string{`5: predictor.models: cannot be set with predictor.model`}},
		{"model and models_dir", name + "predictor:\n  type: onnx\n  model: m.onnx\n  models_dir: models\n", []string{`5: predictor.models_dir: cannot be set with predictor.model`}},
		{"models and models_dir", name + "predictor:\n  type: onnx\n  models: [{name: a, path: a.onnx}]\n  models_dir: models\n", []string{`5: predictor.models_dir: cannot be set with predictor.models`}},
		{"negative cache", name + "predictor:\n  type: onnx\n  models_dir: models\n  cache_size: -1\n", []string{`5: predictor.cache_size: must be 0 (load every model) or more, not -1`}},
		{"cache size not a number", name + "predictor:\n  type: onnx\n  models_dir: models\n  cache_size: many\n", []string{`5: predictor.cache_size: must be a whole number`}},
		{"poll interval too short", name + "predictor:\n  type: onnx\n  models_dir: models\n  poll_interval: 1ms\n", []string{`5: predictor.poll_interval: 1ms is out of range; use 100ms to 1h`}},
		{"poll interval not a duration", name + "predictor:\n  type: onnx\n  models_dir: models\n  poll_interval: 2\n", []string{`5: predictor.poll_interval: 2 is not a duration`}},
		{"unknown default", name + "predictor:\n  type: onnx\n  models: [{name: a, path: a.onnx}]\n  default_model: b\n", []string{`5: predictor.default_model: "b" is not one of the models: a`}},
		{"cache size for a single model", name + "predictor:\n  type: onnx\n  model: m.onnx\n  cache_size: 1\n", []string{`5: predictor.cache_size: has no effect unless predictor.models or predictor.models_dir is set`}},
		{"models for type go", name + "predictor:\n  type: go\n  path: ./p\n  models_dir: models\n", []string{`5: predictor.models_dir: is only for type onnx`}},
		{"neither model nor models", name + "predictor: {type: onnx}\n", []string{`2: predictor.model: is required for type onnx`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, tt.yaml)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, want := range tt.want {
				if !strings.HasPrefix(got[i], want) && !strings.Contains(got[i], want) {
					t.Errorf("problem %d:\n got %s\nwant it to contain %s", i, got[i], want)
				}
			}
		})
	}
}

// TestModelsFiles checks what predictor.models and models_dir name on disk.
func TestModelsFiles(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		files []string // created empty, relative to the function directory
		want  string   // "" for no error
	}{
		{"models dir ok", "predictor: {type: onnx, models_dir: models, default_model: b}\n",
			[]string{"models/a/1/m.onnx", "models/b/m.onnx", "models/.hidden/x"}, ""},
		{"models dir missing", "predictor: {type: onnx, models_dir: models}\n", nil,
			`:2: predictor.models_dir: models does not exist in `},
		{"models dir is a file", "predictor: {type: onnx, models_dir: models}\n", []string{"models"},
			`:2: predictor.models_dir: models is a file; name the directory whose subdirectories are the models`},
		{"models dir empty", "predictor: {type: onnx, models_dir: models}\n", []string{"models/README"},
			`:2: predictor.models_dir: models has no model subdirectories`},
		{"models dir bad name", "predictor: {type: onnx, models_dir: models}\n", []string{"models/a b/m.onnx"},
			`:2: predictor.models_dir: models has subdirectories whose names are not valid model names: "a b"`},
		{"default not a subdirectory", "predictor: {type: onnx, models_dir: models, default_model: c}\n", []string{"models/a/m.onnx"},
			`:2: predictor.default_model: "c" is not one of the models: a`},
		{"models ok", "predictor:\n  type: onnx\n  models:\n    - {name: a, path: a.onnx}\n    - {name: b, path: b}\n",
			[]string{"a.onnx", "b/1/m.onnx"}, ""},
		{"model path missing", "predictor:\n  type: onnx\n  models:\n    - {name: a, path: gone.onnx}\n", nil,
			`:5: predictor.models[0].path: gone.onnx does not exist in `},
		{"model path not onnx", "predictor:\n  type: onnx\n  models:\n    - {name: a, path: a.txt}\n", []string{"a.txt"},
			`:5: predictor.models[0].path: a.txt is not an .onnx file or a directory`},
		{"model path outside", "predictor:\n  type: onnx\n  models:\n    - {name: a, path: ../a.onnx}\n", nil,
			`:5: predictor.models[0].path: "../a.onnx" is outside the function directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, spec.FileName), []byte("name: fn\n"+tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.files {
				p := filepath.Join(dir, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := spec.Load(dir)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Load succeeded, want %s", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("got  %v\nwant it to contain %s", err, tt.want)
			}
		})
	}
}

func TestModelsRuntimeConfig(t *testing.T) {
	s, err := spec.Parse([]byte("name: fn\npredictor:\n  type: onnx\n  models:\n    - {name: a, path: ./m/a.onnx}\n    - {name: b, path: m/b}\n  cache_size: 1\n  default_model: a\n"), "cortex.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s.SetDefaults()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	got := s.RuntimeConfig().Predictor
	want := runtime.PredictorConfig{
		Type:         "onnx",
		Models:       []runtime.ModelConfig{{Name: "a", Path: "m/a.onnx"}, {Name: "b", Path: "m/b"}},
		CacheSize:    1,
		PollInterval: runtime.Duration(2 * time.Second), // the default
		DefaultModel: "a",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RuntimeConfig().Predictor:\n got %+v\nwant %+v", got, want)
	}
	if line := s.Line("predictor.models[1].path"); line != 6 {
		t.Errorf("line of predictor.models[1].path: got %d, want 6", line)
	}
}
