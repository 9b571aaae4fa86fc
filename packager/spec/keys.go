package spec

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cortexfn/cortex/runtime"
)

// Key describes one key of cortex.yaml. The table of keys (Keys) is the one
// place a key is defined: the parser takes its known keys from it, and
// docs/cortex-yaml.md and `cortex explain` are rendered from it, so a key
// cannot be read without being documented.
type Key struct {
	// Path is the key's dotted path; the entries of a list are written
	// with []: "limits.timeout", "predictor.models[].name".
	Path string
	// Type is the kind of value the key takes.
	Type Kind
	// Default is the value used when the key is absent, as a user would
	// write it, or "none". Empty for a section, whose keys have their own.
	Default string
	// Values lists the values an enum takes.
	Values []string
	// Min and Max bound a number, duration, size or quantity, as a user
	// would write them; empty when unbounded on that side.
	Min, Max string
	// Rule states in words what Values, Min and Max cannot: a format, or a
	// limit that depends on another key.
	Rule string
	// Description says what the key does, in one to three sentences.
	Description string
	// Example is a value a user might write, in YAML.
	Example string

	// elem is the kind of a map's values, for the parser; empty when they
	// may be anything JSON carries (predictor.config).
	elem Kind
}

// Kind is the type of a key's value.
type Kind string

// The kinds of value in cortex.yaml.
const (
	KindString   Kind = "string"
	KindInt      Kind = "int"
	KindBool     Kind = "bool"
	KindDuration Kind = "duration"
	KindSize     Kind = "size"
	KindQuantity Kind = "quantity"
	KindEnum     Kind = "enum"
	KindMap      Kind = "map"
	KindList     Kind = "list"
	KindStrings  Kind = "strings"
	KindSection  Kind = "section"
)

// Kinds lists every kind, in the order the reference explains them.
func Kinds() []Kind {
	return []Kind{KindString, KindInt, KindBool, KindDuration, KindSize, KindQuantity, KindEnum, KindMap, KindList, KindStrings, KindSection}
}

// Syntax says how a value of the kind is written.
func (k Kind) Syntax() string {
	switch k {
	case KindString:
		return "text; quote it when it could read as a number or boolean"
	case KindInt:
		return "a whole number, without quotes"
	case KindBool:
		return "true or false"
	case KindDuration:
		return "a number with a unit, like 500ms, 30s, 2m or 1h (Go's time.ParseDuration); a bare 0 is allowed"
	case KindSize:
		return "bytes, or a number with a unit: K, KB or kB (1000), Ki or KiB (1024), and likewise M, Mi, G, Gi, T, Ti; like 6MiB or 512Ki (any Kubernetes quantity of whole bytes, such as 1e6, works too)"
	case KindQuantity:
		return "a Kubernetes quantity: 1, 0.5 or 500m (milli) for CPU; 512Mi, 2Gi (binary) or 512M (decimal) for memory, without B"
	case KindEnum:
		return "one of a fixed set of strings, spelled exactly"
	case KindMap:
		return "a mapping whose keys you choose"
	case KindList:
		return "a list of entries"
	case KindStrings:
		return "a list of strings, [a, b] or one `- a` a line; a single string is not taken for a list of one"
	case KindSection:
		return "a mapping of the keys below it"
	}
	return ""
}

// Name is the last element of the key's path: "timeout" for
// "limits.timeout".
func (k Key) Name() string {
	return k.Path[strings.LastIndex(k.Path, ".")+1:]
}

// Parent is the path of the section or list the key is in, "" for a
// top-level key: "predictor.models" for "predictor.models[].name".
func (k Key) Parent() string { return parent(k.Path) }

func parent(path string) string {
	i := strings.LastIndex(path, ".")
	if i < 0 {
		return ""
	}
	return strings.TrimSuffix(path[:i], "[]")
}

// Allowed says which values the key takes beyond its type, or "" when any
// value of the type does.
func (k Key) Allowed() string {
	var parts []string
	if len(k.Values) > 0 {
		parts = append(parts, strings.Join(k.Values, ", "))
	}
	switch {
	case k.Min != "" && k.Max != "":
		parts = append(parts, k.Min+" to "+k.Max)
	case k.Min != "":
		parts = append(parts, "at least "+k.Min)
	case k.Max != "" && k.Rule != "":
		// The rule states the lower bound: "more than 0, at most 10m".
		return strings.Join(append(parts, k.Rule+", at most "+k.Max), "; ")
	case k.Max != "":
		parts = append(parts, "at most "+k.Max)
	}
	if k.Rule != "" {
		parts = append(parts, k.Rule)
	}
	return strings.Join(parts, "; ")
}

// Summary is the first sentence of the description.
func (k Key) Summary() string {
	d := k.Description
	for i := 0; i+1 < len(d); i++ {
		if d[i] == '.' && d[i+1] == ' ' {
			return d[:i+1]
		}
	}
	return d
}

// Snippet is the key set to its example as it would appear in cortex.yaml,
// under the sections that lead to it:
//
//	limits:
//	  timeout: 10s
func (k Key) Snippet() string {
	var b strings.Builder
	indent, dash := "", false
	segs := strings.Split(k.Path, ".")
	for i, seg := range segs {
		if !dash {
			b.WriteString(indent)
		}
		dash = false
		name, list := strings.CutSuffix(seg, "[]")
		if i == len(segs)-1 {
			b.WriteString(name + ": " + k.Example + "\n")
			break
		}
		b.WriteString(name + ":\n")
		indent += "  "
		if list {
			// The next key opens the list's first entry.
			b.WriteString(indent + "- ")
			indent, dash = indent+"  ", true
		}
	}
	return b.String()
}

