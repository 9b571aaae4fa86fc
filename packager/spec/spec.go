package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/cortexfn/cortex/runtime"
)

// FileName is the name of the spec file in a function directory.
const FileName = "cortex.yaml"

// Predictor types.
const (
	// TypeONNX is the built-in ONNX predictor: no Go code, only a model.
	TypeONNX = "onnx"
	// TypeGo is a Go package that exports func New() functions.Predictor.
	TypeGo = "go"
)

// Spec is a function's cortex.yaml. Its zero value, after SetDefaults, is
// valid except for the fields a function must name: Name and Predictor.
type Spec struct {
	// Name names the function. It becomes a Knative Service name, a Lambda
	// function name and a URL path segment, so it is a DNS label: lower-case
	// letters, digits and '-', starting with a letter, at most 57 characters
	// (Knative appends "-00001" for revision names, which must fit in 63).
	Name string `yaml:"name"`
	// Predictor says what serves predictions.
	Predictor Predictor `yaml:"predictor"`
	// Pre and Post name optional WebAssembly stages: a .wasm file or a Go
	// package directory built for wasip1, relative to the function directory.
	Pre  string `yaml:"pre"`
	Post string `yaml:"post"`
	// Wasm bounds the WebAssembly stages and grants them what the sandbox
	// otherwise withholds.
	Wasm Wasm `yaml:"wasm"`
	// Compute is what one replica asks for.
	Compute Compute `yaml:"compute"`
	// Autoscaling configures the Knative autoscaler.
	Autoscaling Autoscaling `yaml:"autoscaling"`
	// Batching gathers concurrent requests into one PredictBatch call.
	Batching Batching `yaml:"batching"`
	// Limits bounds a request and a replica.
	Limits Limits `yaml:"limits"`
	// Auth makes the function require a bearer token.
	Auth Auth `yaml:"auth"`
	// CORS lets pages of other origins call the function.
	CORS CORS `yaml:"cors"`
	// Async bounds background predictions and their webhooks.
	Async Async `yaml:"async"`
	// Targets holds the settings of each place a function can be deployed.
	Targets Targets `yaml:"targets"`

	// Dir is the absolute path of the function directory; relative paths in
	// the spec are resolved against it. Load sets it. Validate checks the
	// files the spec names only when Dir is set.
	Dir string `yaml:"-"`
	// File names the spec in messages, for example "fn/cortex.yaml".
	File string `yaml:"-"`
	// SHA256 is the hex digest of cortex.yaml as Load read it.
	SHA256 string `yaml:"-"`

	// lines maps a field path to the line its value was read from.
	lines map[string]int
	// bad holds the paths that had a problem while parsing, so that
	// validation does not report them again in other words.
	bad map[string]bool
}

// Predictor is predictor.* in cortex.yaml.
type Predictor struct {
	// Type is TypeONNX or TypeGo.
	Type string `yaml:"type"`
	// Model is a model file or directory, relative to the function
	// directory, or a reference the function's runtime fetches when it
	// starts (oci://, https://, s3://; see IsModelReference). Required for
	// onnx; optional for go.
	Model string `yaml:"model"`
	// ModelSHA256 is the hex SHA-256 of the file Model references:
	// required for https://, optional for s3:// (checked when given), not
	// used for oci:// (whose digests the registry's manifest carries).
	ModelSHA256 string `yaml:"model_sha256"`
	// Path is the Go package directory of a type go predictor, relative to
	// the function directory (for example ./predictor).
	Path string `yaml:"path"`
	// Config is passed to the predictor's Init as functions.Config.Values.
	// It holds what JSON would decode: numbers are float64.
	Config map[string]any `yaml:"config"`

	// Models lists the models of a multi-model onnx function, each a name
	// and a .onnx file or a directory of version subdirectories (1/, 2/,
	// ...), relative to the function directory. Set Models or ModelsDir
	// instead of Model.
	Models []Model `yaml:"models"`
	// ModelsDir is a directory whose subdirectories are the models: each
	// named for its model and holding one .onnx file or version
	// subdirectories 1/, 2/, ... with one .onnx file each.
	ModelsDir string `yaml:"models_dir"`
	// CacheSize is how many models may be loaded at once, the least
	// recently used unloaded first. 0 (the default) loads them all.
	CacheSize int `yaml:"cache_size"`
	// PollInterval is how often the model files are checked for new
	// versions and changes. Default 2s for a multi-model function.
	PollInterval time.Duration `yaml:"poll_interval"`
	// DefaultModel serves requests that name no model. Without it, such a
	// request is a 400 naming the models when there are several.
	DefaultModel string `yaml:"default_model"`
}

