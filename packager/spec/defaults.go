package spec

import (
	"time"

	"github.com/cortexfn/cortex/runtime"
)

// Defaults. Limits match the runtime's (runtime.DefaultMaxBody and so on),
// so a spec that says nothing and a runtime.Config that says nothing behave
// the same.
const (
	DefaultCPU            = "1"
	DefaultMem            = "1Gi"
	DefaultMaxScale       = 10
	DefaultWindow         = 60 * time.Second
	DefaultBatchInterval  = 5 * time.Millisecond
	DefaultPollInterval   = 2 * time.Second
	DefaultMaxBody        = Size(6 << 20)
	DefaultTimeout        = 30 * time.Second
	DefaultMaxConcurrency = 64
	DefaultMaxQueue       = 128
	DefaultNamespace      = "default"
	DefaultVisibility     = VisibilityPublic
	DefaultLambdaArch     = ArchX86
	DefaultLambdaMemory   = 1024
	DefaultURLAuth        = URLAuthIAM
)

// Allowed values of the enumerated fields.
const (
	VisibilityPublic       = "public"
	VisibilityClusterLocal = "cluster-local"
	ArchX86                = "x86_64"
	ArchARM64              = "arm64"
	URLAuthIAM             = "AWS_IAM"
	URLAuthNone            = "NONE"
	InvokeBuffered         = "BUFFERED"
	InvokeResponseStream   = "RESPONSE_STREAM"
	DefaultInvokeMode      = InvokeBuffered
)

// GPUPresentLabel is the node label the default GPU node selector uses (set
// by NVIDIA's GPU feature discovery).
const GPUPresentLabel = "nvidia.com/gpu.present"

// SetDefaults sets every field the spec left zero to its default:
//
//	predictor:   poll_interval 2s for a multi-model function (models or models_dir)
//	compute:     cpu 1, mem 1Gi, gpu 0
//	autoscaling: min_scale 0 (scale to zero), max_scale 10,
//	             target_concurrency = limits.max_concurrency, scale_down_delay 0, window 60s
//	batching:    off; batch_interval 5ms when max_batch_size > 1
//	limits:      max_body 6MiB, timeout 30s, max_concurrency 64, max_queue 128,
//	             overrun_grace twice the timeout, at least 5s
//	knative:     namespace default, visibility public,
//	             gpu_node_selector {nvidia.com/gpu.present: "true"} when gpu > 0
//	lambda:      arch x86_64, memory 1024 (MB), url_auth AWS_IAM
//
// It does not touch Name or the predictor's type and model, which a spec
// must set. It is idempotent.
func (s *Spec) SetDefaults() {
	if s.Predictor.MultiModel() && s.Predictor.PollInterval == 0 {
		s.Predictor.PollInterval = DefaultPollInterval
	}
	if s.Compute.CPU == "" {
		s.Compute.CPU = DefaultCPU
	}
	if s.Compute.Mem == "" {
		s.Compute.Mem = DefaultMem
	}

	l := &s.Limits
	if l.MaxBody == 0 {
		l.MaxBody = DefaultMaxBody
	}
	if l.Timeout == 0 {
		l.Timeout = DefaultTimeout
	}
	if l.MaxConcurrency == 0 {
		l.MaxConcurrency = DefaultMaxConcurrency
	}
	if l.MaxQueue == nil {
		q := DefaultMaxQueue
		l.MaxQueue = &q
	}
	if l.OverrunGrace == 0 {
		l.OverrunGrace = runtime.DefaultOverrunGrace(l.Timeout)
	}

	a := &s.Autoscaling
	if a.MaxScale == 0 {
		a.MaxScale = max(DefaultMaxScale, a.MinScale)
	}
	if a.TargetConcurrency == 0 {
		a.TargetConcurrency = max(l.MaxConcurrency, 1)
	}
	if a.Window == 0 {
		a.Window = DefaultWindow
	}

	if s.Batching.MaxBatchSize > 1 && s.Batching.BatchInterval == 0 {
		s.Batching.BatchInterval = DefaultBatchInterval
	}

	s.setAsyncDefaults()
	s.setEventDefaults()

	k := &s.Targets.Knative
	if k.Namespace == "" {
		k.Namespace = DefaultNamespace
	}
	if k.Visibility == "" {
		k.Visibility = DefaultVisibility
	}
	if s.Compute.GPU > 0 && len(k.GPUNodeSelector) == 0 {
		k.GPUNodeSelector = map[string]string{GPUPresentLabel: "true"}
	}

	lm := &s.Targets.Lambda
	if lm.Arch == "" {
		lm.Arch = DefaultLambdaArch
	}
	if lm.Memory == 0 {
		lm.Memory = DefaultLambdaMemory
	}
	if lm.URLAuth == "" {
		lm.URLAuth = DefaultURLAuth
	}
	if lm.InvokeMode == "" {
		lm.InvokeMode = DefaultInvokeMode
	}
}
