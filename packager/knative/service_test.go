package knative_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"

	"github.com/cortexfn/cortex/packager/knative"
	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const image = "registry.example/acme/iris@sha256:09d5cf18dae04f0d5fc699c86099af25f550c529a1613944019a5d47809cd15b"

func irisSpec(gpu int) *spec.Spec {
	s := &spec.Spec{
		Name:        "iris",
		Predictor:   spec.Predictor{Type: spec.TypeONNX, Model: "model/iris.onnx"},
		Compute:     spec.Compute{CPU: "1", Mem: "256Mi", GPU: gpu},
		Autoscaling: spec.Autoscaling{MaxScale: 4, TargetConcurrency: 16, ScaleDownDelay: 30 * time.Second},
		Limits:      spec.Limits{MaxBody: 1 << 20, Timeout: 10 * time.Second},
	}
	s.SetDefaults()
	return s
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestServiceGolden(t *testing.T) {
	tests := []struct {
		name      string
		gpu       int
		modelSize int64
		file      string
	}{
		{name: "cpu", gpu: 0, modelSize: 501, file: "service-cpu.yaml"},
		{name: "gpu", gpu: 1, modelSize: 2 << 30, file: "service-gpu.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := irisSpec(tt.gpu)
			svc, err := knative.Service(s, knative.Options{Image: image, ModelSize: tt.modelSize, ImageSize: tt.modelSize + 30<<20})
			if err != nil {
				t.Fatal(err)
			}
			b, err := knative.YAML(svc)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.file, b)

			// The file itself, read back as kubectl would send it, passes
			// the webhook's checks.
			var back servingv1.Service
			if err := yaml.UnmarshalStrict(b, &back); err != nil {
				t.Fatal(err)
			}
			if err := knative.Validate(context.Background(), &back, knative.Features{NodeSelector: tt.gpu > 0, Tolerations: tt.gpu > 0}); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestServiceValidates runs Knative's own webhook defaulting and
// validation: no errors and no warnings, in a cluster with the flags the
// manifest says it needs.
func TestServiceValidates(t *testing.T) {
	for _, gpu := range []int{0, 1, 4} {
		s := irisSpec(gpu)
		s.Targets.Knative.Visibility = spec.VisibilityClusterLocal
		svc, err := knative.Service(s, knative.Options{Image: image, ModelSize: 8 << 30, ImageSize: 8 << 30})
		if err != nil {
			t.Fatal(err)
		}
		needed := knative.Needed(svc)
		f := knative.Features{}
		for _, n := range needed {
			switch n {
			case "kubernetes.podspec-nodeselector":
				f.NodeSelector = true
			case "kubernetes.podspec-tolerations":
				f.Tolerations = true
			default:
				t.Errorf("unexpected flag %s", n)
			}
		}
		if err := knative.Validate(context.Background(), svc, f); err != nil {
			t.Errorf("gpu=%d: %v", gpu, err)
		}
		if gpu > 0 && len(needed) != 2 {
			t.Errorf("gpu=%d: needed flags %v, want nodeselector and tolerations", gpu, needed)
		}
	}
}

// TestValidateReportsDisabledFeatures shows what a default Knative install
// says about the GPU manifest: the deployer turns this into "enable flag X".
func TestValidateReportsDisabledFeatures(t *testing.T) {
	svc, err := knative.Service(irisSpec(1), knative.Options{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	err = knative.Validate(context.Background(), svc, knative.Features{})
	var ve *knative.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a *ValidationError", err)
	}
	if got := strings.Join(ve.Errors, "\n"); !strings.Contains(got, "nodeSelector") || !strings.Contains(got, "tolerations") {
		t.Errorf("errors %q do not name nodeSelector and tolerations", got)
	}
}

// TestValidateCatchesWarnings checks that a warning alone fails
// validation (a manifest without the securityContext draws one).
func TestValidateCatchesWarnings(t *testing.T) {
	svc, err := knative.Service(irisSpec(0), knative.Options{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Template.Spec.Containers[0].SecurityContext = nil
	err = knative.Validate(context.Background(), svc, knative.Features{})
	var ve *knative.ValidationError
	if !errors.As(err, &ve) || len(ve.Warnings) == 0 || len(ve.Errors) != 0 {
		t.Fatalf("got %v, want warnings only", err)
	}
}

func TestServiceNeedsDigest(t *testing.T) {
	if _, err := knative.Service(irisSpec(0), knative.Options{Image: "registry.example/acme/iris:latest"}); err == nil {
		t.Error("a tag was accepted; want an error asking for a digest")
	}
}

func TestProgressDeadline(t *testing.T) {
	tests := []struct {
		name      string
		gpu       int
		modelSize int64
		wantAnn   bool
	}{
		{"small cpu model keeps the default", 0, 1 << 20, false},
		{"8 GB cpu model", 0, 8 << 30, true},
		{"gpu always", 1, 1 << 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, err := knative.Service(irisSpec(tt.gpu), knative.Options{Image: image, ModelSize: tt.modelSize, ImageSize: tt.modelSize})
			if err != nil {
				t.Fatal(err)
			}
			tmpl := svc.Spec.Template
			v, ok := tmpl.Annotations["serving.knative.dev/progress-deadline"]
			if ok != tt.wantAnn {
				t.Fatalf("progress-deadline annotation present = %v, want %v", ok, tt.wantAnn)
			}
			sp := tmpl.Spec.Containers[0].StartupProbe
			worst := time.Duration(sp.PeriodSeconds*sp.FailureThreshold) * time.Second
			if worst < knative.LoadBudget(tt.modelSize) {
				t.Errorf("startup probe gives up after %s, before the load budget %s", worst, knative.LoadBudget(tt.modelSize))
			}
			deadline := 10 * time.Minute
			if ok {
				if deadline, err = time.ParseDuration(v); err != nil {
					t.Fatal(err)
				}
			}
			if worst >= deadline {
				t.Errorf("startup probe worst case %s is not under the progress deadline %s", worst, deadline)
			}
		})
	}
}

// TestServiceLivenessProbe: the kubelet restarts a function whose /healthz
// fails (the runtime fails it when a prediction overran its deadline by
// limits.overrun_grace and the process must be replaced); it gives the
// process longer than the runtime's own drain before it does, and the
// readiness and startup probes stay on /readyz.
func TestServiceLivenessProbe(t *testing.T) {
	svc, err := knative.Service(irisSpec(0), knative.Options{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	c := svc.Spec.Template.Spec.Containers[0]
	lp := c.LivenessProbe
	if lp == nil || lp.HTTPGet == nil {
		t.Fatalf("liveness probe %+v, want an httpGet probe", lp)
	}
	if lp.HTTPGet.Path != "/healthz" || lp.HTTPGet.Port.IntValue() != knative.Port {
		t.Errorf("liveness probe GET %s on port %s, want /healthz on %d", lp.HTTPGet.Path, lp.HTTPGet.Port.String(), knative.Port)
	}
	if lp.PeriodSeconds <= 0 || lp.FailureThreshold < 2 || lp.TimeoutSeconds <= 0 {
		t.Errorf("liveness probe period %ds, timeout %ds, failure threshold %d: want a period, a timeout and at least two failures",
			lp.PeriodSeconds, lp.TimeoutSeconds, lp.FailureThreshold)
	}
	if failing := time.Duration(lp.PeriodSeconds*(lp.FailureThreshold-1)) * time.Second; failing < runtime.DefaultShutdownTimeout {
		t.Errorf("the kubelet restarts after %s of failures, before the runtime's drain bound %s", failing, runtime.DefaultShutdownTimeout)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.StartupProbe == nil || c.StartupProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness %+v and startup %+v probes: want both on /readyz", c.ReadinessProbe, c.StartupProbe)
	}
}

// TestServiceSecretEnv: each wasm.secret_env variable reaches the
// container from its Kubernetes Secret by a secretKeyRef, the manifest
// holds no value (whatever the environment of the packager has), and
// Knative's webhook takes it.
func TestServiceSecretEnv(t *testing.T) {
	const value = "s3cr3t-in-the-packager's-environment"
	t.Setenv("API_TOKEN", value)
	s := irisSpec(0)
	s.Wasm.SecretEnv = []spec.SecretEnv{{Name: "API_TOKEN", Secret: "api-credentials", Key: "token"}}
	svc, err := knative.Service(s, knative.Options{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	env := svc.Spec.Template.Spec.Containers[0].Env
	if len(env) != 1 || env[0].Name != "API_TOKEN" || env[0].Value != "" || env[0].ValueFrom == nil || env[0].ValueFrom.SecretKeyRef == nil {
		t.Fatalf("container env %+v, want API_TOKEN from a secretKeyRef", env)
	}
	if ref := env[0].ValueFrom.SecretKeyRef; ref.Name != "api-credentials" || ref.Key != "token" || ref.Optional != nil {
		t.Errorf("secretKeyRef %+v, want key token of Secret api-credentials, not optional", ref)
	}
	b, err := knative.YAML(svc)
	if err != nil {
		t.Fatal(err)
	}
	want := "- env:\n        - name: API_TOKEN\n          valueFrom:\n            secretKeyRef:\n              key: token\n              name: api-credentials\n"
	if !strings.Contains(string(b), want) || strings.Contains(string(b), value) {
		t.Errorf("manifest:\n%s\nwant it to hold\n%s\nand not the value", b, want)
	}
	if err := knative.Validate(context.Background(), svc, knative.Features{}); err != nil {
		t.Error(err)
	}
}

// TestServiceAuthToken: auth's token reaches the container from its
// Kubernetes Secret by a secretKeyRef, after the stages' secrets; the
// manifest holds neither value, whatever the environment of the packager
// has, and Knative's webhook takes it.
func TestServiceAuthToken(t *testing.T) {
	const token = "0123456789abcdef-token-in-the-packager's-environment"
	t.Setenv("DEMO_TOKEN", token)
	s := irisSpec(0)
	s.Wasm.SecretEnv = []spec.SecretEnv{{Name: "API_KEY", Secret: "api-credentials", Key: "key"}}
	s.Auth = spec.Auth{TokenEnv: "DEMO_TOKEN", Secret: "demo-token", Key: "token"}
	s.Async.WebhookSecretEnv, s.Async.WebhookSecret, s.Async.WebhookKey = "WEBHOOK_SECRET", "hooks", "secret"
	svc, err := knative.Service(s, knative.Options{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	env := svc.Spec.Template.Spec.Containers[0].Env
	// The webhook secret may be missing (the function then sends no
	// webhooks): its reference is optional, so the pod starts without it.
	if len(env) != 3 || env[2].Name != "WEBHOOK_SECRET" || env[2].ValueFrom == nil || env[2].ValueFrom.SecretKeyRef == nil ||
		env[2].ValueFrom.SecretKeyRef.Name != "hooks" || env[2].ValueFrom.SecretKeyRef.Key != "secret" || env[2].ValueFrom.SecretKeyRef.Optional == nil || !*env[2].ValueFrom.SecretKeyRef.Optional {
		t.Fatalf("container env %+v, want API_KEY, DEMO_TOKEN, then WEBHOOK_SECRET from an optional secretKeyRef", env)
	}
	if len(env) != 3 || env[0].Name != "API_KEY" || env[1].Name != "DEMO_TOKEN" || env[1].Value != "" || env[1].ValueFrom == nil || env[1].ValueFrom.SecretKeyRef == nil {
		t.Fatalf("container env %+v, want API_KEY then DEMO_TOKEN, each from a secretKeyRef", env)
	}
	if ref := env[1].ValueFrom.SecretKeyRef; ref.Name != "demo-token" || ref.Key != "token" || ref.Optional != nil {
		t.Errorf("secretKeyRef %+v, want key token of Secret demo-token, not optional", ref)
	}
	b, err := knative.YAML(svc)
	if err != nil {
		t.Fatal(err)
	}
	want := "        - name: DEMO_TOKEN\n          valueFrom:\n            secretKeyRef:\n              key: token\n              name: demo-token\n"
	if !strings.Contains(string(b), want) || strings.Contains(string(b), token) {
		t.Errorf("manifest:\n%s\nwant it to hold\n%s\nand not the token", b, want)
	}
	if err := knative.Validate(context.Background(), svc, knative.Features{}); err != nil {
		t.Error(err)
	}
}
