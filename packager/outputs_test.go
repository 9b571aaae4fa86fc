package packager_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/packager"
	"github.com/cortexfn/cortex/packager/knative"
)

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// Build makes one artifact that every output is written from.
func TestBuildArtifact(t *testing.T) {
	a, err := packager.Build(context.Background(), iris, packager.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Spec.Name != "iris" || a.Arch != "amd64" || a.Binary.Path != "iris" || a.Binary.Src == "" {
		t.Errorf("artifact %s/%s, binary %+v", a.Spec.Name, a.Arch, a.Binary)
	}
	if !a.ONNXRuntime() || a.Runtime[0].Path != "lib/libonnxruntime.so.1" {
		t.Errorf("runtime files %+v, want lib/libonnxruntime.so.1", a.Runtime)
	}
	if len(a.Models) != 1 || a.Models[0].Path != "model/iris.onnx" || a.ModelSize() == 0 {
		t.Errorf("models %+v (size %d), want model/iris.onnx", a.Models, a.ModelSize())
	}
	if a.Config.Path != packager.ConfigName || !bytes.Contains(a.Config.Data, []byte(`"name": "iris"`)) {
		t.Errorf("config %s: %s", a.Config.Path, a.Config.Data)
	}
	if len(a.SpecSHA256) != 64 {
		t.Errorf("spec digest %q", a.SpecSHA256)
	}
}

// A Lambda-only write assembles no image: dist/ holds the zip, its
// template and the summary, nothing else.
func TestOutputsLambdaOnly(t *testing.T) {
	r := pkg(t, iris, packager.Options{Outputs: []packager.Output{packager.OutputLambda}})
	got := entries(t, r.Out)
	if want := []string{"lambda.cdx.json", "lambda.zip", "summary.json", "template.yaml"}; !slices.Equal(got, want) {
		t.Errorf("dist holds %v, want %v", got, want)
	}
	if r.Image != nil || r.Knative != nil || r.Lambda == nil {
		t.Errorf("result image %v, knative %v, lambda %v: want only lambda", r.Image, r.Knative, r.Lambda)
	}
	var b bytes.Buffer
	if err := r.WriteSummary(&b); err != nil || strings.Contains(b.String(), "image") || !strings.Contains(b.String(), "lambda.zip") {
		t.Errorf("summary %q (%v)", b.String(), err)
	}
}

// The Knative output hands the Service over as an object, the same one
// knative.yaml holds; with no layout or tarball asked for, neither is
// written.
func TestOutputsKnativeObject(t *testing.T) {
	r := pkg(t, iris, packager.Options{Outputs: []packager.Output{packager.OutputKnative}, Registry: "registry.example/acme"})
	if got, want := entries(t, r.Out), []string{"knative.yaml", "summary.json"}; !slices.Equal(got, want) {
		t.Errorf("dist holds %v, want %v", got, want)
	}
	if r.Knative == nil || r.Knative.Service == nil {
		t.Fatalf("no Service object: %+v", r.Knative)
	}
	if r.Image == nil || r.Image.Layout != "" || r.Image.Tarball != "" || r.Pushed != "" {
		t.Errorf("image %+v, pushed %q: want the image described, not written or pushed", r.Image, r.Pushed)
	}
	img := r.Knative.Service.Spec.Template.Spec.Containers[0].Image
	if want := "registry.example/acme/iris@" + r.Image.Digest; img != want {
		t.Errorf("the Service runs %s, want %s", img, want)
	}
	y, err := knative.YAML(r.Knative.Service)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := os.ReadFile(r.Knative.Manifest); !bytes.Equal(m, y) {
		t.Errorf("knative.yaml differs from the Service object:\n%s\n---\n%s", m, y)
	}
}

// A push without a registry, or an unknown output, is refused before
// anything is built or written.
func TestOutputsRefused(t *testing.T) {
	out := filepath.Join(t.TempDir(), "dist")
	_, err := packager.Package(context.Background(), iris, packager.Options{Out: out, Outputs: []packager.Output{packager.OutputPush}})
	if err == nil || !strings.Contains(err.Error(), "--registry") {
		t.Errorf("push without a registry: %v, want an error naming --registry", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s exists after a refused package: %v", out, err)
	}
	if _, err := packager.ParseOutputs("oci,zip"); err == nil || !strings.Contains(err.Error(), `"zip"`) || !strings.Contains(err.Error(), "lambda") {
		t.Errorf("ParseOutputs(oci,zip): %v, want an error naming zip and the outputs", err)
	}
	outs, err := packager.ParseOutputs("lambda, oci,lambda")
	if err != nil || !slices.Equal(outs, []packager.Output{packager.OutputLambda, packager.OutputLayout}) {
		t.Errorf("ParseOutputs: %v, %v", outs, err)
	}
}

// With targets.knative.trigger, knative.yaml holds the Eventing Trigger
// that subscribes the Service to the broker, as a second document.
func TestOutputsKnativeTrigger(t *testing.T) {
	dir := copyDir(t, iris)
	f, err := os.OpenFile(filepath.Join(dir, "cortex.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("targets: {knative: {trigger: {broker: default, filter: {type: com.example.flower}}}}\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r := pkg(t, dir, packager.Options{Outputs: []packager.Output{packager.OutputKnative}, Registry: "registry.example/acme"})
	m, err := os.ReadFile(r.Knative.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(m), "\n---\n")
	if len(docs) != 2 || !strings.Contains(docs[0], "kind: Service") || !strings.Contains(docs[1], "kind: Trigger") ||
		!strings.Contains(docs[1], "com.example.flower") || !strings.Contains(docs[1], "name: iris") {
		t.Errorf("knative.yaml, want the Service then a Trigger for it:\n%s", m)
	}
}