// Model is one entry of predictor.models.
type Model struct {
	Name string `yaml:"name"`
	// Path is a file or directory in the function directory, or a
	// reference (see IsModelReference).
	Path string `yaml:"path"`
	// SHA256 is the hex SHA-256 of the file Path references, as
	// Predictor.ModelSHA256 for Predictor.Model.
	SHA256 string `yaml:"sha256"`
}

// MultiModel reports whether the predictor serves several models
// (predictor.models or predictor.models_dir).
func (p *Predictor) MultiModel() bool { return len(p.Models) > 0 || p.ModelsDir != "" }

// Compute is compute.* in cortex.yaml.
type Compute struct {
	// CPU is a Kubernetes quantity of cores ("1", "500m"). Default "1".
	CPU string `yaml:"cpu"`
	// Mem is a Kubernetes quantity of bytes ("512Mi", "2Gi"). Default "1Gi".
	Mem string `yaml:"mem"`
	// GPU is the number of GPUs (nvidia.com/gpu). Default 0.
	GPU int `yaml:"gpu"`
}

// MilliCPU is CPU in thousandths of a core; 0 when CPU is unset or not a
// quantity (Validate reports that).
func (c Compute) MilliCPU() int64 {
	q, err := resource.ParseQuantity(c.CPU)
	if err != nil {
		return 0
	}
	return q.MilliValue()
}

// Wasm is wasm.* in cortex.yaml: the sandbox of the pre and post stages.
// A stage gets no filesystem, network, environment, real clock or real
// randomness unless granted here (there is no network grant: WASI preview 1
// cannot open sockets).
type Wasm struct {
	// Memory caps each stage instance's memory. Default 128Mi.
	Memory Size `yaml:"memory"`
	// Env is the environment a stage sees. Default none. Its values are
	// shipped in the function's cortex.json: no secrets here.
	Env map[string]string `yaml:"env"`
	// SecretEnv is more of the environment a stage sees, whose values are
	// secrets: the spec names where each comes from, and no artifact holds
	// a value (see SecretEnv).
	SecretEnv []SecretEnv `yaml:"secret_env"`
	// Clock grants the real clock; without it a stage sees a fixed time.
	Clock bool `yaml:"clock"`
	// Random grants real randomness; without it a stage gets a fixed
	// sequence.
	Random bool `yaml:"random"`
	// Uninterruptible is wasm.interruptible: false: stage code runs several
	// times faster, but a deadline can no longer stop a call (the caller
	// still gets its 504; the stage keeps its slot until it returns).
	Uninterruptible bool `yaml:"-"`
}

// UnmarshalYAML reads wasm.interruptible, which is the opposite of
// Uninterruptible so that the zero Wasm is the safe one.
func (w *Wasm) UnmarshalYAML(n *yaml.Node) error {
	type fields Wasm // without this method
	var v struct {
		fields        `yaml:",inline"`
		Interruptible *bool `yaml:"interruptible"`
	}
	if err := n.Decode(&v); err != nil {
		return err
	}
	*w = Wasm(v.fields)
	w.Uninterruptible = v.Interruptible != nil && !*v.Interruptible
	return nil
}

// SecretEnv is one entry of wasm.secret_env: an environment variable a
// stage sees whose value is a secret. cortex.yaml, cortex.json and every
// image and zip hold its name only. The function's runtime reads the value
// from its own process's environment when it starts, and each place a
// function runs puts it there: on Knative a secretKeyRef to Key of the
// Kubernetes Secret named Secret; on this machine (cortex serve, cortex
// test) the variable of the same name in the command's environment
// (SecretValues).
type SecretEnv struct {
	// Name is the variable, as the stage and the function's process see
	// it.
	Name string `yaml:"name"`
	// Secret names the Kubernetes Secret that holds the value on Knative,
	// in the function's namespace.
	Secret string `yaml:"secret"`
	// Key is the value's key in the Secret.
	Key string `yaml:"key"`
}