// Keys returns the definition of every key cortex.yaml accepts, each
// section before its keys, in the order a spec usually lists them.
func Keys() []Key {
	out := make([]Key, len(keys))
	for i, k := range keys {
		out[i] = k.clone()
	}
	return out
}

// clone returns k with its own Values, so a caller cannot change the table.
func (k Key) clone() Key {
	k.Values = slices.Clone(k.Values)
	return k
}

// Children returns the keys directly under path, "" for the top level.
func Children(path string) []Key {
	var out []Key
	for _, k := range keys {
		if k.Parent() == path {
			out = append(out, k.clone())
		}
	}
	return out
}

// Lookup returns the definition of the key at path. A list entry may be
// written with or without an index: predictor.models[0].name,
// predictor.models[].name and predictor.models.name are one key. For a
// path that is not a key it returns an *UnknownKeyError.
func Lookup(path string) (Key, error) {
	q := normalPath(path)
	for _, k := range keys {
		if k.Path == q || strings.ReplaceAll(k.Path, "[]", "") == q {
			return k.clone(), nil
		}
	}
	return Key{}, &UnknownKeyError{Path: path, Suggestions: suggest(q), Parent: nearestParent(q)}
}

var listIndex = regexp.MustCompile(`\[[0-9]*\]`)

func normalPath(path string) string {
	return strings.Trim(listIndex.ReplaceAllString(strings.TrimSpace(path), "[]"), ".")
}

// UnknownKeyError is what Lookup returns for a path that is not a key of
// cortex.yaml.
type UnknownKeyError struct {
	// Path is the path asked for.
	Path string
	// Suggestions are the keys closest to Path, closest first.
	Suggestions []string
	// Parent is the longest part of Path that is a key ("" for none).
	Parent string
}

func (e *UnknownKeyError) Error() string {
	msg := fmt.Sprintf("%s has no key %q", FileName, e.Path)
	switch s := e.Suggestions; {
	case len(s) == 1:
		return msg + "; did you mean " + s[0] + "?"
	case len(s) > 1:
		return msg + "; did you mean " + strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1] + "?"
	}
	if e.Parent != "" {
		if k, _ := Lookup(e.Parent); k.Type == KindMap {
			return fmt.Sprintf("%s; %s is a map whose keys you choose", msg, e.Parent)
		}
	}
	var names []string
	for _, k := range Children(e.Parent) {
		names = append(names, k.Path)
	}
	if e.Parent == "" {
		return msg + "; the top-level keys are " + strings.Join(names, ", ")
	}
	return msg + "; the keys of " + e.Parent + " are " + strings.Join(names, ", ")
}

// nearestParent returns the longest leading part of path that is a key.
func nearestParent(path string) string {
	for p := parent(path); p != ""; p = parent(p) {
		for _, k := range keys {
			if k.Path == p || strings.ReplaceAll(k.Path, "[]", "") == p {
				return k.Path
			}
		}
	}
	return ""
}

// suggest returns up to five keys close to path, closest first: a key
// whose last element is path's last element, a prefix of it or a typo of
// it, under a parent spelled like path's (any parent when path has no dot).
func suggest(path string) []string {
	norm := func(s string) string {
		return strings.NewReplacer("[]", "", "-", "_").Replace(strings.ToLower(s))
	}
	q := norm(path)
	qParent, qName := "", q
	if i := strings.LastIndex(q, "."); i >= 0 {
		qParent, qName = q[:i], q[i+1:]
	}
	type match struct {
		path string
		dist int
	}
	var found []match
	for _, k := range keys {
		kName, kParent := norm(k.Name()), norm(k.Parent())
		pd := 0
		if qParent != "" {
			if pd = levenshtein(qParent, kParent); pd > 2 {
				continue
			}
		}
		d := levenshtein(qName, kName)
		if strings.ReplaceAll(qName, "_", "") == strings.ReplaceAll(kName, "_", "") {
			d = 0
		}
		if len(qName) >= 3 && strings.HasPrefix(kName, qName) {
			d = min(d, 1)
		}
		limit := 2
		if len(qName) <= 4 {
			limit = 1
		}
		if d <= limit {
			found = append(found, match{k.Path, pd + d})
		}
	}
	slices.SortStableFunc(found, func(a, b match) int { return cmp.Compare(a.dist, b.dist) })
	var out []string
	for _, m := range found[:min(len(found), 5)] {
		out = append(out, m.path)
	}
	return out
}

