package spec_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/packager/spec"
)

const digest = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

// TestModelReferenceProblems covers models named by reference: their
// syntax, their digests, and that no file is looked for.
func TestModelReferenceProblems(t *testing.T) {
	const head = "name: fn\npredictor:\n  type: onnx\n"
	tests := []struct {
		name string
		yaml string
		want []string // "line: path: message substring", one per problem
	}{
		{"oci tag", head + "  model: oci://registry.example.com/org/iris:1\n", nil},
		{"oci digest", head + "  model: oci://localhost:5000/iris@sha256:" + digest + "\n", nil},
		{"https with digest", head + "  model: https://models.example.com/iris.onnx\n  model_sha256: " + strings.ToUpper(digest) + "\n", nil},
		{"s3 without digest", head + "  model: s3://models-a/iris/model.onnx\n", nil},
		{"s3 with digest", head + "  model: s3://models-a/iris/model.onnx\n  model_sha256: " + digest + "\n", nil},
		{"multi-model refs", head + "  models:\n    - {name: a, path: \"oci://registry.example.com/org/a:1\"}\n    - {name: b, path: \"https://example.com/b.onnx\", sha256: " + digest + "}\n", nil},
		{"https without digest", head + "  model: https://models.example.com/iris.onnx\n", []string{
			`2: predictor.model_sha256: is required for predictor.model https://models.example.com/iris.onnx: add it (sha256sum FILE prints it)`}},
		{"entry https without digest", head + "  models:\n    - {name: b, path: \"https://example.com/b.onnx\"}\n", []string{
			`5: predictor.models[0].sha256: is required for predictor.models[0].path https://example.com/b.onnx`}},
		{"digest not hex", head + "  model: s3://models-a/m.onnx\n  model_sha256: abc\n", []string{
			`5: predictor.model_sha256: digest "abc" is not a SHA-256: give 64 hexadecimal digits`}},
		{"digest for an oci model", head + "  model: oci://registry.example.com/org/iris:1\n  model_sha256: " + digest + "\n", []string{
			`predictor.model_sha256: an oci:// model is verified by its image's digests: remove the SHA-256 and pin the image with @sha256:DIGEST`}},
		{"digest for a path", head + "  model: m.onnx\n  model_sha256: " + digest + "\n", []string{
			`5: predictor.model_sha256: is only for a model named by reference`}},
		{"digest without a model", "name: fn\npredictor:\n  type: go\n  path: ./p\n  model_sha256: " + digest + "\n", []string{
			`5: predictor.model_sha256: is set without predictor.model`}},
		{"oci without registry", head + "  model: oci://iris:1\n", []string{
			`4: predictor.model: "oci://iris:1" names no registry: write oci://REGISTRY/REPO:TAG`}},
		{"oci upper-case repository", head + "  model: oci://registry.example.com/Org/iris\n", []string{
			`4: predictor.model: "oci://registry.example.com/Org/iris" repository "Org/iris" is not a repository name`}},
		{"oci bad digest", head + "  model: oci://registry.example.com/org/iris@sha256:abc\n", []string{
			`digest "sha256:abc" is not sha256: and 64 lower-case hexadecimal digits`}},
		{"s3 without key", head + "  model: s3://models-a\n", []string{
			`4: predictor.model: "s3://models-a" names no object: write s3://BUCKET/KEY`}},
		{"s3 bad bucket", head + "  model: s3://Models_A/m.onnx\n", []string{`bucket "Models_A" is not a bucket name`}},
		{"https with credentials", head + "  model: https://u:p@example.com/m.onnx\n  model_sha256: " + digest + "\n", []string{
			`holds credentials, which would ship in the function's config`}},
		{"plain http", head + "  model: http://example.com/m.onnx\n", []string{
			`4: predictor.model: "http://example.com/m.onnx" is plain http, which cortex does not fetch models over: use https://`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, tt.yaml)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, want := range tt.want {
				if !strings.Contains(got[i], want) {
					t.Errorf("problem %d:\n got %s\nwant it to contain %s", i, got[i], want)
				}
			}
		})
	}
}

// TestModelReferenceNeedsNoFile loads a function directory whose model is
// a reference: the spec is valid without any model file, and the runtime
// config carries the reference and its digest as written (not cleaned
// into a path).
func TestModelReferenceNeedsNoFile(t *testing.T) {
	dir := t.TempDir()
	y := "name: fn\npredictor:\n  type: onnx\n  model: https://example.com/m/iris.onnx\n  model_sha256: " + strings.ToUpper(digest) + "\n"
	if err := os.WriteFile(filepath.Join(dir, spec.FileName), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := spec.Load(dir)
	if err != nil {
		t.Fatalf("a referenced model needs no file: %v", err)
	}
	if got := s.Predictor.ModelReferences(); len(got) != 1 || got[0] != "https://example.com/m/iris.onnx" {
		t.Errorf("ModelReferences() = %q", got)
	}
	c := s.RuntimeConfig()
	if c.Predictor.Model != "https://example.com/m/iris.onnx" || c.Predictor.ModelSHA256 != digest {
		t.Errorf("runtime config: model %q, sha256 %q; want the reference as written and the digest in lower case", c.Predictor.Model, c.Predictor.ModelSHA256)
	}
}