// Auth is auth.* in cortex.yaml: the function requires Authorization:
// Bearer TOKEN on every route but its health probes and its page's static
// shell. The token is a secret, held like a wasm.secret_env variable:
// cortex.yaml, cortex.json and every image and zip name the variable
// only, and each place a function runs puts the value in its process's
// environment (see SecretEnv).
type Auth struct {
	// TokenEnv is the variable the function's process reads the token
	// from. Setting it turns the token check on.
	TokenEnv string `yaml:"token_env"`
	// Secret names the Kubernetes Secret that holds the token on Knative,
	// in the function's namespace.
	Secret string `yaml:"secret"`
	// Key is the token's key in the Secret.
	Key string `yaml:"key"`
}

// CORS is cors.* in cortex.yaml. Without AllowOrigins the function sends
// no CORS headers: only pages of its own origin can read its answers.
type CORS struct {
	// AllowOrigins are the origins whose pages may call the function.
	AllowOrigins []string `yaml:"allow_origins"`
	// AllowHeaders are more request headers such pages may send.
	AllowHeaders []string `yaml:"allow_headers"`
	// MaxAge is how long a browser may keep a preflight's answer; zero
	// leaves it to the browser.
	MaxAge time.Duration `yaml:"max_age"`
}

// Secret is a variable whose value a function's process reads from its
// environment and no artifact holds: an entry of wasm.secret_env, or the
// token of auth.
type Secret struct {
	SecretEnv
	// Path is the cortex.yaml key of its name, for messages:
	// "wasm.secret_env[0].name" or "auth.token_env".
	Path string
	// Token: it is auth's bearer token.
	Token bool
	// Webhook: it is async's webhook signing secret. The function runs
	// without it (and sends no webhooks), so it is optional where a
	// secret is otherwise required: a Knative pod starts without its
	// Secret, and cortex serve and cortex test start without the
	// variable.
	Webhook bool
}

// Secrets lists every secret variable of the function: wasm.secret_env's,
// then auth's token, then async's webhook secret. Each place a function runs sets them the same way
// (a secretKeyRef on Knative, cortex deploy on Lambda, the command's
// environment on this machine).
func (s *Spec) Secrets() []Secret {
	var out []Secret
	for i, e := range s.Wasm.SecretEnv {
		out = append(out, Secret{SecretEnv: e, Path: fmt.Sprintf("wasm.secret_env[%d].name", i)})
	}
	if a := s.Auth; a.TokenEnv != "" {
		out = append(out, Secret{SecretEnv: SecretEnv{Name: a.TokenEnv, Secret: a.Secret, Key: a.Key}, Path: "auth.token_env", Token: true})
	}
	if a := s.Async; a.WebhookSecretEnv != "" {
		out = append(out, Secret{SecretEnv: SecretEnv{Name: a.WebhookSecretEnv, Secret: a.WebhookSecret, Key: a.WebhookKey}, Path: "async.webhook_secret_env", Webhook: true})
	}
	return out
}

// SecretValues reads the value of every secret variable (Secrets) with
// lookup (os.LookupEnv): how a function run outside Kubernetes gets its
// secrets, from the variable of the same name in the environment of the
// command that runs it. It reports every variable lookup does not find,
// and a token the function would refuse (runtime.CheckToken), without
// its value.
func (s *Spec) SecretValues(lookup func(name string) (string, bool)) (map[string]string, error) {
	secrets := s.Secrets()
	if len(secrets) == 0 {
		return nil, nil
	}
	values := make(map[string]string, len(secrets))
	var missing []Problem
	for _, e := range secrets {
		what := "a stage's secret"
		if e.Token {
			what = "the function's bearer token (auth)"
		}
		v, ok := lookup(e.Name)
		if !ok && e.Webhook {
			continue // the function runs without webhooks
		}
		if !ok {
			missing = append(missing, Problem{Path: e.Path, Line: s.Line(e.Path), Message: fmt.Sprintf(
				"$%s is not set: outside Kubernetes %s comes from the variable of the same name in this command's environment (on Knative, from key %q of Secret %q); export %s and run again",
				e.Name, what, e.Key, e.Secret, e.Name)})
			continue
		}
		if e.Token {
			if err := runtime.CheckToken(e.Name, v); err != nil {
				missing = append(missing, Problem{Path: e.Path, Line: s.Line(e.Path), Message: err.Error()})
				continue
			}
		}
		values[e.Name] = v
	}
	if len(missing) > 0 {
		return nil, &ValidationError{File: s.File, Problems: missing}
	}
	return values, nil
}

