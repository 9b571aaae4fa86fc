package spec

import (
	"path/filepath"
	"strings"

	"github.com/cortexfn/cortex/runtime"
)

// RuntimeConfig converts the spec to the configuration the function's
// runtime reads (runtime.Config). Call SetDefaults first; RuntimeConfig
// copies values as they are. Paths stay relative (with forward slashes) and
// Dir is the spec's Dir, so a packager that ships the files beside the
// config clears Dir and the runtime resolves them against the config's own
// directory.
//
// A pre or post stage that names a Go package is built to a .wasm by the
// packager, which then sets Pre or Post to the built file.
func (s *Spec) RuntimeConfig() runtime.Config {
	c := runtime.Config{
		Name: s.Name,
		Dir:  s.Dir,
		Predictor: runtime.PredictorConfig{
			Type:        s.Predictor.Type,
			Model:       modelPath(s.Predictor.Model),
			ModelSHA256: strings.ToLower(s.Predictor.ModelSHA256),
			Values:      s.Predictor.Config,
		},
		Pre:  slash(s.Pre),
		Post: slash(s.Post),
		Wasm: runtime.WasmConfig{
			MemoryLimit:     int64(s.Wasm.Memory),
			Env:             s.Wasm.Env,
			SecretEnv:       secretNames(s.Wasm.SecretEnv),
			Clock:           s.Wasm.Clock,
			Random:          s.Wasm.Random,
			Uninterruptible: s.Wasm.Uninterruptible,
		},
		GPU: s.Compute.GPU,
		Limits: runtime.Limits{
			MaxBody:        int64(s.Limits.MaxBody),
			Timeout:        runtime.Duration(s.Limits.Timeout),
			MaxConcurrency: s.Limits.MaxConcurrency,
			OverrunGrace:   runtime.Duration(s.Limits.OverrunGrace),
		},
	}
	if a := s.Auth; a.TokenEnv != "" {
		c.Auth = runtime.AuthConfig{TokenEnv: a.TokenEnv, Secret: a.Secret, Key: a.Key}
	}
	if len(s.CORS.AllowOrigins) > 0 {
		c.CORS = runtime.CORSConfig{
			AllowOrigins: s.CORS.AllowOrigins,
			AllowHeaders: s.CORS.AllowHeaders,
			MaxAge:       runtime.Duration(s.CORS.MaxAge),
		}
	}
	c.LambdaPages = s.Targets.Lambda.Pages
	if s.Has("async") { // else the runtime's defaults, the same, and cortex.json says nothing of it
		c.Async = runtime.AsyncConfig{
			Keep:             runtime.Duration(s.Async.Keep),
			MaxPredictions:   s.Async.MaxPredictions,
			MaxOutput:        int64(s.Async.MaxOutput),
			WebhookSecretEnv: s.Async.WebhookSecretEnv,
			WebhookAllow:     s.Async.WebhookAllow,
			WebhookAttempts:  s.Async.WebhookAttempts,
			WebhookBackoff:   runtime.Duration(s.Async.WebhookBackoff),
		}
	}
	for _, m := range s.Predictor.Models {
		c.Predictor.Models = append(c.Predictor.Models, runtime.ModelConfig{Name: m.Name, Path: modelPath(m.Path), SHA256: strings.ToLower(m.SHA256)})
	}
	if s.Predictor.MultiModel() {
		c.Predictor.ModelsDir = slash(s.Predictor.ModelsDir)
		c.Predictor.CacheSize = s.Predictor.CacheSize
		c.Predictor.PollInterval = runtime.Duration(s.Predictor.PollInterval)
		c.Predictor.DefaultModel = s.Predictor.DefaultModel
	}
	if q := s.Limits.MaxQueue; q != nil {
		// The runtime reads 0 as "default" and a negative queue as "none".
		c.Limits.MaxQueue = *q
		if *q == 0 {
			c.Limits.MaxQueue = -1
		}
	}
	if s.Batching.MaxBatchSize > 1 {
		c.Batching = runtime.Batching{
			MaxBatchSize:  s.Batching.MaxBatchSize,
			BatchInterval: runtime.Duration(s.Batching.BatchInterval),
		}
	}
	return c
}

// secretNames are the names of wasm.secret_env: all the runtime's config
// holds of them.
func secretNames(env []SecretEnv) []string {
	var names []string
	for _, e := range env {
		names = append(names, e.Name)
	}
	return names
}

// modelPath is slash for a path, and a reference as it is written
// (cleaning would fold its "//").
func modelPath(p string) string {
	if IsModelReference(p) {
		return p
	}
	return slash(p)
}

func slash(p string) string {
	if p == "" {
		return ""
	}
	return filepath.ToSlash(filepath.Clean(filepath.FromSlash(p)))
}
