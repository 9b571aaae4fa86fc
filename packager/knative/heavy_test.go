package knative_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/packager/knative"
	"github.com/cortexfn/cortex/packager/spec"
)

// llmSpec is a heavy model's function: its model fetched by reference,
// on one GPU, one prediction per process, behind a token.
func llmSpec(model string) *spec.Spec {
	s := &spec.Spec{
		Name:      "llm",
		Predictor: spec.Predictor{Type: spec.TypeONNX, Model: model},
		Compute:   spec.Compute{CPU: "4", Mem: "24Gi", GPU: 1},
		Limits:    spec.Limits{MaxConcurrency: 1, Timeout: 120 * time.Second},
		Auth:      spec.Auth{TokenEnv: "LLM_TOKEN", Secret: "llm", Key: "token"},
	}
	s.SetDefaults()
	return s
}

// TestHeavyModelService: what a multi-GB start needs is in the Service a
// GPU function with a model by reference gets, and only there: the model
// cache volume, its variable, a startup probe and progress deadline that
// cover a fetch and load of ReferencedModelSize, containerConcurrency 1;
// and Knative's own validation passes it.
func TestHeavyModelService(t *testing.T) {
	tests := []struct {
		name      string
		model     string
		modelSize int64 // embedded
		byRef     bool
	}{
		{name: "oci reference", model: "oci://registry.example/models/llm:v1", byRef: true},
		{name: "https reference", model: "https://models.example/llm.onnx", byRef: true},
		{name: "s3 reference", model: "s3://models/llm.onnx", byRef: true},
		{name: "embedded 6 GB", model: "model/llm.onnx", modelSize: 6 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := llmSpec(tt.model)
			o := knative.Options{Image: image, ModelSize: tt.modelSize, ImageSize: 1 << 30}
			svc, err := knative.Service(s, o)
			if err != nil {
				t.Fatal(err)
			}
			ps := svc.Spec.Template.Spec.PodSpec
			c := ps.Containers[0]

			var cacheEnv string
			for _, e := range c.Env {
				if e.Name == knative.ModelCacheEnv {
					cacheEnv = e.Value
				}
			}
			if tt.byRef {
				if len(ps.Volumes) != 1 || ps.Volumes[0].EmptyDir == nil {
					t.Fatalf("volumes %+v, want one emptyDir", ps.Volumes)
				}
				if l := ps.Volumes[0].EmptyDir.SizeLimit; l == nil || l.Value() != knative.ModelCacheLimit {
					t.Errorf("emptyDir sizeLimit %v, want %d", l, int64(knative.ModelCacheLimit))
				}
				if ps.Volumes[0].EmptyDir.Medium != "" {
					t.Errorf("emptyDir medium %q: a model in memory counts against the memory limit", ps.Volumes[0].EmptyDir.Medium)
				}
				if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != knative.ModelCacheDir || c.VolumeMounts[0].Name != ps.Volumes[0].Name {
					t.Errorf("mounts %+v, want the volume at %s", c.VolumeMounts, knative.ModelCacheDir)
				}
				if cacheEnv != knative.ModelCacheDir {
					t.Errorf("$%s = %q, want %s", knative.ModelCacheEnv, cacheEnv, knative.ModelCacheDir)
				}
			} else if len(ps.Volumes) != 0 || len(c.VolumeMounts) != 0 || cacheEnv != "" {
				t.Errorf("an embedded model got a model cache: volumes %+v, mounts %+v, env %q", ps.Volumes, c.VolumeMounts, cacheEnv)
			}
			if !*c.SecurityContext.ReadOnlyRootFilesystem {
				t.Error("the root filesystem is writable")
			}

			budget := knative.StartBudget(s, o)
			if min := knative.LoadBudget(tt.modelSize); budget < min {
				t.Errorf("start budget %s under the load budget %s", budget, min)
			}
			if tt.byRef && budget <= knative.LoadBudget(knative.ReferencedModelSize) {
				t.Errorf("start budget %s does not cover fetching %d bytes before loading them", budget, int64(knative.ReferencedModelSize))
			}
			sp := c.StartupProbe
			worst := time.Duration(sp.PeriodSeconds*sp.FailureThreshold) * time.Second
			if worst < budget {
				t.Errorf("startup probe gives up after %s, within the start budget %s", worst, budget)
			}
			pd, err := time.ParseDuration(svc.Spec.Template.Annotations["serving.knative.dev/progress-deadline"])
			if err != nil {
				t.Fatal(err)
			}
			if pd <= worst || pd != knative.ProgressDeadline(s, o) {
				t.Errorf("progress deadline %s, want ProgressDeadline %s, past the startup probe's %s", pd, knative.ProgressDeadline(s, o), worst)
			}
			if pd != time.Duration(math.Ceil(pd.Minutes()))*time.Minute {
				t.Errorf("progress deadline %s is not whole minutes", pd)
			}

			if cc := svc.Spec.Template.Spec.ContainerConcurrency; cc == nil || *cc != 1 {
				t.Errorf("containerConcurrency %v, want 1 (limits.max_concurrency: 1)", cc)
			}
			if got := svc.Annotations[knative.TokenEnvAnnotation]; got != "LLM_TOKEN" {
				t.Errorf("%s = %q, want the token's variable LLM_TOKEN", knative.TokenEnvAnnotation, got)
			}
			if err := knative.Validate(context.Background(), svc, knative.Features{NodeSelector: true, Tolerations: true}); err != nil {
				t.Errorf("Knative's validation: %v", err)
			}
			err = knative.Validate(context.Background(), svc, knative.Features{NodeSelector: true, Tolerations: true, EmptyDirDisabled: true})
			var ve *knative.ValidationError
			switch {
			case tt.byRef && (!errors.As(err, &ve) || !strings.Contains(strings.Join(ve.Errors, " "), "EmptyDir")):
				t.Errorf("with emptyDir off: %v, want Knative's error naming EmptyDir", err)
			case !tt.byRef && err != nil:
				t.Errorf("an embedded model's Service needs emptyDir: %v", err)
			}
		})
	}
}

