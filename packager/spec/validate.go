package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Limits that come from the platforms a function runs on.
const (
	maxNameLen      = 57               // 63 (DNS label) minus "-00001" (Knative revision suffix)
	maxTimeout      = 10 * time.Minute // Knative's max-revision-timeout-seconds default
	lambdaMaxBody   = 6 << 20          // Lambda's buffered request limit
	maxBodyCeiling  = 1 << 30
	minMem          = 32 << 20
	maxBatchSize    = 4096
	maxWindow       = time.Hour
	minWindow       = 6 * time.Second
	maxScaleDown    = time.Hour
	lambdaMinMemory = 128
	lambdaMaxMemory = 10240
	minOverrunGrace = time.Second    // shorter replaces processes for predictions merely late
	maxCORSMaxAge   = 24 * time.Hour // Firefox's cap, the highest of the browsers'
)

var registryChars = regexp.MustCompile(`^[A-Za-z0-9._\-/:\[\]]+$`)

// Validate checks the spec's values and how they fit together, and, when
// Dir is set, that the files it names exist inside the function directory.
// It returns a *ValidationError listing every problem, or nil. Call
// SetDefaults first: Validate checks the values that will be used.
func (s *Spec) Validate() error {
	v := &validator{s: s}
	v.name()
	v.predictor()
	v.stage("pre", s.Pre)
	v.stage("post", s.Post)
	v.wasm()
	v.compute()
	v.limits()
	v.autoscaling()
	v.batching()
	v.auth()
	v.cors()
	v.async()
	v.knative()
	v.lambda()
	v.events()
	if len(v.problems) == 0 {
		return nil
	}
	e := &ValidationError{File: s.File, Problems: v.problems}
	e.sort()
	return e
}

type validator struct {
	s        *Spec
	problems []Problem
}

func (v *validator) add(path, format string, args ...any) {
	if v.s.bad[path] {
		return // already reported while parsing
	}
	line := v.s.Line(path)
	for p := path; line == 0 && p != ""; {
		i := strings.LastIndex(p, ".")
		if i < 0 {
			break
		}
		p = p[:i]
		line = v.s.Line(p)
	}
	v.problems = append(v.problems, Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) name() {
	n := v.s.Name
	switch {
	case n == "":
		v.add("name", "is required: a short lower-case name such as iris or sentiment-v2")
	case len(n) > maxNameLen:
		v.add("name", "%q is %d characters; at most %d fit in a Knative revision name", n, len(n), maxNameLen)
	case len(validation.IsDNS1035Label(n)) > 0: // a DNS label that starts with a letter
		v.add("name", "%q is not a valid name; use lower-case letters, digits and '-', starting with a letter and ending with a letter or digit (it becomes a Knative Service name and a URL path)", n)
	}
}

func (v *validator) predictor() {
	p := v.s.Predictor
	if !v.s.Has("predictor") && p.Type == "" && p.Model == "" && p.Path == "" {
		v.add("predictor", "is required: set type: onnx with a model, or type: go with a path")
		return
	}
	switch p.Type {
	case TypeONNX:
		if p.Model == "" && !p.MultiModel() && !v.s.Has("predictor.models") && !v.s.Has("predictor.models_dir") {
			v.add("predictor.model", "is required for type onnx: the .onnx file, for example model/model.onnx (or models_dir: or models: to serve several)")
		}
		if p.Path != "" {
			v.add("predictor.path", "is only for type go; an onnx predictor needs no Go code (remove path, or set type: go)")
		}
		v.models()
	case TypeGo:
		if p.Path == "" {
			v.add("predictor.path", "is required for type go: the directory of the Go package that exports func New() functions.Predictor, for example ./predictor")
		}
		for _, f := range multiModelFields {
			if v.s.Has("predictor." + f) {
				v.add("predictor."+f, "is only for type onnx; a go predictor chooses its models itself (read them from predictor.config)")
			}
		}
	case "":
		v.add("predictor.type", "is required: onnx (built-in, needs model) or go (needs path)")
	default:
		v.add("predictor.type", "%q is not a predictor type; use onnx or go", p.Type)
	}
	if p.Model != "" && !IsModelReference(p.Model) {
		v.file("predictor.model", p.Model, func(path string, info fs.FileInfo) string {
			if !info.IsDir() && p.Type == TypeONNX && !strings.HasSuffix(path, ".onnx") {
				return "is not an .onnx file"
			}
			return ""
		})
	}
	v.modelRef("predictor.model", p.Model, "predictor.model_sha256", p.ModelSHA256)
	if p.Path != "" {
		v.file("predictor.path", p.Path, goPackage)
	}
}

// multiModelFields are the predictor fields of a multi-model onnx function.
var multiModelFields = []string{"models", "models_dir", "cache_size", "poll_interval", "default_model"}

// modelName is what a model may be called: it is a URL path segment on the
// OIP and KServe V1 routes (so no '/' or ':') and a directory name.
var modelName = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)