// Autoscaling is autoscaling.* in cortex.yaml; the names follow Knative's
// autoscaling.knative.dev annotations.
type Autoscaling struct {
	// MinScale is the fewest replicas; 0 lets the function scale to zero.
	MinScale int `yaml:"min_scale"`
	// MaxScale is the most replicas. Default 10.
	MaxScale int `yaml:"max_scale"`
	// TargetConcurrency is the in-flight requests per replica the
	// autoscaler aims for. Default limits.max_concurrency.
	TargetConcurrency int `yaml:"target_concurrency"`
	// ScaleDownDelay keeps replicas this long after load drops (0 to 1h).
	ScaleDownDelay time.Duration `yaml:"scale_down_delay"`
	// Window is the autoscaler's averaging window (6s to 1h). Default 60s.
	Window time.Duration `yaml:"window"`
}

// Batching is batching.* in cortex.yaml.
type Batching struct {
	// MaxBatchSize is the largest batch; 0 or 1 turns batching off.
	MaxBatchSize int `yaml:"max_batch_size"`
	// BatchInterval is how long the first request of a batch waits for
	// others. Default 5ms when batching is on.
	BatchInterval time.Duration `yaml:"batch_interval"`
}

// Limits is limits.* in cortex.yaml.
type Limits struct {
	// MaxBody is the largest request body. Default 6MiB (Lambda's limit).
	MaxBody Size `yaml:"max_body"`
	// Timeout bounds one prediction. Default 30s; at most 10m.
	Timeout time.Duration `yaml:"timeout"`
	// MaxConcurrency is how many predictions a replica runs at once.
	// Default 64.
	MaxConcurrency int `yaml:"max_concurrency"`
	// MaxQueue is how many more requests may wait for a slot before the
	// function answers 503. Nil means the default, 128; 0 means no queue.
	MaxQueue *int `yaml:"max_queue"`
	// OverrunGrace is how long a prediction may run on past its deadline
	// before the process is replaced (runtime.Limits.OverrunGrace).
	// Default twice Timeout, at least 5s; at least 1s.
	OverrunGrace time.Duration `yaml:"overrun_grace"`
}

// Targets is targets.* in cortex.yaml.
type Targets struct {
	Knative Knative `yaml:"knative"`
	Lambda  Lambda  `yaml:"lambda"`
}

// Knative is targets.knative.* in cortex.yaml.
type Knative struct {
	// Namespace to deploy into. Default "default".
	Namespace string `yaml:"namespace"`
	// Visibility is "public" or "cluster-local". Default "public".
	Visibility string `yaml:"visibility"`
	// GPUNodeSelector selects GPU nodes when compute.gpu > 0. Default
	// {"nvidia.com/gpu.present": "true"} when a GPU is asked for.
	GPUNodeSelector map[string]string `yaml:"gpu_node_selector"`
	// Registry is where images are pushed, for example ghcr.io/acme.
	Registry string `yaml:"registry"`
	// StartupTimeout is how long a replica may take to become ready (the
	// startup probe's budget; the progress deadline grows with it). Zero:
	// sized from the model (packager/knative.StartBudget).
	StartupTimeout time.Duration `yaml:"startup_timeout"`
	// Trigger subscribes the Service to a Knative Eventing Broker; nil
	// for none.
	Trigger *Trigger `yaml:"trigger"`
}