// closest returns the known key nearest to key, or "" when none is close:
// the same letters in another case or with '-' for '_' (maxBody, max-body),
// or at most two edits away (a third of the key, for short keys).
func closest(key string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	for _, k := range known {
		if norm(k) == norm(key) {
			return k
		}
	}
	best, bestDist := "", 3
	if len(key) <= 4 {
		bestDist = 2
	}
	for _, k := range known {
		if dist := levenshtein(strings.ToLower(key), k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// keys is the table of every key. Bounds and defaults come from the
// constants the code uses, so the reference cannot state other ones; the
// tests in keys_test.go drive the parser and the validator with every
// entry to hold the rest (examples, enums, rules) to the code. The parser
// checks a value by its Type and decodes it into the Spec field whose yaml
// tag is the key's name: a key added here needs that field, and
// TestKeysParse fails until it has one.
var keys = []Key{
	{
		Path:        "name",
		Type:        KindString,
		Default:     "none",
		Rule:        "lower-case letters, digits and '-', starting with a letter and ending with a letter or digit; at most " + strconv.Itoa(maxNameLen) + " characters",
		Description: "The function's name. Required. It becomes the Knative Service name, the Lambda function name and a URL path segment, so it is a DNS label short enough for Knative's revision suffix (-00001).",
		Example:     "iris",
	},
	{
		Path:        "predictor",
		Type:        KindSection,
		Description: "What serves predictions: the built-in ONNX predictor (type: onnx) or a Go package (type: go). Required.",
		Example:     "{type: onnx, model: model/iris.onnx}",
	},
	{
		Path:        "predictor.type",
		Type:        KindEnum,
		Default:     "none",
		Values:      []string{TypeONNX, TypeGo},
		Description: "The kind of predictor. Required. With onnx the built-in ONNX Runtime predictor runs the model, with no Go code; with go, cortex builds the package at predictor.path, which exports func New() functions.Predictor.",
		Example:     TypeONNX,
	},
	{
		Path:        "predictor.model",
		Type:        KindString,
		Default:     "none",
		Rule:        "a path inside the function directory (for type onnx an .onnx file or a directory), or a reference: oci://REGISTRY/REPO:TAG or @sha256:DIGEST, https://URL (with predictor.model_sha256) or s3://BUCKET/KEY",
		Description: "The model file or directory, relative to the function directory, or a reference the function fetches into the machine's model cache when it starts instead of shipping it (docs/models.md). Required for type onnx unless predictor.models or predictor.models_dir is set; optional for type go, whose predictor reads it itself.",
		Example:     "model/iris.onnx",
	},
	{
		Path:        "predictor.model_sha256",
		Type:        KindString,
		Default:     "none",
		Rule:        "64 hexadecimal digits; required when predictor.model is an https:// URL, optional for s3://, not for oci:// or a path",
		Description: "The SHA-256 of the file predictor.model references. The function's start fails, naming both digests, when the fetched file differs.",
		Example:     "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
	},
	{
		Path:        "predictor.models",
		Type:        KindList,
		Default:     "none",
		Rule:        "type onnx only; not with predictor.model or predictor.models_dir",
		Description: "The models of a multi-model onnx function, each a name and a path. A request names its model with ?model=NAME, /v2/models/NAME/infer or /v1/models/NAME:predict.",
		Example:     "[{name: iris, path: models/iris}]",
	},
	{
		Path:        "predictor.models[].name",
		Type:        KindString,
		Default:     "none",
		Rule:        "letters, digits, '-', '_' and '.', starting and ending with a letter or digit; at most " + strconv.Itoa(maxModelName) + " characters; unique among the models",
		Description: "The model's name, as requests give it in /v2/models/{name}/infer and ?model=. Required in each entry.",
		Example:     "iris",
	},
	{
		Path:        "predictor.models[].path",
		Type:        KindString,
		Default:     "none",
		Rule:        "an .onnx file or a directory inside the function directory, or a reference as for predictor.model",
		Description: "The model's .onnx file, or a directory of version subdirectories (1/, 2/ and so on) with one .onnx file each, relative to the function directory; or a reference fetched when the function starts (docs/models.md). Required in each entry; the highest version is served unless a request names one.",
		Example:     "models/iris",
	},
	{
		Path:        "predictor.models[].sha256",
		Type:        KindString,
		Default:     "none",
		Rule:        "64 hexadecimal digits; required when the entry's path is an https:// URL, optional for s3://, not for oci:// or a path",
		Description: "The SHA-256 of the file the entry's path references, as predictor.model_sha256 is for predictor.model.",
		Example:     "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
	},
	{
		Path:        "predictor.models_dir",
		Type:        KindString,
		Default:     "none",
		Rule:        "a directory inside the function directory; type onnx only; not with predictor.model or predictor.models",
		Description: "A directory whose subdirectories are the models of a multi-model onnx function, each named for its model and holding one .onnx file or version subdirectories (1/, 2/ and so on). A model or version added to it is served without a restart.",
		Example:     "models",
	},
	{
		Path:        "predictor.cache_size",
		Type:        KindInt,
		Default:     "0",
		Min:         "0",
		Rule:        "only with predictor.models or predictor.models_dir",
		Description: "How many models may be loaded at once; the least recently used is unloaded first. 0 keeps every model loaded.",
		Example:     "2",
	},
	{
		Path:        "predictor.poll_interval",
		Type:        KindDuration,
		Default:     dur(DefaultPollInterval),
		Min:         dur(minPollInterval),
		Max:         dur(maxPollInterval),
		Rule:        "only with predictor.models or predictor.models_dir",
		Description: "How often the model files are checked for new versions and changes, which are then served without a restart.",
		Example:     "10s",
	},
	{
		Path:        "predictor.default_model",
		Type:        KindString,
		Default:     "none",
		Rule:        "one of the models; only with predictor.models or predictor.models_dir",
		Description: "The model that serves requests which name none. Without it such a request is a 400 listing the models, when there are several.",
		Example:     "iris",
	},
	{
		Path:        "predictor.path",
		Type:        KindString,
		Default:     "none",
		Rule:        "a directory with .go files inside the function directory; type go only",
		Description: "The directory of the Go package that exports func New() functions.Predictor, relative to the function directory. Required for type go.",
		Example:     "./predictor",
	},
	{
		Path:        "predictor.config",
		Type:        KindMap,
		Default:     "none",
		Rule:        "string keys",
		Description: "Settings passed to the predictor's Init as functions.Config.Values. They reach it through JSON, so numbers arrive as float64.",
		Example:     "{labels: [setosa, versicolor, virginica], threshold: 0.5}",
	},
	{
		Path:        "pre",
		Type:        KindString,
		Default:     "none",
		Rule:        "a .wasm file or a directory with .go files, inside the function directory",
		Description: "A WebAssembly stage that runs before the predictor and can reshape the request: a .wasm file, or a Go package directory that cortex builds for wasip1. Relative to the function directory.",
		Example:     "./stages",
	},
	{
		Path:        "post",
		Type:        KindString,
		Default:     "none",
		Rule:        "a .wasm file or a directory with .go files, inside the function directory",
		Description: "A WebAssembly stage that runs after the predictor and can reshape the response: a .wasm file, or a Go package directory that cortex builds for wasip1. Relative to the function directory. A streamed prediction runs it on each chunk.",
		Example:     "./stages",
	},
	{
		Path:        "wasm",
		Type:        KindSection,
		Rule:        "only with pre or post",
		Description: "The sandbox of the pre and post stages. A stage gets no filesystem, network, environment, real clock or real randomness unless it is granted here (there is no network grant: WASI preview 1 cannot open sockets).",
		Example:     "{memory: 64Mi, clock: true}",
	},
	{
		Path:        "wasm.memory",
		Type:        KindSize,
		Default:     "128Mi", // runtime/wasm.DefaultMemoryLimitPages; keys_test.go checks it
		Min:         Size(64 << 10).String(),
		Max:         Size(MaxWasmMemory).String(),
		Description: "Caps the memory of each stage instance, rounded down to whole 64KiB WebAssembly pages.",
		Example:     "64Mi",
	},
	{
		Path:        "wasm.env",
		Type:        KindMap,
		Default:     "none",
		Rule:        "string values",
		Description: "The environment variables a stage sees; without it a stage sees none. Their values are shipped in the function's cortex.json, so a secret belongs in wasm.secret_env.",
		elem:        KindString,
		Example:     "{MODE: fast}",
	},
	{
		Path:        "wasm.secret_env",
		Type:        KindList,
		Default:     "none",
		Rule:        "names unique, and not also in wasm.env",
		Description: "Environment variables a stage sees whose values are secrets: no artifact holds a value, only the name, and the function's runtime reads each from its own environment when it starts. On Knative the value comes from a Kubernetes Secret (a secretKeyRef in the Service); on Lambda, cortex deploy sets it in the function's environment from the variable of the same name in yours (the SAM template asks for it as a NoEcho parameter); under cortex serve and cortex test, from the variable of the same name in your environment.",
		Example:     "[{name: API_TOKEN, secret: api-credentials, key: token}]",
	},
	{
		Path:        "wasm.secret_env[].name",
		Type:        KindString,
		Default:     "none",
		Rule:        "a letter, then letters, digits and '_' (at least 2 characters, as AWS Lambda requires); not a variable the platform or the runtime uses (" + reservedEnvText + ")",
		Description: "The variable's name, as the stage sees it and the function's process reads it. Required in each entry.",
		Example:     "API_TOKEN",
	},
	{
		Path:        "wasm.secret_env[].secret",
		Type:        KindString,
		Default:     "none",
		Rule:        "a Kubernetes Secret name: lower-case letters, digits, '-' and '.'; at most 253 characters",
		Description: "The Kubernetes Secret, in the function's namespace, that holds the value on Knative. Required in each entry.",
		Example:     "api-credentials",
	},
	{
		Path:        "wasm.secret_env[].key",
		Type:        KindString,
		Default:     "none",
		Rule:        "letters, digits, '-', '_' and '.'; at most 253 characters",
		Description: "The value's key in the Secret. Required in each entry.",
		Example:     "token",
	},
	{
		Path:        "wasm.clock",
		Type:        KindBool,
		Default:     "false",
		Description: "Grants the real clock; without it a stage sees a fixed time.",
		Example:     "true",
	},
	{
		Path:        "wasm.random",
		Type:        KindBool,
		Default:     "false",
		Description: "Grants real randomness; without it a stage gets a fixed sequence.",
		Example:     "true",
	},
	{
		Path:        "wasm.interruptible",
		Type:        KindBool,
		Default:     "true",
		Description: "Whether a deadline stops a running stage call. false runs stage code several times faster, for code you trust to finish: a call past its deadline still answers 504 but keeps its instance and concurrency slot, and its CPU, until it returns, and one that never returns holds them until limits.overrun_grace has passed and the process replaces itself. The process keeps serving meanwhile: uninterruptible code yields to the Go scheduler every 65536 loop iterations and function calls.",
		Example:     "false",
	},
	{
		Path:        "compute",
		Type:        KindSection,
		Description: "What one replica asks for.",
		Example:     "{cpu: 500m, mem: 512Mi}",
	},
	{
		Path:        "compute.cpu",
		Type:        KindQuantity,
		Default:     DefaultCPU,
		Min:         "1m",
		Description: "The CPU of one replica, in cores (1, 0.5) or millicores (500m). cortex serve starts no more processes of the function than fit in the machine's CPUs at this much each, as a node fits pods (never fewer than min_scale).",
		Example:     "500m",
	},
	{
		Path:        "compute.mem",
		Type:        KindQuantity,
		Default:     DefaultMem,
		Min:         "32Mi",
		Description: "The memory of one replica, in bytes with a suffix: 512Mi, 2Gi (binary) or 512M, 2G (decimal), without B.",
		Example:     "512Mi",
	},
	{
		Path:        "compute.gpu",
		Type:        KindInt,
		Default:     "0",
		Min:         "0",
		Rule:        "0 when targets.lambda is set",
		Description: "The number of GPUs (nvidia.com/gpu) of one replica. On Knative a GPU function runs on the nodes targets.knative.gpu_node_selector picks; AWS Lambda has no GPUs.",
		Example:     "1",
	},
	{
		Path:        "autoscaling",
		Type:        KindSection,
		Description: "How a function scales on Knative. The keys follow Knative's autoscaling.knative.dev annotations; `cortex serve` scales local processes by them too.",
		Example:     "{min_scale: 1, max_scale: 5}",
	},
	{
		Path:        "autoscaling.min_scale",
		Type:        KindInt,
		Default:     "0",
		Min:         "0",
		Rule:        "at most autoscaling.max_scale",
		Description: "The fewest replicas. 0 lets the function scale to zero when idle; 1 or more keeps replicas warm.",
		Example:     "1",
	},
	{
		Path:        "autoscaling.max_scale",
		Type:        KindInt,
		Default:     strconv.Itoa(DefaultMaxScale),
		Min:         "1",
		Description: "The most replicas. Without it, the default or min_scale, whichever is larger.",
		Example:     "5",
	},
	{
		Path:        "autoscaling.target_concurrency",
		Type:        KindInt,
		Default:     "limits.max_concurrency",
		Min:         "1",
		Rule:        "at most limits.max_concurrency + limits.max_queue",
		Description: "The in-flight requests per replica the autoscaler aims for; Knative adds replicas at 70% of it. The default keeps requests from piling up in a replica's queue before the autoscaler reacts.",
		Example:     "16",
	},
	{
		Path:        "autoscaling.scale_down_delay",
		Type:        KindDuration,
		Default:     "0s",
		Min:         "0s",
		Max:         dur(maxScaleDown),
		Description: "How long replicas are kept after load drops before they are removed.",
		Example:     "5m",
	},
	{
		Path:        "autoscaling.window",
		Type:        KindDuration,
		Default:     dur(DefaultWindow),
		Min:         dur(minWindow),
		Max:         dur(maxWindow),
		Description: "The autoscaler's averaging window: how far back it looks at concurrency to choose the number of replicas.",
		Example:     "30s",
	},
	{
		Path:        "batching",
		Type:        KindSection,
		Description: "Gathers concurrent requests into one PredictBatch call. Off unless max_batch_size is more than 1. A request that asks for a stream is not gathered: it runs on its own.",
		Example:     "{max_batch_size: 32, batch_interval: 2ms}",
	},
	{
		Path:        "batching.max_batch_size",
		Type:        KindInt,
		Default:     "0",
		Min:         "0",
		Max:         strconv.Itoa(maxBatchSize),
		Description: "The most requests in one batch. 0 or 1 turns batching off.",
		Example:     "32",
	},
	{
		Path:        "batching.batch_interval",
		Type:        KindDuration,
		Default:     dur(DefaultBatchInterval),
		Rule:        "more than 0 and shorter than limits.timeout; only with max_batch_size more than 1",
		Description: "How long the first request of a batch waits for more before the batch runs. A full batch runs at once.",
		Example:     "2ms",
	},
	{
		Path:        "limits",
		Type:        KindSection,
		Description: "Bounds one request and one replica.",
		Example:     "{max_body: 1MiB, timeout: 10s}",
	},
	{
		Path:        "limits.max_body",
		Type:        KindSize,
		Default:     DefaultMaxBody.String(),
		Min:         "1",
		Max:         Size(maxBodyCeiling).String(),
		Rule:        "at most " + Size(lambdaMaxBody).String() + " when targets.lambda is set",
		Description: "The largest request body; a larger one is answered 413. The default is AWS Lambda's request limit; a function holds the whole body in memory.",
		Example:     "1MiB",
	},
	{
		Path:        "limits.timeout",
		Type:        KindDuration,
		Default:     dur(DefaultTimeout),
		Max:         dur(maxTimeout),
		Rule:        "more than 0",
		Description: "Bounds one prediction; a prediction that runs longer is answered 504. The most is Knative's longest request timeout.",
		Example:     "10s",
	},
	{
		Path:        "limits.max_concurrency",
		Type:        KindInt,
		Default:     strconv.Itoa(DefaultMaxConcurrency),
		Min:         "1",
		Description: "How many predictions one replica runs at once.",
		Example:     "16",
	},
	{
		Path:        "limits.max_queue",
		Type:        KindInt,
		Default:     strconv.Itoa(DefaultMaxQueue),
		Min:         "0",
		Description: "How many more requests may wait for a free slot before the function answers 503 with Retry-After. 0 means no request waits.",
		Example:     "32",
	},
	{
		Path:        "limits.overrun_grace",
		Type:        KindDuration,
		Default:     "twice limits.timeout, at least " + dur(runtime.MinDefaultOverrunGrace),
		Min:         dur(minOverrunGrace),
		Description: "How long a prediction may run on past limits.timeout (its caller has had a 504) before the process is replaced: it answers 503, lets the other predictions finish and exits with status 75 for the platform to start a new one. Go cannot stop a predictor that ignores its context, so only a new process gets the core back. The default lets a prediction that is merely late finish: a new process loads the model again.",
		Example:     "1m",
	},
	{
		Path:        "auth",
		Type:        KindSection,
		Rule:        "token_env, secret and key together; not with targets.lambda.url_auth AWS_IAM when targets.lambda is set (both use the Authorization header)",
		Description: "Makes the function require Authorization: Bearer TOKEN on every route but its health probes and its page's static shell, answering 401 with WWW-Authenticate otherwise. The token is a secret held like wasm.secret_env's: no artifact holds it, and the function's process reads it from the variable token_env names when it starts, and will not start without it. On Knative the Service sets it from a Kubernetes Secret (a secretKeyRef); on Lambda, cortex deploy sets it from the variable of the same name in your environment (the SAM template asks for it as a NoEcho parameter); under cortex serve and cortex test, from the variable in your environment.",
		Example:     "{token_env: DEMO_TOKEN, secret: demo-token, key: token}",
	},
	{
		Path:        "auth.token_env",
		Type:        KindString,
		Default:     "none",
		Rule:        "a letter, then letters, digits and '_' (at least 2 characters); not a variable the platform or the runtime uses (" + reservedEnvText + "), nor one of wasm.env or wasm.secret_env; its value at least " + strconv.Itoa(runtime.MinTokenLength) + " of the characters A-Z a-z 0-9 -._~+/ (then '=' padding)",
		Description: "The environment variable the function's process reads the token from. Required with auth; make the token with, for example, openssl rand -hex 32.",
		Example:     "DEMO_TOKEN",
	},
	{
		Path:        "auth.secret",
		Type:        KindString,
		Default:     "none",
		Rule:        "a Kubernetes Secret name: lower-case letters, digits, '-' and '.'; at most 253 characters",
		Description: "The Kubernetes Secret, in the function's namespace, that holds the token on Knative. Required with auth.",
		Example:     "demo-token",
	},
	{
		Path:        "auth.key",
		Type:        KindString,
		Default:     "none",
		Rule:        "letters, digits, '-', '_' and '.'; at most 253 characters",
		Description: "The token's key in the Secret. Required with auth.",
		Example:     "token",
	},
	{
		Path:        "cors",
		Type:        KindSection,
		Description: "Lets web pages of other origins call the function (Cross-Origin Resource Sharing). Without it the function sends no CORS headers, so a browser lets only pages of the function's own origin read its answers. Preflights (OPTIONS) are answered without the token, and never allow cookies: a bearer token is sent by a page that holds it, not by the browser on its own.",
		Example:     "{allow_origins: [\"https://demo.example.com\"]}",
	},
	{
		Path:        "cors.allow_origins",
		Type:        KindStrings,
		Default:     "none",
		Rule:        "each scheme://host[:port] with no path, or \"*\" for any origin; one '*' in the host stands for any characters, as in https://*.example.com; not \"null\"",
		Description: "The origins whose pages may call the function. A preflight from another origin gets no allow headers, which the browser takes as a refusal, and an answer to it no Access-Control-Allow-Origin.",
		Example:     "[\"https://demo.example.com\", \"http://localhost:3000\"]",
	},
	{
		Path:        "cors.allow_headers",
		Type:        KindStrings,
		Default:     "none",
		Rule:        "HTTP header names",
		Description: "Request headers such pages may send besides those every function takes: Accept, Content-Type, Content-Encoding, X-Request-Id, and Authorization when auth is set.",
		Example:     "[X-Api-Client]",
	},
	{
		Path:        "cors.max_age",
		Type:        KindDuration,
		Default:     "none",
		Min:         "1s",
		Max:         dur(maxCORSMaxAge),
		Rule:        "whole seconds",
		Description: "How long a browser may reuse a preflight's answer before it asks again. Without it the browser decides (5 seconds by the Fetch standard; browsers cap it, Chromium at 2h).",
		Example:     "10m",
	},
	{
		Path:        "async",
		Type:        KindSection,
		Description: "Background predictions: a request to any prediction route with the header Prefer: respond-async is answered 202 at once with a prediction resource (GET /predictions/{id}, POST /predictions/{id}/cancel, PUT /predictions/{id} to make one under your own id), and its answer is kept for a while or sent to a webhook (Cortex-Webhook: URL), signed as Standard Webhooks specifies. A background prediction runs under limits.* like any other; see docs/async.md. The results are kept in the function's memory: a process that exits loses them.",
		Example:     "{keep: 2h, webhook_secret_env: WEBHOOK_SECRET, webhook_secret: webhook-secret, webhook_key: secret}",
	},
	{
		Path:        "async.keep",
		Type:        KindDuration,
		Default:     "1h",
		Min:         "1s",
		Description: "How long a finished prediction's result is kept; after it GET /predictions/{id} answers 404.",
		Example:     "24h",
	},
	{
		Path:        "async.max_predictions",
		Type:        KindInt,
		Default:     "1000",
		Min:         "1",
		Description: "How many predictions are kept at most: the oldest finished one is deleted to make room, and while all are unfinished a new one is refused with 503.",
		Example:     "100",
	},
	{
		Path:        "async.max_output",
		Type:        KindSize,
		Default:     "1MiB",
		Min:         "1",
		Description: "The largest answer a kept result holds; a larger answer makes its prediction failed, saying so. With async.max_predictions it bounds the memory results take.",
		Example:     "4MiB",
	},
	{
		Path:        "async.webhook_secret_env",
		Type:        KindString,
		Default:     "none",
		Rule:        "a letter, then letters, digits and '_'; not a variable the platform or the runtime uses, nor auth.token_env; its value whsec_ and base64 of at least 16 bytes",
		Description: "The environment variable the function's process reads the webhooks' signing secret from; the secret is never in cortex.yaml or an artifact, and each platform sets it as it sets auth's token (on Knative from async.webhook_secret's key async.webhook_key, on Lambda from the deploying environment, under cortex serve and cortex test from the command's environment). Unlike the token it may be missing: the function then starts, sends no webhooks, and refuses a request for one with 422. Receivers check deliveries with the SDK's functions/webhook.Verify.",
		Example:     "WEBHOOK_SECRET",
	},
	{
		Path:        "async.webhook_secret",
		Type:        KindString,
		Default:     "none",
		Rule:        "a Kubernetes Secret name: lower-case letters, digits, '-' and '.'; at most 253 characters",
		Description: "The Kubernetes Secret, in the function's namespace, that holds the webhook secret on Knative. Required with async.webhook_secret_env; a pod starts without it (the reference is optional), and the function then sends no webhooks.",
		Example:     "webhook-secret",
	},
	{
		Path:        "async.webhook_key",
		Type:        KindString,
		Default:     "none",
		Rule:        "letters, digits, '-', '_' and '.'; at most 253 characters",
		Description: "The webhook secret's key in async.webhook_secret. Required with async.webhook_secret_env.",
		Example:     "secret",
	},
	{
		Path:        "async.webhook_allow",
		Type:        KindStrings,
		Default:     "none",
		Rule:        "each a host name or IP address (any port), host:port, or a CIDR block",
		Description: "Opens hosts webhooks may not reach by default. A webhook may reach public addresses only: not loopback, private (RFC 1918, fc00::/7), link-local (169.254.169.254, the cloud metadata service), carrier-grade NAT, multicast or reserved addresses, nor names such as localhost, *.svc, *.cluster.local, *.internal or names without a dot; checked after DNS resolution at submission (a 422) and again on the address connected to. Redirects are never followed.",
		Example:     "[hooks.internal.example.com, \"10.20.0.0/16\"]",
	},
	{
		Path:        "async.webhook_attempts",
		Type:        KindInt,
		Default:     "5",
		Min:         "1",
		Description: "How many times the completed event is sent before it is given up; any answer but a 2xx (or a redirect, which ends it) is tried again. The start and output events are sent once.",
		Example:     "8",
	},
	{
		Path:        "async.webhook_backoff",
		Type:        KindDuration,
		Default:     "4s",
		Min:         "10ms",
		Description: "The wait before the second attempt, doubled before each later one (the defaults try over about a minute).",
		Example:     "10s",
	},
	{
		Path:        "targets",
		Type:        KindSection,
		Description: "Settings for each place `cortex deploy` can put a function: Knative and AWS Lambda.",
		Example:     "{knative: {namespace: ml}}",
	},
	{
		Path:        "targets.knative",
		Type:        KindSection,
		Description: "Deploying to Knative Serving.",
		Example:     "{namespace: ml, registry: ghcr.io/acme}",
	},
	{
		Path:        "targets.knative.namespace",
		Type:        KindString,
		Default:     DefaultNamespace,
		Rule:        "a Kubernetes namespace name: lower-case letters, digits and '-', starting and ending with a letter or digit; at most 63 characters",
		Description: "The Kubernetes namespace the Knative Service is deployed into.",
		Example:     "ml",
	},
	{
		Path:        "targets.knative.visibility",
		Type:        KindEnum,
		Default:     DefaultVisibility,
		Values:      []string{VisibilityPublic, VisibilityClusterLocal},
		Description: "Who can reach the function: public exposes it outside the cluster, cluster-local only inside it.",
		Example:     VisibilityClusterLocal,
	},
	{
		Path:        "targets.knative.gpu_node_selector",
		Type:        KindMap,
		Default:     "{" + GPUPresentLabel + `: "true"}`,
		Rule:        "Kubernetes label keys and values",
		elem:        KindString,
		Description: "Node labels that pick the nodes a GPU function runs on; used only when compute.gpu is more than 0. The default label is set by NVIDIA's GPU feature discovery.",
		Example:     "{cloud.google.com/gke-accelerator: nvidia-tesla-t4}",
	},
	{
		Path:        "targets.knative.startup_timeout",
		Type:        KindDuration,
		Default:     "sized from the model",
		Min:         "1m",
		Max:         "24h",
		Description: "How long a replica may take from its start to ready: the startup probe's budget, which the revision's progress deadline grows with. By default it is sized from the model's size (twice 30s plus a load at 50 MB/s, at least a minute), and for models fetched by reference, whose size is unknown when the Service is written, from 8GiB fetched at 25 MB/s and loaded (about 12 minutes); set it for a model that needs longer (see docs/gpu.md).",
		Example:     "45m",
	},
	{
		Path:        "targets.knative.registry",
		Type:        KindString,
		Default:     "none",
		Rule:        "host[:port][/path], without a scheme",
		Description: "The registry images are pushed to, which the cluster pulls from. `cortex deploy --registry` overrides it; deploying to Knative needs one of the two.",
		Example:     "ghcr.io/acme",
	},
	{
		Path:        "targets.knative.trigger",
		Type:        KindSection,
		Description: "A Knative Eventing Trigger that sends a Broker's CloudEvents to the function: the asynchronous path on Knative. The function's answer, a CloudEvent, is the reply, which Eventing sends back to the Broker, where other Triggers pick it up by its type. cortex checks it and writes it into dist/knative.yaml after the Service; `cortex deploy` applies it once the Service is Ready, updates it, and deletes it when the spec drops it or the function is deleted (see docs/async.md).",
		Example:     "{broker: default, filter: {type: com.example.review}}",
	},
	{
		Path:        "targets.knative.trigger.broker",
		Type:        KindString,
		Default:     DefaultTriggerBroker,
		Rule:        "a Broker's name in targets.knative.namespace",
		Description: "The Broker the Trigger subscribes to.",
		Example:     "reviews",
	},
	{
		Path:        "targets.knative.trigger.filter",
		Type:        KindMap,
		Default:     "none",
		Rule:        "CloudEvent attribute names (a lower-case letter, then lower-case letters and digits) and non-empty values",
		elem:        KindString,
		Description: "Which events the function gets: those whose CloudEvent attributes equal every value given (exact match on type, source, or an extension). Without it the function gets every event of the Broker, its own replies among them: give at least type.",
		Example:     "{type: com.example.review, source: /shop}",
	},
	{
		Path:        "targets.lambda",
		Type:        KindSection,
		Description: "Deploying to AWS Lambda. Setting it also holds the function to Lambda's limits: no GPU, and request bodies of at most 6MiB.",
		Example:     "{arch: arm64, memory: 2048}",
	},
	{
		Path:        "targets.lambda.arch",
		Type:        KindEnum,
		Default:     DefaultLambdaArch,
		Values:      []string{ArchX86, ArchARM64},
		Description: "The Lambda function's processor architecture.",
		Example:     ArchARM64,
	},
	{
		Path:        "targets.lambda.memory",
		Type:        KindInt,
		Default:     strconv.Itoa(DefaultLambdaMemory),
		Min:         strconv.Itoa(lambdaMinMemory),
		Max:         strconv.Itoa(lambdaMaxMemory),
		Description: "The Lambda function's memory in MB; Lambda gives a function CPU in proportion to it.",
		Example:     "2048",
	},
	{
		Path:        "targets.lambda.url_auth",
		Type:        KindEnum,
		Default:     DefaultURLAuth,
		Values:      []string{URLAuthIAM, URLAuthNone},
		Description: "The auth type of the function URL. AWS_IAM takes only requests signed with AWS credentials (cortex predict signs them); NONE makes the URL public.",
		Example:     URLAuthNone,
	},
	{
		Path:        "targets.lambda.invoke_mode",
		Type:        KindEnum,
		Default:     DefaultInvokeMode,
		Values:      []string{InvokeBuffered, InvokeResponseStream},
		Description: "The invoke mode of the function URL. RESPONSE_STREAM sends a streaming predictor's output to a caller that asks for a stream (Accept: text/event-stream, or \"stream\": true) as it is produced, up to 200 MB; BUFFERED answers when the prediction is complete, up to 6 MB.",
		Example:     InvokeResponseStream,
	},
	{
		Path:        "targets.lambda.pages",
		Type:        KindBool,
		Default:     "false",
		Description: "Whether the Lambda function serves the function's page (/ and /docs, with its script and style), as the HTTP carrier always does; /openapi.json is served either way. Off by default: a Lambda function URL is seldom meant for people, and a page invites callers.",
		Example:     "true",
	},
	{
		Path:        "targets.lambda.package",
		Type:        KindEnum,
		Default:     "none",
		Values:      []string{LambdaPackageZip, LambdaPackageImage},
		Rule:        "none: zip, or image when the zip would pass Lambda's limits",
		Description: "How the function reaches Lambda: a zip on the provided.al2023 runtime, or a container image (PackageType Image, up to 10 GB, pushed to targets.lambda.registry). Without it the zip is used unless its files pass 250 MB unzipped or the zip 50 MB, when `cortex package` says why and builds the image instead. Lambda cannot change a function's package type: switching an existing function needs it deleted first.",
		Example:     LambdaPackageImage,
	},
	{
		Path:        "targets.lambda.registry",
		Type:        KindString,
		Default:     "none",
		Rule:        "host[:port][/path], without a scheme; Lambda pulls only from Amazon ECR in the function's region",
		Description: "The repository a container-image function is pushed to; the image is REGISTRY/NAME. `cortex deploy --target lambda --registry` overrides it; deploying an image needs one of the two.",
		Example:     "123456789012.dkr.ecr.eu-west-1.amazonaws.com/cortex",
	},
	{
		Path:        "targets.lambda.async",
		Type:        KindSection,
		Description: "The event-invoke configuration Lambda applies to the function's asynchronous invokes (InvocationType Event, and events from S3, SNS or EventBridge), which the function handles like any direct invoke. `cortex deploy` sets it on the alias live (and removes it when the section is removed), and the SAM template has it as EventInvokeConfig (see docs/async.md). Without it Lambda's defaults apply: 2 retries, events kept 6h, no destinations.",
		Example:     "{max_retries: 1, on_failure: \"arn:aws:sqs:eu-west-1:123456789012:failed\"}",
	},
	{
		Path:        "targets.lambda.async.max_retries",
		Type:        KindInt,
		Default:     "2",
		Min:         "0",
		Max:         "2",
		Description: "How many times Lambda retries an asynchronous invoke whose function returned an error.",
		Example:     "0",
	},
	{
		Path:        "targets.lambda.async.max_event_age",
		Type:        KindDuration,
		Default:     "6h",
		Min:         "60s",
		Max:         "6h",
		Rule:        "whole seconds",
		Description: "How long Lambda keeps an event it has not handed to the function yet (waiting for capacity, or between retries); an older one is dropped, or sent to on_failure.",
		Example:     "1h",
	},
	{
		Path:        "targets.lambda.async.on_success",
		Type:        KindString,
		Default:     "none",
		Rule:        "the ARN of an SQS queue, SNS topic, Lambda function or EventBridge event bus",
		Description: "Where Lambda sends a record of each asynchronous invoke that succeeded, with the function's answer. The function's execution role needs permission to send there.",
		Example:     "\"arn:aws:sqs:eu-west-1:123456789012:predictions\"",
	},
	{
		Path:        "targets.lambda.async.on_failure",
		Type:        KindString,
		Default:     "none",
		Rule:        "the ARN of an SQS queue, SNS topic, Lambda function, EventBridge event bus or S3 bucket",
		Description: "Where Lambda sends a record of each asynchronous invoke that failed every retry or grew older than max_event_age, with the event, so nothing is lost. The function's execution role needs permission to send there.",
		Example:     "\"arn:aws:sns:eu-west-1:123456789012:failed-predictions\"",
	},
}

// dur writes d as a user would: 30s, 2m, 1h, 5ms.
func dur(d time.Duration) string {
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}} {
		if d != 0 && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return d.String()
}