const (
	maxModelName    = 128
	minPollInterval = 100 * time.Millisecond
	maxPollInterval = time.Hour
)

// models checks the fields of a multi-model onnx function.
func (v *validator) models() {
	p := v.s.Predictor
	if !p.MultiModel() {
		for _, f := range multiModelFields[2:] {
			if v.s.Has("predictor." + f) {
				v.add("predictor."+f, "has no effect unless predictor.models or predictor.models_dir is set")
			}
		}
		return
	}
	switch {
	case p.Model != "" && len(p.Models) > 0:
		v.add("predictor.models", "cannot be set with predictor.model; name the single model as one entry of models, or remove models")
	case p.Model != "" && p.ModelsDir != "":
		v.add("predictor.models_dir", "cannot be set with predictor.model; remove one of them")
	case len(p.Models) > 0 && p.ModelsDir != "":
		v.add("predictor.models_dir", "cannot be set with predictor.models; list the models or name their directory, not both")
	}
	names := map[string]bool{}
	seen := map[string]int{}
	for i, m := range p.Models {
		at := fmt.Sprintf("predictor.models[%d]", i)
		if v.s.bad[at] {
			continue
		}
		switch {
		case m.Name == "":
			v.add(at+".name", "is required: the model's name in /v2/models/{name}/infer and ?model=")
		case !validModelName(m.Name):
			v.add(at+".name", "%q is not a valid model name; use letters, digits, '-', '_' and '.', starting and ending with a letter or digit, at most %d characters", m.Name, maxModelName)
		default:
			if first, dup := seen[m.Name]; dup {
				v.add(at+".name", "%q is already the name of predictor.models[%d]", m.Name, first)
			} else {
				seen[m.Name] = i
			}
			names[m.Name] = true
		}
		if m.Path == "" {
			v.add(at+".path", "is required: the model's .onnx file, or a directory of version subdirectories 1/, 2/, ...")
			continue
		}
		v.modelRef(at+".path", m.Path, at+".sha256", m.SHA256)
		if IsModelReference(m.Path) {
			continue
		}
		v.file(at+".path", m.Path, func(path string, info fs.FileInfo) string {
			if !info.IsDir() && !strings.HasSuffix(path, ".onnx") {
				return "is not an .onnx file or a directory"
			}
			return ""
		})
	}
	dirListed := false
	if p.ModelsDir != "" {
		v.file("predictor.models_dir", p.ModelsDir, func(path string, info fs.FileInfo) string {
			if !info.IsDir() {
				return "is a file; name the directory whose subdirectories are the models"
			}
			entries, err := os.ReadDir(path)
			if err != nil {
				return fmt.Sprintf("cannot be read: %v", err)
			}
			var bad []string
			for _, e := range entries {
				n := e.Name()
				if strings.HasPrefix(n, ".") || !isDir(filepath.Join(path, n)) {
					continue
				}
				if !validModelName(n) {
					bad = append(bad, strconv.Quote(n))
					continue
				}
				names[n] = true
			}
			dirListed = true
			switch {
			case len(bad) > 0:
				return fmt.Sprintf("has subdirectories whose names are not valid model names: %s; use letters, digits, '-', '_' and '.'", strings.Join(bad, ", "))
			case len(names) == 0:
				return "has no model subdirectories; add one per model, for example models/iris/1/model.onnx"
			}
			return ""
		})
	}
	if p.CacheSize < 0 {
		v.add("predictor.cache_size", "must be 0 (load every model) or more, not %d", p.CacheSize)
	}
	if pi := p.PollInterval; pi != 0 && (pi < minPollInterval || pi > maxPollInterval) {
		v.add("predictor.poll_interval", "%s is out of range; use 100ms to 1h", pi)
	}
	if d := p.DefaultModel; d != "" && (len(p.Models) > 0 || dirListed) && !names[d] {
		v.add("predictor.default_model", "%q is not one of the models: %s", d, strings.Join(slices.Sorted(maps.Keys(names)), ", "))
	}
}

