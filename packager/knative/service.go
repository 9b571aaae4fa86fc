package knative

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"knative.dev/pkg/apis"
	"knative.dev/serving/pkg/apis/autoscaling"
	"knative.dev/serving/pkg/apis/config"
	"knative.dev/serving/pkg/apis/serving"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"

	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime"
)

// Port is the port the function listens on ($PORT, Knative's contract).
const Port = 8080

// GPUResource is the extended resource a GPU is asked for with.
const GPUResource corev1.ResourceName = "nvidia.com/gpu"

// Labels and annotations the manifest sets.
const (
	// FunctionLabel names the Cortex function on the Service and its pods.
	FunctionLabel = "cortex.dev/function"
	// VisibilityLabel makes a Service cluster-local.
	VisibilityLabel = "networking.knative.dev/visibility"
)

// Options completes what the spec does not say.
type Options struct {
	// Image is the image reference, by digest (repo@sha256:...).
	Image string
	// ModelSize is the model's size in bytes: the startup probe and the
	// progress deadline grow with the time it takes to load.
	ModelSize int64
	// ImageSize is the compressed image size in bytes: pulling it counts
	// against the progress deadline.
	ImageSize int64
}

// Sizing assumptions for probes and deadlines. They are deliberately
// pessimistic: a probe that gives up too early restarts a replica that
// was about to become ready.
const (
	// loadBase is the time a runtime takes to start with a tiny model
	// (process start, ONNX Runtime init, session creation).
	loadBase = 30 * time.Second
	// loadRate is the slowest rate a model is read and turned into a
	// session at (bytes per second).
	loadRate = 50 << 20
	// pullRate is the slowest rate a node pulls an image at.
	pullRate = 25 << 20
	// gpuNodeScaleUp is how long a cluster autoscaler may take to bring a
	// GPU node up (scale from zero nodes).
	gpuNodeScaleUp = 10 * time.Minute
	// defaultProgressDeadline is Knative's own default.
	defaultProgressDeadline = 10 * time.Minute
	// probePeriod is the startup probe's period.
	probePeriod = 2
	// livenessPeriod is the liveness probe's period. The liveness probe
	// is a backstop: a function that must be replaced (a prediction
	// overran its deadline by limits.overrun_grace) fails /healthz, drains
	// its other predictions within the runtime's drain bound and exits by
	// itself; the kubelet restarts it only if it cannot, or if it stops
	// answering altogether.
	livenessPeriod = 10
	// livenessTimeout is generous: a replica whose cores are all busy
	// predicting may be slow to answer /healthz, and that is not a fault.
	livenessTimeout = 5
)

// Models fetched by reference (predictor.model: oci://, https://, s3://)
// are not in the image: a replica fetches them when it starts, into a
// cache on a volume of its own, and their size is not known when the
// Service is written.
const (
	// ModelCacheDir is where the model cache volume is mounted, and
	// ModelCacheEnv the variable that tells the runtime so
	// (runtime/modelfetch reads it). The root filesystem is read-only:
	// the volume is the one place a replica can write its models to.
	ModelCacheDir = "/var/cache/cortex/models"
	ModelCacheEnv = "CORTEX_MODEL_CACHE"
	// modelCacheVolume names the volume.
	modelCacheVolume = "model-cache"
	// ReferencedModelSize is the size the startup probe and the progress
	// deadline assume for all the models a function names by reference
	// together: 8 GiB, more than the multi-GB models this is meant for.
	// A larger model needs targets.knative.startup_timeout; see
	// docs/gpu.md.
	ReferencedModelSize = 8 << 30
	// ModelCacheLimit is the model cache volume's sizeLimit: twice
	// ReferencedModelSize, room for a model and a partial download of
	// the next. A replica whose cache outgrows it is evicted.
	ModelCacheLimit = 2 * ReferencedModelSize
	// fetchRate is the slowest rate a replica fetches a model at (bytes
	// per second).
	fetchRate = 25 << 20
)

// TokenEnvAnnotation on the Service names the variable of the function's
// bearer token (auth.token_env), never its value: `cortex get` sends the
// variable of that name from its own environment to read the function's
// metrics, which need the token.
const TokenEnvAnnotation = "cortex.dev/token-env"