// Lambda is targets.lambda.* in cortex.yaml.
type Lambda struct {
	// Arch is "x86_64" or "arm64". Default "x86_64".
	Arch string `yaml:"arch"`
	// Memory is the function's memory in MB, 128 to 10240. Default 1024.
	Memory int `yaml:"memory"`
	// URLAuth is the function URL's auth type, "AWS_IAM" or "NONE".
	// Default "AWS_IAM": a function is not public unless the spec says so.
	URLAuth string `yaml:"url_auth"`
	// InvokeMode is the function URL's invoke mode, "BUFFERED" or
	// "RESPONSE_STREAM" (a streaming predictor's chunks reach the caller
	// as they are sent). Default "BUFFERED".
	InvokeMode string `yaml:"invoke_mode"`
	// Pages serves the function's page on Lambda too. Default false: only
	// the HTTP carrier (Knative, cortex serve) serves it.
	Pages bool `yaml:"pages"`
	// Async is the event-invoke configuration of Lambda's asynchronous
	// invoke; nil for Lambda's defaults.
	Async *LambdaAsync `yaml:"async"`
	// Package is how the function reaches Lambda: LambdaPackageZip or
	// LambdaPackageImage. Empty: a zip, or the container image when the
	// zip would pass Lambda's limits for one.
	Package string `yaml:"package"`
	// Registry is the repository (an Amazon ECR one, as Lambda pulls
	// only from ECR) a container-image function is pushed to, for example
	// 123456789012.dkr.ecr.eu-west-1.amazonaws.com/cortex. `cortex deploy
	// --registry` overrides it.
	Registry string `yaml:"registry"`
}

// How a function reaches Lambda (targets.lambda.package).
const (
	// LambdaPackageZip is a zip on the provided.al2023 runtime.
	LambdaPackageZip = "zip"
	// LambdaPackageImage is a container image (PackageType Image).
	LambdaPackageImage = "image"
)

// Line returns the line the field at path (for example "limits.max_body")
// was read from, or 0 when the spec did not set it.
func (s *Spec) Line(path string) int { return s.lines[path] }

// Has reports whether the spec file set the field or section at path.
func (s *Spec) Has(path string) bool {
	_, ok := s.lines[path]
	return ok
}

// Problem is one thing wrong with a spec.
type Problem struct {
	// Path is the field's path, for example "limits.max_body"; empty for
	// the file as a whole.
	Path string
	// Line is the line in the spec file, or 0 when unknown.
	Line int
	// Message says what is wrong and, where it can, how to fix it.
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "%d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError lists every problem found in a spec.
type ValidationError struct {
	// File names the spec file.
	File     string
	Problems []Problem
}

// Error returns one line per problem: "file:line: path: message".
func (e *ValidationError) Error() string {
	file := e.File
	if file == "" {
		file = FileName
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		sep := ":"
		if p.Line == 0 {
			sep = ": "
		}
		lines[i] = file + sep + p.String()
	}
	return strings.Join(lines, "\n")
}

func (e *ValidationError) sort() {
	sort.SliceStable(e.Problems, func(i, j int) bool { return e.Problems[i].Line < e.Problems[j].Line })
}

// ErrNoSpec is returned (wrapped) by Load when the directory has no cortex.yaml.
var ErrNoSpec = errors.New("spec: no " + FileName)

// Load reads dir/cortex.yaml, fills in defaults and validates it, including
// the files it names. The error, when the spec has problems, is a
// *ValidationError listing all of them, parse and validation alike.
func Load(dir string) (*Spec, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("function directory %s: %w", dir, err)
	}
	file := filepath.Join(dir, FileName)
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		if st, serr := os.Stat(dir); serr != nil || !st.IsDir() {
			return nil, fmt.Errorf("%s is not a function directory: %w", dir, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("%w in %s: create one with `cortex init`", ErrNoSpec, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	s, perr := Parse(data, file)
	if s == nil {
		return nil, perr
	}
	s.Dir = abs
	sum := sha256.Sum256(data)
	s.SHA256 = hex.EncodeToString(sum[:])
	s.SetDefaults()
	all := &ValidationError{File: file}
	var pe *ValidationError
	if errors.As(perr, &pe) {
		all.Problems = append(all.Problems, pe.Problems...)
	}
	var ve *ValidationError
	if err := s.Validate(); errors.As(err, &ve) {
		all.Problems = append(all.Problems, ve.Problems...)
	}
	if len(all.Problems) > 0 {
		all.sort()
		return nil, all
	}
	return s, nil
}