func validModelName(n string) bool { return len(n) <= maxModelName && modelName.MatchString(n) }

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

// goPackage checks that path is a directory holding Go source.
func goPackage(path string, info fs.FileInfo) string {
	if !info.IsDir() {
		return "is a file; name the directory of the Go package"
	}
	if !hasGoFiles(path) {
		return "has no .go files; it must hold the Go package"
	}
	return ""
}

func hasGoFiles(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			return true
		}
	}
	return false
}

// MaxWasmMemory is the largest memory a stage instance may have: 32-bit
// WebAssembly addresses 4 GiB.
const MaxWasmMemory = 4 << 30

func (v *validator) wasm() {
	w := v.s.Wasm
	if m := w.Memory; m != 0 && (m < 64<<10 || m > MaxWasmMemory) {
		v.add("wasm.memory", "%s is outside 64Ki to 4Gi (a WebAssembly page is 64Ki; 32-bit memory ends at 4Gi)", m)
	}
	if v.s.Pre == "" && v.s.Post == "" && v.s.Has("wasm") {
		v.add("wasm", "is set but the function has no pre or post stage; remove it or name a stage")
	}
	v.secretEnv()
}

// envName is a variable name that every platform takes: AWS Lambda's rule
// (a letter, then letters, digits and '_'; two characters at least) is the
// strictest.
var envName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]+$`)

// reservedEnv are the variables a secret must not be named: the runtime
// reads it from its process's environment under that name, where the
// platforms and the runtime keep variables of their own.
var reservedEnv = struct {
	names, prefixes []string
}{
	names: []string{"PATH", "HOME", "PORT", "TMPDIR", "TZ", "LANG", "LANGUAGE", "HOSTNAME", "USER", "SHELL",
		"XDG_CACHE_HOME", "CUDA_VISIBLE_DEVICES", "GOMAXPROCS", "GOMEMLIMIT", "GOGC", "GODEBUG", "GOTRACEBACK"},
	prefixes: []string{"CORTEX_", "AWS_", "LAMBDA_", "K_", "KUBERNETES_", "LC_", "LD_"},
}

// reservedEnvText lists reservedEnv for the reference.
var reservedEnvText = strings.Join(reservedEnv.names, ", ") + ", and names starting " + strings.Join(reservedEnv.prefixes, ", ")

func isReservedEnv(name string) bool {
	upper := strings.ToUpper(name)
	if slices.Contains(reservedEnv.names, upper) {
		return true
	}
	return slices.ContainsFunc(reservedEnv.prefixes, func(p string) bool { return strings.HasPrefix(upper, p) })
}

func (v *validator) secretEnv() {
	w := v.s.Wasm
	seen := map[string]int{}
	for i, e := range w.SecretEnv {
		at := fmt.Sprintf("wasm.secret_env[%d]", i)
		if v.s.bad[at] {
			continue
		}
		_, plain := w.Env[e.Name]
		first, dup := seen[e.Name]
		switch {
		case e.Name == "":
			v.add(at+".name", "is required: the variable the stage reads, such as API_TOKEN")
		case !envName.MatchString(e.Name):
			v.add(at+".name", "%q is not a variable name every platform takes; use a letter, then letters, digits and '_' (at least 2 characters)", e.Name)
		case isReservedEnv(e.Name):
			v.add(at+".name", "%q is a variable the platform or the function's runtime uses; name the secret after what it is, such as API_TOKEN", e.Name)
		case dup:
			v.add(at+".name", "%q is already the name of wasm.secret_env[%d]", e.Name, first)
		case plain:
			v.add(at+".name", "%q is also in wasm.env; a variable is either plain (wasm.env, shipped in cortex.json) or secret (wasm.secret_env), not both", e.Name)
		default:
			seen[e.Name] = i
		}
		switch {
		case e.Secret == "":
			v.add(at+".secret", "is required: the Kubernetes Secret that holds the value on Knative")
		case len(validation.IsDNS1123Subdomain(e.Secret)) > 0:
			v.add(at+".secret", "%q is not a Kubernetes Secret name; use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit", e.Secret)
		}
		switch {
		case e.Key == "":
			v.add(at+".key", "is required: the value's key in the Secret")
		case len(validation.IsConfigMapKey(e.Key)) > 0:
			v.add(at+".key", "%q is not a key of a Kubernetes Secret; use letters, digits, '-', '_' and '.'", e.Key)
		}
	}
}

// secretRef checks the Kubernetes Secret and key (at the keys
// secretPath and keyPath) that hold a secret variable's value on Knative;
// what names the value for messages, such as "the token".
func (v *validator) secretRef(secretPath, keyPath, secret, key, what, exampleSecret, exampleKey string) {
	switch {
	case secret == "":
		v.add(secretPath, "is required: the Kubernetes Secret that holds %s on Knative, such as %s (kubectl create secret generic %s --from-literal=%s=...)", what, exampleSecret, exampleSecret, exampleKey)
	case len(validation.IsDNS1123Subdomain(secret)) > 0:
		v.add(secretPath, "%q is not a Kubernetes Secret name; use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit", secret)
	}
	switch {
	case key == "":
		v.add(keyPath, "is required: %s's key in the Secret, such as %s", what, exampleKey)
	case len(validation.IsConfigMapKey(key)) > 0:
		v.add(keyPath, "%q is not a key of a Kubernetes Secret; use letters, digits, '-', '_' and '.'", key)
	}
}

// auth checks auth.*: the variable is named as a secret's is, and the
// Secret and key that hold it on Knative are named too.
func (v *validator) auth() {
	a := v.s.Auth
	if a == (Auth{}) {
		if v.s.Has("auth") && !v.badUnder("auth") {
			v.add("auth", "is empty; set token_env, secret and key to require a bearer token, or remove auth")
		}
		return
	}
	w := v.s.Wasm
	_, plain := w.Env[a.TokenEnv]
	stage := slices.IndexFunc(w.SecretEnv, func(e SecretEnv) bool { return e.Name == a.TokenEnv })
	switch {
	case a.TokenEnv == "":
		v.add("auth.token_env", "is required: the variable the function reads its bearer token from, such as DEMO_TOKEN")
	case !envName.MatchString(a.TokenEnv):
		v.add("auth.token_env", "%q is not a variable name every platform takes; use a letter, then letters, digits and '_' (at least 2 characters)", a.TokenEnv)
	case isReservedEnv(a.TokenEnv):
		v.add("auth.token_env", "%q is a variable the platform or the function's runtime uses; name it after what it is, such as DEMO_TOKEN", a.TokenEnv)
	case plain:
		v.add("auth.token_env", "%q is also in wasm.env, whose values are shipped in cortex.json; give the token a variable of its own", a.TokenEnv)
	case stage >= 0:
		v.add("auth.token_env", "%q is also wasm.secret_env[%d]: the stages would see the function's token; give the token a variable of its own", a.TokenEnv, stage)
	}
	v.secretRef("auth.secret", "auth.key", a.Secret, a.Key, "the token", "demo-token", "token")
	if v.s.Has("targets.lambda") && v.s.Targets.Lambda.URLAuth == URLAuthIAM {
		v.add("auth", "cannot be used with targets.lambda.url_auth AWS_IAM: a signed request's Authorization header holds its AWS signature, so it cannot hold the token too; set url_auth: NONE (the token guards the function) or remove auth")
	}
}

// badUnder reports whether parsing found a problem in the section at
// path: a section that read as empty may not be so.
func (v *validator) badUnder(path string) bool {
	for p := range v.s.bad {
		if strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}

// httpToken is an HTTP header name (RFC 9110's token).
var httpToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// cors checks cors.*.
func (v *validator) cors() {
	c := v.s.CORS
	for i, o := range c.AllowOrigins {
		at := fmt.Sprintf("cors.allow_origins[%d]", i)
		if msg := badOrigin(o); msg != "" {
			v.add(at, "%q %s", o, msg)
		}
	}
	for i, h := range c.AllowHeaders {
		at := fmt.Sprintf("cors.allow_headers[%d]", i)
		switch {
		case h == "*":
			v.add(at, "\"*\" is not allowed: name each header a page may send")
		case !httpToken.MatchString(h):
			v.add(at, "%q is not an HTTP header name", h)
		}
	}
	if len(c.AllowOrigins) == 0 {
		for _, k := range []string{"allow_headers", "max_age"} {
			if v.s.Has("cors." + k) {
				v.add("cors."+k, "has no effect without cors.allow_origins; name the origins whose pages may call the function")
			}
		}
		if v.s.Has("cors") && !v.s.Has("cors.allow_headers") && !v.s.Has("cors.max_age") && !v.badUnder("cors") {
			v.add("cors", "is set without allow_origins; name the origins whose pages may call the function, or remove cors")
		}
	}
	if m := c.MaxAge; v.s.Has("cors.max_age") {
		switch {
		case m < time.Second || m > maxCORSMaxAge:
			v.add("cors.max_age", "%s is out of range; use 1s to 24h", m)
		case m%time.Second != 0:
			v.add("cors.max_age", "%s is not whole seconds, which is what browsers are told", m)
		}
	}
}

// badOrigin says what is wrong with o as an entry of cors.allow_origins,
// or "" when nothing is.
func badOrigin(o string) string {
	if o == "*" {
		return ""
	}
	if strings.EqualFold(o, "null") {
		return "is the origin of sandboxed frames and local files, which any page can make itself; name real origins"
	}
	if strings.Count(o, "*") > 1 {
		return "has more than one '*'; one may stand for any characters, as in https://*.example.com"
	}
	u, err := url.Parse(strings.Replace(o, "*", "x", 1))
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return "is not an origin; write scheme://host[:port], like https://demo.example.com"
	case u.Path == "/":
		return "ends with '/'; an origin has no path: remove the trailing slash"
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "is not an origin: it has more than scheme://host[:port]; remove the rest"
	}
	return ""
}

func (v *validator) stage(field, path string) {
	if path == "" {
		return
	}
	v.file(field, path, func(abs string, info fs.FileInfo) string {
		if info.IsDir() {
			if !hasGoFiles(abs) {
				return "is a directory without .go files; name a .wasm file or a Go package built for wasip1"
			}
			return ""
		}
		if !strings.HasSuffix(abs, ".wasm") {
			return "is not a .wasm file; name a .wasm file or a Go package directory"
		}
		return ""
	})
}

// file checks that rel names a file inside the function directory, without
// escaping it by "..", an absolute path or a symbolic link, and passes its
// resolved path and info to check (which returns a problem or "").
func (v *validator) file(field, rel string, check func(abs string, info fs.FileInfo) string) {
	if filepath.IsAbs(rel) || strings.HasPrefix(rel, "/") {
		v.add(field, "%q is an absolute path; name a path relative to the function directory, and copy the file into it", rel)
		return
	}
	clean := filepath.Clean(filepath.FromSlash(rel))
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		v.add(field, "%q is outside the function directory; everything a function ships must be inside it", rel)
		return
	}
	if v.s.Dir == "" {
		return
	}
	root, err := filepath.EvalSymlinks(v.s.Dir)
	if err != nil {
		v.add(field, "cannot resolve the function directory: %v", err)
		return
	}
	joined := filepath.Join(v.s.Dir, clean)
	if _, err := os.Lstat(joined); errors.Is(err, fs.ErrNotExist) {
		// Name the fix: a model is often fetched, not committed, and a
		// function that fetches its own says how in its README.
		hint := "put it there, or give its path relative to the function's directory"
		if _, err := os.Stat(filepath.Join(v.s.Dir, "README.md")); err == nil {
			hint = "its README.md says where it comes from (" + hint + ")"
		}
		v.add(field, "%s does not exist in %s: %s", rel, v.s.Dir, hint)
		return
	}
	real, err := filepath.EvalSymlinks(joined)
	if err != nil {
		v.add(field, "%s is a broken symbolic link", rel)
		return
	}
	if r, err := filepath.Rel(root, real); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		v.add(field, "%s is a symbolic link to %s, outside the function directory; copy the file in instead", rel, real)
		return
	}
	info, err := os.Stat(real)
	if err != nil {
		v.add(field, "%v", err)
		return
	}
	if msg := check(real, info); msg != "" {
		v.add(field, "%s %s", rel, msg)
	}
}

func (v *validator) compute() {
	c := v.s.Compute
	if c.CPU != "" {
		q, err := resource.ParseQuantity(c.CPU)
		switch {
		case err != nil:
			v.add("compute.cpu", "%q is not a Kubernetes quantity; use cores like 1 or 0.5, or millicores like 500m", c.CPU)
		case q.Cmp(minCPU) < 0:
			v.add("compute.cpu", "%q is less than 1m, the smallest CPU request", c.CPU)
		}
	}
	if c.Mem != "" {
		q, err := resource.ParseQuantity(c.Mem)
		num, unit := splitUnit(c.Mem)
		switch {
		case err != nil && strings.HasSuffix(strings.ToUpper(unit), "B") && isQuantity(num):
			v.add("compute.mem", "%q is not a Kubernetes quantity; %s", c.Mem, suggestMem(num, unit))
		case err != nil:
			v.add("compute.mem", "%q is not a Kubernetes quantity; use bytes with a suffix like 512Mi or 2Gi", c.Mem)
		case unit == "m":
			v.add("compute.mem", "%q means %s milli-bytes (the m suffix is milli); did you mean %sMi?", c.Mem, num, num)
		case q.Cmp(minMemory) < 0:
			v.add("compute.mem", "%q is less than 32Mi, too little for a function to start", c.Mem)
		}
	}
	if c.GPU < 0 {
		v.add("compute.gpu", "must be 0 or more, not %d", c.GPU)
	}
	if c.GPU > 0 && v.s.Has("targets.lambda") {
		v.add("compute.gpu", "AWS Lambda has no GPUs; remove targets.lambda or set gpu: 0")
	}
}

func (v *validator) limits() {
	l := v.s.Limits
	switch {
	case l.MaxBody <= 0:
		v.add("limits.max_body", "must be more than 0 bytes")
	case l.MaxBody > maxBodyCeiling:
		v.add("limits.max_body", "%s is more than 1GiB; a function buffers the whole body in memory", l.MaxBody)
	case l.MaxBody > lambdaMaxBody && v.s.Has("targets.lambda"):
		v.add("limits.max_body", "%s is more than Lambda's 6MiB request limit (targets.lambda is set)", l.MaxBody)
	}
	switch {
	case l.Timeout <= 0:
		v.add("limits.timeout", "must be more than 0, not %s", l.Timeout)
	case l.Timeout > maxTimeout:
		v.add("limits.timeout", "%s is more than 10m, Knative's longest request timeout", l.Timeout)
	}
	if l.MaxConcurrency < 1 {
		v.add("limits.max_concurrency", "must be 1 or more, not %d", l.MaxConcurrency)
	}
	if l.MaxQueue != nil && *l.MaxQueue < 0 {
		v.add("limits.max_queue", "must be 0 (no queue) or more, not %d", *l.MaxQueue)
	}
	if l.OverrunGrace < minOverrunGrace {
		v.add("limits.overrun_grace", "%s is less than 1s: the process would be replaced, and its model loaded again, for a prediction merely late", l.OverrunGrace)
	}
}

func (v *validator) autoscaling() {
	a := v.s.Autoscaling
	if a.MinScale < 0 {
		v.add("autoscaling.min_scale", "must be 0 (scale to zero) or more, not %d", a.MinScale)
	}
	if a.MaxScale < 1 {
		v.add("autoscaling.max_scale", "must be 1 or more, not %d", a.MaxScale)
	} else if a.MinScale > a.MaxScale {
		v.add("autoscaling.min_scale", "%d is more than max_scale (%d)", a.MinScale, a.MaxScale)
	}
	queue := 0
	if v.s.Limits.MaxQueue != nil {
		queue = *v.s.Limits.MaxQueue
	}
	if a.TargetConcurrency < 1 {
		v.add("autoscaling.target_concurrency", "must be 1 or more, not %d", a.TargetConcurrency)
	} else if room := v.s.Limits.MaxConcurrency + queue; v.s.Limits.MaxConcurrency > 0 && queue >= 0 && a.TargetConcurrency > room {
		v.add("autoscaling.target_concurrency", "%d is more than a replica accepts (limits.max_concurrency + limits.max_queue = %d): requests would be refused before the autoscaler adds replicas", a.TargetConcurrency, room)
	}
	if a.ScaleDownDelay < 0 || a.ScaleDownDelay > maxScaleDown {
		v.add("autoscaling.scale_down_delay", "%s is out of range; use 0s to 1h", a.ScaleDownDelay)
	}
	if a.Window != 0 && (a.Window < minWindow || a.Window > maxWindow) {
		v.add("autoscaling.window", "%s is out of range; use 6s to 1h", a.Window)
	}
}

func (v *validator) batching() {
	b := v.s.Batching
	switch {
	case b.MaxBatchSize < 0:
		v.add("batching.max_batch_size", "must be 0 (off) or more, not %d", b.MaxBatchSize)
	case b.MaxBatchSize > maxBatchSize:
		v.add("batching.max_batch_size", "%d is more than %d", b.MaxBatchSize, maxBatchSize)
	}
	if b.BatchInterval < 0 {
		v.add("batching.batch_interval", "must be more than 0, not %s", b.BatchInterval)
	} else if b.BatchInterval > 0 && b.MaxBatchSize <= 1 {
		v.add("batching.batch_interval", "has no effect unless max_batch_size is more than 1")
	} else if b.BatchInterval >= v.s.Limits.Timeout && v.s.Limits.Timeout > 0 {
		v.add("batching.batch_interval", "%s is not shorter than limits.timeout (%s)", b.BatchInterval, v.s.Limits.Timeout)
	}
}

// The range of targets.knative.startup_timeout: a startup probe shorter
// than a minute restarts replicas that were about to be ready; a day is
// past any model's load.
const (
	minStartupTimeout = time.Minute
	maxStartupTimeout = 24 * time.Hour
)

func (v *validator) knative() {
	k := v.s.Targets.Knative
	if k.Namespace != "" && len(validation.IsDNS1123Label(k.Namespace)) > 0 {
		v.add("targets.knative.namespace", "%q is not a Kubernetes namespace name; use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit", k.Namespace)
	}
	switch k.Visibility {
	case "", VisibilityPublic, VisibilityClusterLocal:
	default:
		v.add("targets.knative.visibility", "%q is not a visibility; use public or cluster-local", k.Visibility)
	}
	for _, key := range slices.Sorted(maps.Keys(k.GPUNodeSelector)) {
		val := k.GPUNodeSelector[key]
		p := "targets.knative.gpu_node_selector[" + key + "]"
		if len(validation.IsQualifiedName(key)) > 0 {
			v.add(p, "%q is not a Kubernetes label key (an optional DNS prefix and '/', then a name of at most 63 letters, digits, '-', '_' or '.')", key)
		}
		if len(validation.IsValidLabelValue(val)) > 0 {
			v.add(p, "%q is not a Kubernetes label value (at most 63 letters, digits, '-', '_' or '.')", val)
		}
	}
	if st := k.StartupTimeout; st != 0 && (st < minStartupTimeout || st > maxStartupTimeout) {
		v.add("targets.knative.startup_timeout", "%s is out of range; use %s to %s", st, minStartupTimeout, maxStartupTimeout)
	}
	if r := k.Registry; r != "" {
		switch {
		case strings.Contains(r, "://"):
			v.add("targets.knative.registry", "%q has a scheme; write the registry without it, like ghcr.io/acme", r)
		case !registryChars.MatchString(r) || strings.HasPrefix(r, "/") || strings.HasSuffix(r, "/"):
			v.add("targets.knative.registry", "%q is not a registry; use host[:port][/path], like ghcr.io/acme", r)
		}
	}
}

func (v *validator) lambda() {
	l := v.s.Targets.Lambda
	switch l.Arch {
	case "", ArchX86, ArchARM64:
	case "amd64", "x86-64", "x64":
		v.add("targets.lambda.arch", "%q: Lambda calls it x86_64", l.Arch)
	case "aarch64", "arm":
		v.add("targets.lambda.arch", "%q: Lambda calls it arm64", l.Arch)
	default:
		v.add("targets.lambda.arch", "%q is not a Lambda architecture; use x86_64 or arm64", l.Arch)
	}
	if l.Memory != 0 && (l.Memory < lambdaMinMemory || l.Memory > lambdaMaxMemory) {
		v.add("targets.lambda.memory", "%d is out of range; Lambda takes 128 to 10240 (MB)", l.Memory)
	}
	switch l.URLAuth {
	case "", URLAuthIAM, URLAuthNone:
	default:
		if up := strings.ToUpper(l.URLAuth); up == URLAuthIAM || up == URLAuthNone {
			v.add("targets.lambda.url_auth", "%q must be upper case: %s", l.URLAuth, up)
		} else {
			v.add("targets.lambda.url_auth", "%q is not a function URL auth type; use AWS_IAM or NONE", l.URLAuth)
		}
	}
	switch l.InvokeMode {
	case "", InvokeBuffered, InvokeResponseStream:
	default:
		if up := strings.ToUpper(l.InvokeMode); up == InvokeBuffered || up == InvokeResponseStream {
			v.add("targets.lambda.invoke_mode", "%q must be upper case: %s", l.InvokeMode, up)
		} else {
			v.add("targets.lambda.invoke_mode", "%q is not a function URL invoke mode; use BUFFERED or RESPONSE_STREAM", l.InvokeMode)
		}
	}
	switch l.Package {
	case "", LambdaPackageZip, LambdaPackageImage:
	default:
		v.add("targets.lambda.package", "%q is not a Lambda package type; use %s or %s", l.Package, LambdaPackageZip, LambdaPackageImage)
	}
	if r := l.Registry; r != "" {
		switch {
		case strings.Contains(r, "://"):
			v.add("targets.lambda.registry", "%q has a scheme; write the repository without it, like 123456789012.dkr.ecr.eu-west-1.amazonaws.com/cortex", r)
		case !registryChars.MatchString(r) || strings.HasPrefix(r, "/") || strings.HasSuffix(r, "/"):
			v.add("targets.lambda.registry", "%q is not a repository; use host[:port][/path], like 123456789012.dkr.ecr.eu-west-1.amazonaws.com/cortex", r)
		}
	}
}

var (
	minCPU    = resource.MustParse("1m")
	minMemory = *resource.NewQuantity(minMem, resource.BinarySI)
)

// splitUnit splits "512MB" into "512" and "MB": the unit is what follows
// the last digit or point. It only serves the hints of compute.mem, for a
// value resource.ParseQuantity refused or read as milli-bytes.
func splitUnit(s string) (num, unit string) {
	i := strings.LastIndexAny(s, "0123456789.") + 1
	return s[:i], s[i:]
}

func isQuantity(s string) bool {
	_, err := resource.ParseQuantity(s)
	return err == nil
}

// suggestMem turns "512", "MB" into "write 512Mi (binary) or 512M (decimal), without B".
func suggestMem(num, suffix string) string {
	u := strings.TrimSuffix(strings.TrimSuffix(suffix, "B"), "b")
	u = strings.TrimSuffix(u, "i")
	switch strings.ToUpper(u) {
	case "":
		return "write plain bytes, " + num + ", without B"
	case "K":
		return "write " + num + "Ki (binary) or " + num + "k (decimal), without B"
	case "M", "G", "T", "P", "E":
		u = strings.ToUpper(u)
		return "write " + num + u + "i (binary) or " + num + u + " (decimal), without B"
	}
	return "use bytes with a suffix like 512Mi or 2Gi"
}
