package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Config is everything the runtime needs to serve one function. The
// packager resolves cortex.yaml into a Config (defaults filled, paths
// resolved) and ships it as JSON beside the binary (ConfigName); Main reads
// it from the file named by $CORTEX_CONFIG, else from there. Its zero value
// serves a predictor with the defaults documented on each field.
type Config struct {
	// Name is the function's name; it labels logs and metrics and is the
	// model name on the Open Inference Protocol routes.
	Name string `json:"name"`
	// Dir is the directory relative paths are resolved against. When a
	// Config is read from a file, an empty Dir means that file's directory.
	Dir string `json:"dir,omitempty"`
	// Predictor configures the predictor (predictor.* in cortex.yaml).
	Predictor PredictorConfig `json:"predictor"`
	// Pre and Post name optional WebAssembly stages (.wasm paths).
	Pre  string `json:"pre,omitempty"`
	Post string `json:"post,omitempty"`
	// Wasm bounds the stages and grants them what the sandbox withholds.
	Wasm WasmConfig `json:"wasm,omitzero"`
	// WasmCacheDir, when set, keeps wazero's compiled stages on disk so a
	// restart does not compile them again.
	WasmCacheDir string `json:"wasm_cache_dir,omitempty"`
	// GPU is the number of GPUs asked for (compute.gpu).
	GPU int `json:"gpu,omitempty"`
	// Limits bounds what one request and the whole process may use.
	Limits Limits `json:"limits"`
	// Batching, when MaxBatchSize > 1, gathers concurrent requests.
	Batching Batching `json:"batching,omitempty"`
	// Auth, when it names a variable, makes the function require a bearer
	// token on every route but its health probes and its page's static
	// shell (auth.* in cortex.yaml).
	Auth AuthConfig `json:"auth,omitzero"`
	// CORS, when it names origins, lets pages of those origins call the
	// function (cors.* in cortex.yaml). Without it a function sends no CORS
	// headers: browsers let only pages of its own origin read its answers.
	CORS CORSConfig `json:"cors,omitzero"`
	// LambdaPages serves the function's page on the Lambda carrier too
	// (targets.lambda.pages); without it only the HTTP carrier serves it.
	LambdaPages bool `json:"lambda_pages,omitempty"`
	// Async bounds background predictions (Prefer: respond-async) and
	// their webhooks (async.* in cortex.yaml; see async.go).
	Async AsyncConfig `json:"async,omitzero"`
}

// AsyncConfig is async.* from cortex.yaml: how long background
// predictions' results are kept, how many, and where their webhooks may
// go. Its zero value keeps 1000 results for an hour, each up to 1 MiB,
// delivers each webhook in 5 attempts over about a minute, sends webhooks
// only to public addresses, and sends none at all without a signing
// secret. A background prediction runs under limits.* as any other (its
// deadline is limits.timeout).
type AsyncConfig struct {
	// Keep is how long a finished prediction's result is kept (default
	// 1h); after it, GET /predictions/{id} answers 404.
	Keep Duration `json:"keep,omitempty"`
	// MaxPredictions is how many predictions are kept at most (default
	// 1000); the oldest finished one is deleted to make room, and a new
	// one is refused with 503 while all are unfinished.
	MaxPredictions int `json:"max_predictions,omitempty"`
	// MaxOutput is the largest answer kept, in bytes (default 1 MiB): a
	// larger one makes the prediction failed, saying so. With
	// MaxPredictions it bounds the memory results take.
	MaxOutput int64 `json:"max_output,omitempty"`
	// WebhookSecretEnv is the variable that holds the secret webhooks
	// are signed with (whsec_ and base64, as Standard Webhooks writes
	// it). The secret is never in a Config: the runtime reads it from
	// its own environment. Empty: the function sends no webhooks, and a
	// request that asks for one is refused with 422.
	WebhookSecretEnv string `json:"webhook_secret_env,omitempty"`
	// WebhookAllow opens hosts that webhooks may not reach by default
	// (loopback, private, link-local, cluster-internal): each a host
	// name or IP address (any port), host:port, or a CIDR block.
	WebhookAllow []string `json:"webhook_allow,omitempty"`
	// WebhookAttempts is how many times a completed event is sent
	// before it is given up (default 5).
	WebhookAttempts int `json:"webhook_attempts,omitempty"`
	// WebhookBackoff is the wait before the second attempt, doubled
	// before each later one (default 4s: 4+8+16+32 s, about a minute).
	WebhookBackoff Duration `json:"webhook_backoff,omitempty"`
}

// Defaults for AsyncConfig.
const (
	DefaultAsyncKeep       = time.Hour
	DefaultMaxPredictions  = 1000
	DefaultMaxOutput       = 1 << 20
	DefaultWebhookAttempts = 5
	DefaultWebhookBackoff  = 4 * time.Second
)