// TestHeavyModelGolden is the manifest a heavy model by reference gets,
// whole.
func TestHeavyModelGolden(t *testing.T) {
	svc, err := knative.Service(llmSpec("oci://registry.example/models/llm@sha256:"+strings.Repeat("ab", 32)), knative.Options{Image: image, ImageSize: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	b, err := knative.YAML(svc)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "service-model-reference-gpu.yaml", b)
}

// TestOnePredictionPerProcess: containerConcurrency follows
// limits.max_concurrency, 1 included.
func TestOnePredictionPerProcess(t *testing.T) {
	for _, n := range []int{1, 4} {
		s := irisSpec(0)
		s.Limits.MaxConcurrency = n
		svc, err := knative.Service(s, knative.Options{Image: image})
		if err != nil {
			t.Fatal(err)
		}
		if cc := svc.Spec.Template.Spec.ContainerConcurrency; cc == nil || *cc != int64(n) {
			t.Errorf("max_concurrency %d: containerConcurrency %v", n, cc)
		}
	}
}

// TestStartupTimeoutOverrides: targets.knative.startup_timeout replaces
// the sized budget, for the startup probe and the progress deadline.
func TestStartupTimeoutOverrides(t *testing.T) {
	s := llmSpec("oci://registry.example/models/llm:v1")
	s.Targets.Knative.StartupTimeout = 45 * time.Minute
	o := knative.Options{Image: image, ImageSize: 1 << 30}
	if got := knative.StartBudget(s, o); got != 45*time.Minute {
		t.Fatalf("start budget %s, want the spec's 45m", got)
	}
	svc, err := knative.Service(s, o)
	if err != nil {
		t.Fatal(err)
	}
	sp := svc.Spec.Template.Spec.Containers[0].StartupProbe
	if worst := time.Duration(sp.PeriodSeconds*sp.FailureThreshold) * time.Second; worst != 45*time.Minute {
		t.Errorf("startup probe gives up after %s, want 45m", worst)
	}
	pd, err := time.ParseDuration(svc.Spec.Template.Annotations["serving.knative.dev/progress-deadline"])
	if err != nil {
		t.Fatal(err)
	}
	// 45m, the 1 GiB pull (41s), a minute, 10 for the GPU node: 57m.
	if pd != 57*time.Minute {
		t.Errorf("progress deadline %s, want 57m", pd)
	}
	if err := knative.Validate(context.Background(), svc, knative.Features{NodeSelector: true, Tolerations: true}); err != nil {
		t.Errorf("Knative's validation: %v", err)
	}
}