// livenessFailures is how many /healthz failures in a row make the kubelet
// restart the container: enough that the first failure is followed by
// at least the runtime's drain bound, so the kubelet does not cut short
// the drain of a process that is about to exit by itself.
var livenessFailures = int32(math.Ceil(runtime.DefaultShutdownTimeout.Seconds()/livenessPeriod)) + 1

// LoadBudget is how long a replica may take to load its model before the
// startup probe gives up: twice the expected load time, at least a minute.
func LoadBudget(modelSize int64) time.Duration {
	expect := loadBase + time.Duration(float64(modelSize)/loadRate*float64(time.Second))
	return max(2*expect, time.Minute)
}

// StartBudget is how long a replica may take from its container's start
// to ready, the startup probe's budget: targets.knative.startup_timeout
// when the spec sets it, else LoadBudget of its models, and when
// it names models by reference, their fetch and load at the sizing rates,
// taking them to be ReferencedModelSize together (their size is not known
// when the Service is written).
func StartBudget(s *spec.Spec, o Options) time.Duration {
	if st := s.Targets.Knative.StartupTimeout; st > 0 {
		return st // targets.knative.startup_timeout
	}
	if len(s.Predictor.ModelReferences()) == 0 {
		return LoadBudget(o.ModelSize)
	}
	fetch := time.Duration(float64(ReferencedModelSize) / fetchRate * float64(time.Second))
	return LoadBudget(o.ModelSize+ReferencedModelSize) + fetch
}

// ProgressDeadline is how long Knative waits for a new revision's first
// replica: pulling the image, starting within the startup probe's budget
// (StartBudget), and for GPU functions a GPU node coming up, plus a
// margin. It is rounded up to whole minutes.
func ProgressDeadline(s *spec.Spec, o Options) time.Duration {
	d := time.Duration(float64(o.ImageSize)/pullRate*float64(time.Second)) + StartBudget(s, o) + time.Minute
	if s.Compute.GPU > 0 {
		d += gpuNodeScaleUp
	}
	return time.Duration(math.Ceil(d.Minutes())) * time.Minute
}