// WithDefaults returns a with every zero field set to its default.
func (a AsyncConfig) WithDefaults() AsyncConfig {
	if a.Keep <= 0 {
		a.Keep = Duration(DefaultAsyncKeep)
	}
	if a.MaxPredictions <= 0 {
		a.MaxPredictions = DefaultMaxPredictions
	}
	if a.MaxOutput <= 0 {
		a.MaxOutput = DefaultMaxOutput
	}
	if a.WebhookAttempts <= 0 {
		a.WebhookAttempts = DefaultWebhookAttempts
	}
	if a.WebhookBackoff <= 0 {
		a.WebhookBackoff = Duration(DefaultWebhookBackoff)
	}
	return a
}

// AuthConfig is auth.* from cortex.yaml. It holds where the token comes
// from, never the token: the runtime reads it from its own process's
// environment when it starts, where the platform put it (a Kubernetes
// Secret on Knative, cortex deploy on Lambda, the command's environment
// under cortex serve and cortex test).
type AuthConfig struct {
	// TokenEnv is the variable that holds the token. Empty: no token is
	// required.
	TokenEnv string `json:"token_env,omitempty"`
	// Secret and Key name the Kubernetes Secret, and the key in it, that
	// the variable is set from on Knative: only for the error that says
	// where a missing token should have come from.
	Secret string `json:"secret,omitempty"`
	Key    string `json:"key,omitempty"`
}

// Required reports whether the function requires a bearer token.
func (a AuthConfig) Required() bool { return a.TokenEnv != "" }

// CORSConfig is cors.* from cortex.yaml: which other origins' pages may
// call the function. Its zero value allows none.
type CORSConfig struct {
	// AllowOrigins are the origins (scheme://host[:port]) whose pages may
	// call the function; "*" is any origin, and one '*' in an origin
	// stands for any characters (https://*.example.com).
	AllowOrigins []string `json:"allow_origins,omitempty"`
	// AllowHeaders are request headers such pages may send besides those
	// every function takes (Accept, Content-Type, Content-Encoding,
	// X-Request-Id, and Authorization when a token is required).
	AllowHeaders []string `json:"allow_headers,omitempty"`
	// MaxAge is how long a browser may keep a preflight's answer; zero
	// leaves it to the browser (5 seconds by the Fetch standard).
	MaxAge Duration `json:"max_age,omitempty"`
}

