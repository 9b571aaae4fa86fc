package lambdazip_test

import (
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/cortexfn/cortex/packager/lambdazip"
	"github.com/cortexfn/cortex/packager/spec"
)

// TestTemplateImage: the template of a container-image function has
// PackageType Image and its ImageUri from the parameter ImageUri, which
// defaults to the image when it is known and must be given otherwise; no
// runtime, handler, code URI or Metadata (which would make sam build
// build the image with Docker); the config path of the image.
func TestTemplateImage(t *testing.T) {
	const ref = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/cortex/iris@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tt := range []struct {
		name, ref string
		dflt      *string
	}{
		{"known", ref, new(ref)},
		{"unknown", "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &spec.Spec{Name: "iris", Predictor: spec.Predictor{Type: spec.TypeONNX, Model: "model/iris.onnx"}}
			s.Targets.Lambda.Arch = spec.ArchARM64
			s.SetDefaults()
			b, err := lambdazip.TemplateImage(s, tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			var tmpl struct {
				Parameters map[string]struct {
					Type    string
					Default *string
				}
				Resources map[string]struct {
					Type       string
					Properties map[string]any
					Metadata   map[string]any
				}
			}
			if err := yaml.Unmarshal(b, &tmpl); err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			p := tmpl.Parameters["ImageUri"]
			switch {
			case p.Type != "String":
				t.Errorf("parameter ImageUri %+v", p)
			case (p.Default == nil) != (tt.dflt == nil) || p.Default != nil && *p.Default != *tt.dflt:
				t.Errorf("ImageUri's default %v, want %v", p.Default, tt.dflt)
			}
			fn := tmpl.Resources["Function"]
			props := fn.Properties
			if props["PackageType"] != "Image" || props["ImageUri"].(map[string]any)["Ref"] != "ImageUri" {
				t.Errorf("PackageType %v, ImageUri %v", props["PackageType"], props["ImageUri"])
			}
			for _, k := range []string{"Runtime", "Handler", "CodeUri"} {
				if _, ok := props[k]; ok {
					t.Errorf("an image function has %s: %v", k, props[k])
				}
			}
			if fn.Metadata != nil {
				t.Errorf("Metadata %v: sam build would try to build the image", fn.Metadata)
			}
			if a := props["Architectures"].([]any); len(a) != 1 || a[0] != "arm64" {
				t.Errorf("architectures %v", a)
			}
			vars := props["Environment"].(map[string]any)["Variables"].(map[string]any)
			if vars["CORTEX_CONFIG"] != lambdazip.ImageConfigPath || props["AutoPublishAlias"] != lambdazip.Alias {
				t.Errorf("CORTEX_CONFIG %v, alias %v", vars["CORTEX_CONFIG"], props["AutoPublishAlias"])
			}
		})
	}
}