// Service returns the Knative Service for the function s, running
// o.Image. See the package documentation for what it sets and why.
func Service(s *spec.Spec, o Options) (*servingv1.Service, error) {
	if o.Image == "" {
		return nil, errors.New("knative: no image")
	}
	if !strings.Contains(o.Image, "@sha256:") {
		return nil, fmt.Errorf("knative: image %q is not a digest reference (repo@sha256:...): a tag could move under a running revision", o.Image)
	}
	a := s.Autoscaling
	ann := map[string]string{
		autoscaling.MinScaleAnnotationKey: strconv.Itoa(a.MinScale),
		autoscaling.MaxScaleAnnotationKey: strconv.Itoa(a.MaxScale),
		autoscaling.MetricAnnotationKey:   autoscaling.Concurrency,
		autoscaling.TargetAnnotationKey:   strconv.Itoa(a.TargetConcurrency),
		autoscaling.WindowAnnotationKey:   a.Window.String(),
	}
	if a.ScaleDownDelay > 0 {
		ann[autoscaling.ScaleDownDelayAnnotationKey] = a.ScaleDownDelay.String()
	}
	pd := ProgressDeadline(s, o)
	if s.Compute.GPU > 0 || pd > defaultProgressDeadline {
		ann[serving.ProgressDeadlineAnnotationKey] = pd.String()
	}

	cpu, err := resource.ParseQuantity(s.Compute.CPU)
	if err != nil {
		return nil, fmt.Errorf("compute.cpu %q: %w", s.Compute.CPU, err)
	}
	mem, err := resource.ParseQuantity(s.Compute.Mem)
	if err != nil {
		return nil, fmt.Errorf("compute.mem %q: %w", s.Compute.Mem, err)
	}
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: mem},
	}

	budget := StartBudget(s, o)
	container := corev1.Container{
		Name:      "function",
		Image:     o.Image,
		Ports:     []corev1.ContainerPort{{Name: "http1", ContainerPort: Port, Protocol: corev1.ProtocolTCP}},
		Env:       secretEnv(s.Secrets()),
		Resources: res,
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz"}},
			PeriodSeconds:    probePeriod,
			TimeoutSeconds:   1,
			FailureThreshold: 3,
		},
		LivenessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(Port)}},
			PeriodSeconds:    livenessPeriod,
			TimeoutSeconds:   livenessTimeout,
			FailureThreshold: livenessFailures,
		},
		StartupProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(Port)}},
			PeriodSeconds:    probePeriod,
			TimeoutSeconds:   1,
			FailureThreshold: int32(math.Ceil(budget.Seconds() / probePeriod)),
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr(true),
			ReadOnlyRootFilesystem:   ptr(true),
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	if len(s.Predictor.ModelReferences()) > 0 {
		container.Env = append(container.Env, corev1.EnvVar{Name: ModelCacheEnv, Value: ModelCacheDir})
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: modelCacheVolume, MountPath: ModelCacheDir})
	}
	// No Kubernetes API token in the pod: a function has no business with
	// the cluster's API, and a compromised one should find no credential.
	podSpec := corev1.PodSpec{Containers: []corev1.Container{container}, AutomountServiceAccountToken: ptr(false)}
	if len(s.Predictor.ModelReferences()) > 0 {
		// The node's disk, not memory (medium ""): a multi-GB model in a
		// tmpfs would count against the container's memory limit.
		limit := resource.NewQuantity(ModelCacheLimit, resource.BinarySI)
		podSpec.Volumes = []corev1.Volume{{Name: modelCacheVolume,
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: limit}}}}
	}
	if g := s.Compute.GPU; g > 0 {
		q := *resource.NewQuantity(int64(g), resource.DecimalSI)
		container.Resources.Limits[GPUResource] = q
		podSpec.Containers[0] = container
		podSpec.NodeSelector = maps.Clone(s.Targets.Knative.GPUNodeSelector)
		if len(podSpec.NodeSelector) == 0 {
			podSpec.NodeSelector = map[string]string{spec.GPUPresentLabel: "true"}
		}
		podSpec.Tolerations = []corev1.Toleration{{Key: string(GPUResource), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	}

	labels := map[string]string{FunctionLabel: s.Name}
	svcLabels := maps.Clone(labels)
	if s.Targets.Knative.Visibility == spec.VisibilityClusterLocal {
		svcLabels[VisibilityLabel] = "cluster-local"
	}
	timeout := int64(math.Ceil((s.Limits.Timeout + 5*time.Second).Seconds()))
	timeout = min(timeout, 600)
	// One prediction per process (limits.max_concurrency: 1, a model
	// that fills its GPU) is containerConcurrency 1: the queue-proxy
	// holds the next request rather than send it to a busy replica.
	cc := int64(s.Limits.MaxConcurrency)

	var svcAnn map[string]string
	if s.Auth.TokenEnv != "" {
		svcAnn = map[string]string{TokenEnvAnnotation: s.Auth.TokenEnv}
	}

	svc := &servingv1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: servingv1.SchemeGroupVersion.String(), Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Targets.Knative.Namespace, Labels: svcLabels, Annotations: svcAnn},
		Spec: servingv1.ServiceSpec{
			ConfigurationSpec: servingv1.ConfigurationSpec{
				Template: servingv1.RevisionTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: ann},
					Spec: servingv1.RevisionSpec{
						PodSpec:              podSpec,
						ContainerConcurrency: &cc,
						// A streamed prediction's answer may start late and
						// go quiet between chunks: neither bound is shorter
						// than the prediction's own (limits.timeout, which
						// the runtime ends with an error event).
						TimeoutSeconds:              &timeout,
						ResponseStartTimeoutSeconds: &timeout,
						IdleTimeoutSeconds:          &timeout,
					},
				},
			},
		},
	}
	return svc, nil
}

// secretEnv puts each secret variable (wasm.secret_env's and auth's
// token) in the container's environment from its Kubernetes Secret: the
// runtime reads it there at start, and neither the image nor this
// manifest holds the value. A missing Secret or key keeps the pod from
// starting (the reference is not optional), which `kubectl describe`
// names, rather than a function that starts without its secret; only the
// webhook secret's reference is optional, since the function runs without
// it (sending no webhooks).
func secretEnv(env []spec.Secret) []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, e := range env {
		ref := &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: e.Secret}, Key: e.Key}
		if e.Webhook {
			// The function runs without its webhook secret (it sends no
			// webhooks then): that one may be missing.
			ref.Optional = ptr(true)
		}
		out = append(out, corev1.EnvVar{Name: e.Name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: ref}})
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// YAML renders svc as a manifest for kubectl apply: no status, no empty
// creation timestamps.
func YAML(svc *servingv1.Service) ([]byte, error) {
	b, err := json.Marshal(svc)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	prune(m)
	return yaml.Marshal(m)
}