// WasmConfig is wasm.* from cortex.yaml. Its zero value is the strictest
// sandbox: 128 MiB per instance, no environment, a fixed clock, fixed
// randomness, no filesystem.
type WasmConfig struct {
	// MemoryLimit caps each stage instance's memory in bytes (default
	// 128 MiB), rounded down to whole 64 KiB pages.
	MemoryLimit int64             `json:"memory_limit,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	// SecretEnv names more variables the stages see (wasm.secret_env),
	// whose values are secrets and so are never in a Config: the runtime
	// reads each from its own process's environment at start, where the
	// platform put it (a Kubernetes Secret on Knative, the command's
	// environment under cortex serve). Start fails when one is not set.
	SecretEnv []string `json:"secret_env,omitempty"`
	Clock     bool     `json:"clock,omitempty"`
	Random    bool     `json:"random,omitempty"`
	// Uninterruptible is wasm.interruptible: false (wasm.Options).
	Uninterruptible bool `json:"uninterruptible,omitempty"`
}

// PredictorConfig is predictor.* from cortex.yaml.
type PredictorConfig struct {
	// Type is "onnx" (built in) or "go" (a user's package).
	Type string `json:"type"`
	// Model is the model file or directory, relative to Dir or absolute,
	// or a reference fetched at start (oci://, https://, s3://; see
	// runtime/modelfetch), which Start replaces with the fetched path.
	Model string `json:"model,omitempty"`
	// ModelSHA256 is the hex SHA-256 a referenced Model must have.
	ModelSHA256 string `json:"model_sha256,omitempty"`
	// Values is predictor.config, passed to Init.
	Values map[string]any `json:"config,omitempty"`

	// The fields below configure a multi-model onnx function; Model is then
	// empty. The generated main passes the same values to
	// onnx.NewRepository: they are recorded here so that the config beside
	// the binary describes everything the function serves.

	// Models lists the models by name (predictor.models). Each path is a
	// .onnx file or a directory of version subdirectories, relative to Dir
	// or absolute.
	Models []ModelConfig `json:"models,omitempty"`
	// ModelsDir is a directory whose subdirectories are the models
	// (predictor.models_dir), relative to Dir or absolute.
	ModelsDir string `json:"models_dir,omitempty"`
	// CacheSize is how many models may be loaded at once; 0 loads them all.
	CacheSize int `json:"cache_size,omitempty"`
	// PollInterval is how often the model files are checked for changes
	// (default 2s).
	PollInterval Duration `json:"poll_interval,omitempty"`
	// DefaultModel serves requests that name no model. Empty means such a
	// request is a 400 when several models are served.
	DefaultModel string `json:"default_model,omitempty"`
}

// ModelConfig is one entry of predictor.models.
type ModelConfig struct {
	Name string `json:"name"`
	// Path is a path as PredictorConfig.Models says, or a reference
	// as PredictorConfig.Model may be.
	Path string `json:"path"`
	// SHA256 is the hex SHA-256 a referenced Path must have.
	SHA256 string `json:"sha256,omitempty"`
}

// Limits bounds a function's resources. Zero fields take the defaults below.
type Limits struct {
	// MaxBody is the largest request body in bytes (default 6 MiB, Lambda's
	// buffered payload limit). Larger bodies are a 413.
	MaxBody int64 `json:"max_body,omitempty"`
	// Timeout bounds one prediction (default 30s). A prediction that runs
	// past it is answered with a 504.
	Timeout Duration `json:"timeout,omitempty"`
	// MaxConcurrency is how many predictions run at once (default 64).
	MaxConcurrency int `json:"max_concurrency,omitempty"`
	// MaxQueue is how many more may wait for a slot (default 128; negative
	// means none may wait). Beyond that a request is refused with 503 and
	// Retry-After.
	MaxQueue int `json:"max_queue,omitempty"`
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// after SIGTERM (default 30s), and before a process that must be
	// replaced exits.
	ShutdownTimeout Duration `json:"shutdown_timeout,omitempty"`
	// OverrunGrace is how long a prediction may run on past its deadline
	// before the process is replaced (default DefaultOverrunGrace(Timeout)).
	// Its caller has had its 504 at the deadline, but Go cannot stop the
	// goroutine: a predictor that ignores its context (a loop, a cgo call)
	// keeps its core and its concurrency slot. Past the grace the runtime
	// reports itself unhealthy, drains the other predictions and exits with
	// ExitReplace, so that its supervisor starts a fresh process.
	OverrunGrace Duration `json:"overrun_grace,omitempty"`
}

// Batching configures server-side batching.
type Batching struct {
	MaxBatchSize  int      `json:"max_batch_size,omitempty"`
	BatchInterval Duration `json:"batch_interval,omitempty"`
}

// Defaults for Limits.
const (
	DefaultMaxBody         = 6 << 20
	DefaultTimeout         = 30 * time.Second
	DefaultMaxConcurrency  = 64
	DefaultMaxQueue        = 128
	DefaultShutdownTimeout = 30 * time.Second
	// MinDefaultOverrunGrace is the shortest default overrun grace.
	MinDefaultOverrunGrace = 5 * time.Second
)

// DefaultOverrunGrace is the overrun grace for a timeout when none is
// set: twice the timeout, at least MinDefaultOverrunGrace. Replacing a
// process costs a cold start (the model loads again), so only a prediction
// that is stuck should cost one, not one that ignores its context and
// finishes a little late: at three times its time budget, and seconds
// past it, a prediction is stuck rather than slow, whatever a GC pause or
// a busy node adds.
func DefaultOverrunGrace(timeout time.Duration) time.Duration {
	return max(2*timeout, MinDefaultOverrunGrace)
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxBody <= 0 {
		l.MaxBody = DefaultMaxBody
	}
	if l.Timeout <= 0 {
		l.Timeout = Duration(DefaultTimeout)
	}
	if l.MaxConcurrency <= 0 {
		l.MaxConcurrency = DefaultMaxConcurrency
	}
	if l.MaxQueue < 0 {
		l.MaxQueue = 0
	} else if l.MaxQueue == 0 {
		l.MaxQueue = DefaultMaxQueue
	}
	if l.ShutdownTimeout <= 0 {
		l.ShutdownTimeout = Duration(DefaultShutdownTimeout)
	}
	if l.OverrunGrace <= 0 {
		l.OverrunGrace = Duration(DefaultOverrunGrace(l.Timeout.D()))
	}
	return l
}

// Path resolves p against c.Dir. An empty p stays empty.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// LoadConfig reads a Config from a JSON file. Dir defaults to the file's
// directory.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading function config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("function config %s: %w", path, err)
	}
	if c.Dir == "" {
		abs, err := filepath.Abs(filepath.Dir(path))
		if err != nil {
			return nil, err
		}
		c.Dir = abs
	}
	return &c, nil
}

// Duration is a time.Duration that reads and writes as a Go duration
// string ("30s", "2ms"). A bare JSON number is taken as nanoseconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		if n, nerr := strconv.ParseInt(string(b), 10, 64); nerr == nil {
			*d = Duration(n)
			return nil
		}
		return fmt.Errorf("invalid duration %q: use a number with a unit, such as 30s or 2ms", b)
	}
	*d = Duration(v)
	return nil
}