// prune drops the null and empty-object fields that Kubernetes types
// marshal (creationTimestamp: null, resources: {}).
func prune(v any) {
	m, ok := v.(map[string]any)
	if !ok {
		if l, ok := v.([]any); ok {
			for _, e := range l {
				prune(e)
			}
		}
		return
	}
	for k, e := range m {
		prune(e)
		if e == nil || (k == "port" && e == 0.0) {
			// port 0 on a probe means "the container's port" to Knative.
			delete(m, k)
		} else if em, ok := e.(map[string]any); ok && len(em) == 0 {
			delete(m, k)
		}
	}
}

// Features are the config-features flags of the cluster a Service is
// validated against. The GPU manifest needs NodeSelector and Tolerations
// (both off in a default Knative install). The model cache of a function
// with models by reference is an emptyDir volume, which needs
// kubernetes.podspec-volumes-emptydir, on unless EmptyDirDisabled.
type Features struct {
	NodeSelector, Tolerations bool
	// EmptyDirDisabled is a cluster that turned
	// kubernetes.podspec-volumes-emptydir off (Knative's default is on).
	EmptyDirDisabled bool
}

// Needed returns the config-features flags svc needs that a default
// Knative install has off: the keys of the knative-serving/config-features
// ConfigMap that must be "enabled". Flags on by default
// (kubernetes.podspec-volumes-emptydir) are not listed; the deploy's
// preflight checks them in the cluster.
func Needed(svc *servingv1.Service) []string {
	var flags []string
	ps := svc.Spec.Template.Spec.PodSpec
	if len(ps.NodeSelector) > 0 {
		flags = append(flags, "kubernetes.podspec-nodeselector")
	}
	if len(ps.Tolerations) > 0 {
		flags = append(flags, "kubernetes.podspec-tolerations")
	}
	return flags
}

// ValidationError lists what Knative's webhook would say about a Service:
// errors reject it, warnings are shown to the user by kubectl.
type ValidationError struct {
	Errors, Warnings []string
}

func (e *ValidationError) Error() string {
	var parts []string
	for _, s := range e.Errors {
		parts = append(parts, "error: "+s)
	}
	for _, s := range e.Warnings {
		parts = append(parts, "warning: "+s)
	}
	return "knative validation: " + strings.Join(parts, "; ")
}

// Validate runs Knative's own defaulting and validation (what the
// serving webhook runs on create) on a copy of svc, in a cluster whose
// config-features enables f, and returns a *ValidationError when Knative
// reports any error or warning.
func Validate(ctx context.Context, svc *servingv1.Service, f Features) error {
	features, err := config.NewFeaturesConfigFromMap(map[string]string{})
	if err != nil {
		return err
	}
	if f.NodeSelector {
		features.PodSpecNodeSelector = config.Enabled
	}
	if f.Tolerations {
		features.PodSpecTolerations = config.Enabled
	}
	if f.EmptyDirDisabled {
		features.PodSpecVolumesEmptyDir = config.Disabled
	}
	cfg := config.FromContextOrDefaults(ctx)
	cfg = &config.Config{Defaults: cfg.Defaults, Features: features, Autoscaler: cfg.Autoscaler}
	ctx = config.ToContext(ctx, cfg)
	ctx = apis.WithinCreate(ctx)
	c := svc.DeepCopy()
	c.SetDefaults(ctx)
	fe := c.Validate(ctx)
	if fe == nil {
		return nil
	}
	e := &ValidationError{}
	if errs := fe.Filter(apis.ErrorLevel); errs != nil {
		e.Errors = lines(errs)
	}
	if warns := fe.Filter(apis.WarningLevel); warns != nil {
		e.Warnings = lines(warns)
	}
	if len(e.Errors) == 0 && len(e.Warnings) == 0 {
		return nil
	}
	return e
}

func lines(fe *apis.FieldError) []string {
	var out []string
	for _, l := range strings.Split(fe.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return slices.Compact(out)
}
