package spec_test

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime"
)

var update = flag.Bool("update", false, "rewrite golden files")

func intp(i int) *int { return &i }

func TestLoadFull(t *testing.T) {
	s, err := spec.Load("testdata/fn")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	abs, _ := filepath.Abs("testdata/fn")
	if s.Dir != abs {
		t.Errorf("Dir = %q, want %q", s.Dir, abs)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", s.Name, "iris"},
		{"predictor", s.Predictor, spec.Predictor{
			Type:  "onnx",
			Model: "model/iris.onnx",
			Config: map[string]any{
				"labels":    []any{"setosa", "versicolor", "virginica"},
				"threshold": 0.5,
			},
		}},
		{"pre", s.Pre, "wasm/pre.wasm"},
		{"compute", s.Compute, spec.Compute{CPU: "500m", Mem: "512Mi", GPU: 1}},
		{"autoscaling", s.Autoscaling, spec.Autoscaling{MinScale: 1, MaxScale: 5, TargetConcurrency: 8, ScaleDownDelay: time.Minute, Window: 30 * time.Second}},
		{"batching", s.Batching, spec.Batching{MaxBatchSize: 32, BatchInterval: 2 * time.Millisecond}},
		{"limits", s.Limits, spec.Limits{MaxBody: 1 << 20, Timeout: 10 * time.Second, MaxConcurrency: 16, MaxQueue: intp(0), OverrunGrace: 45 * time.Second}},
		{"knative", s.Targets.Knative, spec.Knative{
			Namespace:       "ml",
			Visibility:      "cluster-local",
			GPUNodeSelector: map[string]string{"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"},
			Registry:        "ghcr.io/acme",
		}},
		{"lambda (defaults)", s.Targets.Lambda, spec.Lambda{Arch: "x86_64", Memory: 1024, URLAuth: "AWS_IAM", InvokeMode: "BUFFERED"}},
		{"line of limits.max_body", s.Line("limits.max_body"), 11},
		{"has targets.lambda", s.Has("targets.lambda"), false},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestSetDefaults(t *testing.T) {
	s, err := spec.Parse([]byte("name: echo\npredictor: {type: go, path: ./predictor}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	s.SetDefaults()
	got := *s
	s.SetDefaults()
	if !reflect.DeepEqual(got, *s) {
		t.Errorf("SetDefaults is not idempotent:\nfirst  %+v\nsecond %+v", got, *s)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"compute", s.Compute, spec.Compute{CPU: "1", Mem: "1Gi"}},
		{"autoscaling", s.Autoscaling, spec.Autoscaling{MinScale: 0, MaxScale: 10, TargetConcurrency: 64, Window: time.Minute}},
		{"batching", s.Batching, spec.Batching{}},
		{"limits", s.Limits, spec.Limits{MaxBody: 6 << 20, Timeout: 30 * time.Second, MaxConcurrency: 64, MaxQueue: intp(128), OverrunGrace: time.Minute}},
		{"knative", s.Targets.Knative, spec.Knative{Namespace: "default", Visibility: "public"}},
		{"lambda", s.Targets.Lambda, spec.Lambda{Arch: "x86_64", Memory: 1024, URLAuth: "AWS_IAM", InvokeMode: "BUFFERED"}},
		// The spec's limit defaults are the runtime's.
		{"runtime limits", runtime.Limits{MaxBody: int64(s.Limits.MaxBody), Timeout: runtime.Duration(s.Limits.Timeout), MaxConcurrency: s.Limits.MaxConcurrency, MaxQueue: *s.Limits.MaxQueue, OverrunGrace: runtime.Duration(s.Limits.OverrunGrace)}.WithDefaults(), runtime.Limits{}.WithDefaults()},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
	if err := s.Validate(); err != nil {
		t.Errorf("a defaulted minimal spec (without Dir) does not validate: %v", err)
	}
}

func TestSetDefaultsGPUNodeSelector(t *testing.T) {
	s := &spec.Spec{Compute: spec.Compute{GPU: 1}}
	s.SetDefaults()
	want := map[string]string{"nvidia.com/gpu.present": "true"}
	if got := s.Targets.Knative.GPUNodeSelector; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestProblems checks that each mistake is reported once, at its path and
// line, with a message that says what to do.
func TestProblems(t *testing.T) {
	const base = "name: fn\npredictor: {type: go, path: ./predictor}\n"
	tests := []struct {
		name string
		yaml string
		want []string // "line: path: message substring", one per problem
	}{
		{"valid", base, nil},
		{"empty file", "", []string{`0: : the file is empty`}},
		{"not a mapping", "- a\n- b\n", []string{`1: : the file must be a mapping`}},
		{"bad yaml", "name: [a\n", []string{`invalid YAML`}},
		{"two documents", base + "---\nname: b\n", []string{`3: : invalid YAML: a second YAML document`}},
		{"unknown top key", base + "limit: {}\n", []string{`3: limit: unknown key; did you mean "limits"?`}},
		{"unknown key far from all", base + "zebra: 1\n", []string{`3: zebra: unknown key; known keys here: name, predictor,`}},
		{"unknown key in dash case", base + "limits: {max-body: 1}\n", []string{`3: limits.max-body: unknown key; did you mean "max_body"?`}},
		{"duplicate key", base + "name: again\n", []string{`3: name: duplicate key; it is already set on line 1`}},
		{"missing name", "predictor: {type: go, path: ./p}\n", []string{`0: name: is required`}},
		{"wasm grants", base + "pre: s.wasm\nwasm: {memory: 64Mi, env: {MODE: fast}, clock: true, random: false}\n", nil},
		{"wasm memory too small", base + "pre: s.wasm\nwasm: {memory: 1Ki}\n", []string{`4: wasm.memory: 1KiB is outside 64Ki to 4Gi`}},
		{"wasm memory too big", base + "pre: s.wasm\nwasm: {memory: 8Gi}\n", []string{`4: wasm.memory: 8GiB is outside 64Ki to 4Gi`}},
		{"wasm grant not a bool", base + "pre: s.wasm\nwasm: {clock: yes please}\n", []string{`4: wasm.clock: must be true or false`}},
		{"wasm unknown key", base + "pre: s.wasm\nwasm: {network: true}\n", []string{`4: wasm.network: unknown key`}},
		{"wasm without a stage", base + "wasm: {clock: true}\n", []string{`3: wasm: is set but the function has no pre or post stage`}},
		{"secret env", base + "pre: s.wasm\nwasm:\n  env: {MODE: fast}\n  secret_env:\n    - {name: API_TOKEN, secret: api-credentials, key: token}\n    - {name: db_password, secret: db.credentials, key: pass_word-1}\n", nil},
		{"secret env incomplete", base + "pre: s.wasm\nwasm:\n  secret_env:\n    - {name: API_TOKEN}\n", []string{
			`6: wasm.secret_env[0].secret: is required`, `6: wasm.secret_env[0].key: is required`}},
		{"secret env bad names", base + "pre: s.wasm\nwasm:\n  secret_env:\n    - {name: 1TOKEN, secret: Api_Credentials, key: a/b}\n", []string{
			`6: wasm.secret_env[0].name: "1TOKEN" is not a variable name`, `6: wasm.secret_env[0].secret: "Api_Credentials" is not a Kubernetes Secret name`, `6: wasm.secret_env[0].key: "a/b" is not a key of a Kubernetes Secret`}},
		{"secret env reserved", base + "pre: s.wasm\nwasm:\n  secret_env:\n    - {name: AWS_SECRET_ACCESS_KEY, secret: s, key: k}\n    - {name: PATH, secret: s, key: k}\n", []string{
			`6: wasm.secret_env[0].name: "AWS_SECRET_ACCESS_KEY" is a variable the platform or the function's runtime uses`, `7: wasm.secret_env[1].name: "PATH" is a variable`}},
		{"secret env twice", base + "pre: s.wasm\nwasm:\n  env: {MODE: fast}\n  secret_env:\n    - {name: API_TOKEN, secret: s, key: k}\n    - {name: API_TOKEN, secret: s, key: k2}\n    - {name: MODE, secret: s, key: k}\n", []string{
			`8: wasm.secret_env[1].name: "API_TOKEN" is already the name of wasm.secret_env[0]`, `9: wasm.secret_env[2].name: "MODE" is also in wasm.env`}},
		{"secret env a map", base + "pre: s.wasm\nwasm:\n  secret_env: {API_TOKEN: {secret: s, key: k}}\n", []string{`5: wasm.secret_env: must be a list of {name, secret, key} entries, not a mapping`}},
		{"name with capitals", "name: Echo\npredictor: {type: go, path: ./p}\n", []string{`1: name: "Echo" is not a valid name`}},
		{"name starting with digit", "name: 1fn\npredictor: {type: go, path: ./p}\n", []string{`1: name: "1fn" is not a valid name`}},
		{"name too long", "name: " + strings.Repeat("a", 58) + "\npredictor: {type: go, path: ./p}\n", []string{`1: name: "aaa`}},
		{"name is a boolean", "name: true\npredictor: {type: go, path: ./p}\n", []string{`1: name: must be a string, not the boolean true`}},
		{"missing predictor", "name: fn\n", []string{`0: predictor: is required`}},
		{"missing type", "name: fn\npredictor: {path: ./p}\n", []string{`2: predictor.type: is required`}},
		{"unknown type", "name: fn\npredictor: {type: pytorch}\n", []string{`2: predictor.type: "pytorch" is not a predictor type`}},
		{"onnx without model", "name: fn\npredictor:\n  type: onnx\n", []string{`2: predictor.model: is required for type onnx`}},
		{"onnx with path", "name: fn\npredictor: {type: onnx, model: m.onnx, path: ./p}\n", []string{`2: predictor.path: is only for type go`}},
		{"go without path", "name: fn\npredictor: {type: go}\n", []string{`2: predictor.path: is required for type go`}},
		{"model escapes", "name: fn\npredictor: {type: onnx, model: ../m.onnx}\n", []string{`2: predictor.model: "../m.onnx" is outside the function directory`}},
		{"model absolute", "name: fn\npredictor: {type: onnx, model: /m.onnx}\n", []string{`2: predictor.model: "/m.onnx" is an absolute path`}},
		{"duplicate section", base + "predictor: {type: go, path: ./p, config: [1]}\n", []string{`3: predictor: duplicate key`}},
		{"config list", "name: fn\npredictor:\n  type: go\n  path: ./p\n  config: [1, 2]\n", []string{`5: predictor.config: must be a mapping of keys, not a list`}},
		{"config non-string key", "name: fn\npredictor:\n  type: go\n  path: ./p\n  config: {a: {1: x}}\n", []string{`5: predictor.config: the key 1 under predictor.config.a is not a string`}},
		{"cpu garbage", base + "compute: {cpu: lots}\n", []string{`3: compute.cpu: "lots" is not a Kubernetes quantity`}},
		{"cpu too small", base + "compute: {cpu: 0.0001}\n", []string{`3: compute.cpu: "0.0001" is less than 1m`}},
		{"mem with B", base + "compute: {mem: 2GB}\n", []string{`3: compute.mem: "2GB" is not a Kubernetes quantity; write 2Gi (binary) or 2G (decimal), without B`}},
		{"mem in milli", base + "compute: {mem: 512m}\n", []string{`3: compute.mem: "512m" means 512 milli-bytes (the m suffix is milli); did you mean 512Mi?`}},
		{"mem too small", base + "compute: {mem: 1Mi}\n", []string{`3: compute.mem: "1Mi" is less than 32Mi`}},
		{"gpu negative", base + "compute: {gpu: -1}\n", []string{`3: compute.gpu: must be 0 or more`}},
		{"gpu not int", base + "compute: {gpu: one}\n", []string{`3: compute.gpu: must be a whole number, not the string "one"`}},
		{"gpu quoted int", base + "compute: {gpu: \"1\"}\n", []string{`3: compute.gpu: must be a whole number, not the string "1"; write it without quotes`}},
		{"gpu on lambda", base + "compute: {gpu: 1}\ntargets: {lambda: {arch: arm64}}\n", []string{`3: compute.gpu: AWS Lambda has no GPUs`}},
		{"min over max", base + "autoscaling: {min_scale: 3, max_scale: 2}\n", []string{`3: autoscaling.min_scale: 3 is more than max_scale (2)`}},
		{"min over default max", base + "autoscaling: {min_scale: 12}\n", nil},
		{"negative min", base + "autoscaling: {min_scale: -1}\n", []string{`3: autoscaling.min_scale: must be 0`}},
		{"target over capacity", base + "autoscaling: {target_concurrency: 100}\nlimits: {max_concurrency: 10, max_queue: 20}\n", []string{`3: autoscaling.target_concurrency: 100 is more than a replica accepts (limits.max_concurrency + limits.max_queue = 30)`}},
		{"window too short", base + "autoscaling: {window: 1s}\n", []string{`3: autoscaling.window: 1s is out of range; use 6s to 1h`}},
		{"scale down delay too long", base + "autoscaling: {scale_down_delay: 2h}\n", []string{`3: autoscaling.scale_down_delay: 2h0m0s is out of range`}},
		{"interval without batching", base + "batching: {batch_interval: 2ms}\n", []string{`3: batching.batch_interval: has no effect unless max_batch_size is more than 1`}},
		{"negative batch size", base + "batching: {max_batch_size: -2}\n", []string{`3: batching.max_batch_size: must be 0 (off) or more`}},
		{"max_body with space", base + "limits: {max_body: 6 MB}\n", []string{`3: limits.max_body: "6 MB" is not a size; use a number of bytes or a unit like 6MiB, 512Ki`}},
		{"max_body unit", base + "limits: {max_body: 6XB}\n", []string{`3: limits.max_body: "6XB" is not a size`}},
		{"max_body zero", base + "limits: {max_body: -1}\n", []string{`3: limits.max_body: must be more than 0 bytes`}},
		{"max_body huge", base + "limits: {max_body: 2GiB}\n", []string{`3: limits.max_body: 2GiB is more than 1GiB`}},
		{"max_body over lambda", base + "limits: {max_body: 10MiB}\ntargets: {lambda: {}}\n", []string{`3: limits.max_body: 10MiB is more than Lambda's 6MiB request limit`}},
		{"timeout without unit", base + "limits: {timeout: 30}\n", []string{`3: limits.timeout: 30 is not a duration; use a number with a unit, like 30s`}},
		{"timeout too long", base + "limits: {timeout: 1h}\n", []string{`3: limits.timeout: 1h0m0s is more than 10m`}},
		{"timeout negative", base + "limits: {timeout: -1s}\n", []string{`3: limits.timeout: must be more than 0`}},
		{"concurrency zero allowed as default", base + "limits: {max_concurrency: 0}\n", nil},
		{"concurrency negative", base + "limits: {max_concurrency: -3}\n", []string{`3: limits.max_concurrency: must be 1 or more`}},
		{"queue negative", base + "limits: {max_queue: -1}\n", []string{`3: limits.max_queue: must be 0 (no queue) or more`}},
		{"section is a string", base + "limits: fast\n", []string{`3: limits: must be a mapping of keys, not the string "fast"`}},
		{"null section", base + "limits:\n", nil},
		{"visibility", base + "targets: {knative: {visibility: private}}\n", []string{`3: targets.knative.visibility: "private" is not a visibility; use public or cluster-local`}},
		{"namespace", base + "targets: {knative: {namespace: My_NS}}\n", []string{`3: targets.knative.namespace: "My_NS" is not a Kubernetes namespace name`}},
		// A namespace is a DNS-1123 label (validation.IsDNS1123Label): it may start with a digit.
		{"namespace starting with a digit", base + "targets: {knative: {namespace: 1ml}}\n", nil},
		{"namespace too long", base + "targets: {knative: {namespace: " + strings.Repeat("a", 64) + "}}\n", []string{`3: targets.knative.namespace: "aaa`}},
		{"namespace ending with '-'", base + "targets: {knative: {namespace: ml-}}\n", []string{`3: targets.knative.namespace: "ml-" is not a Kubernetes namespace name`}},
		{"name ending with '-'", "name: fn-\npredictor: {type: go, path: ./p}\n", []string{`1: name: "fn-" is not a valid name`}},
		{"node selector keys", base + "targets:\n  knative:\n    gpu_node_selector: {a.b/c_d: x, \"-a\": y, \"/a\": z, " + strings.Repeat("k", 64) + ": w, v: " + strings.Repeat("v", 64) + "}\n", []string{
			`5: targets.knative.gpu_node_selector[-a]: "-a" is not a Kubernetes label key`,
			`5: targets.knative.gpu_node_selector[/a]: "/a" is not a Kubernetes label key`,
			`5: targets.knative.gpu_node_selector[kkk`,
			`5: targets.knative.gpu_node_selector[v]: "vvv`,
		}},
		{"max_body in milli", base + "limits: {max_body: 512m}\n", []string{`3: limits.max_body: "512m" means 512 milli-bytes (the m suffix is milli); did you mean 512Mi?`}},
		{"max_body fraction", base + "limits: {max_body: \"1.5\"}\n", []string{`3: limits.max_body: "1.5" is not a whole number of bytes`}},
		{"max_body as a quantity", base + "limits: {max_body: 1e6}\n", nil}, // a float in YAML
		{"max_body as a quoted quantity", base + "limits: {max_body: \"1e6\"}\n", nil},
		{"max_body as a fraction", base + "limits: {max_body: 1.5}\n", []string{`3: limits.max_body: "1.5" is not a whole number of bytes`}},
		{"max_body infinite", base + "limits: {max_body: .inf}\n", []string{`3: limits.max_body: ".inf" is not a size`}},
		{"alias at two paths", base + "limits: &l {timeout: 1s}\nbatching: *l\n", []string{`3: batching.timeout: unknown key`}},
		{"node selector value", base + "targets:\n  knative:\n    gpu_node_selector:\n      gpu: \"a b\"\n", []string{`6: targets.knative.gpu_node_selector[gpu]: "a b" is not a Kubernetes label value`}},
		{"node selector list", base + "targets:\n  knative:\n    gpu_node_selector: {gpu: [a]}\n", []string{`5: targets.knative.gpu_node_selector[gpu]: must be a string, not a list`}},
		{"registry scheme", base + "targets: {knative: {registry: \"https://ghcr.io/acme\"}}\n", []string{`3: targets.knative.registry: "https://ghcr.io/acme" has a scheme`}},
		{"unknown target", base + "targets: {cloudrun: {}}\n", []string{`3: targets.cloudrun: unknown key; known keys here: knative, lambda`}},
		{"lambda arch", base + "targets: {lambda: {arch: aarch64}}\n", []string{`3: targets.lambda.arch: "aarch64": Lambda calls it arm64`}},
		{"lambda memory", base + "targets: {lambda: {memory: 64}}\n", []string{`3: targets.lambda.memory: 64 is out of range`}},
		{"lambda auth", base + "targets: {lambda: {url_auth: PUBLIC}}\n", []string{`3: targets.lambda.url_auth: "PUBLIC" is not a function URL auth type`}},
		{"alias", "x: &x {type: go, path: ./p}\n", []string{`0: name: is required`, `0: predictor: is required`, `1: x: unknown key`}},
		{"alias used", "name: fn\npredictor: &p {type: go, path: ./p}\n", nil},
		{"several problems at once", "name: Bad\npredictor: {type: go}\nlimits: {timeout: 5}\n", []string{
			`1: name: "Bad" is not a valid name`,
			`2: predictor.path: is required for type go`,
			`3: limits.timeout: 5 is not a duration`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, tt.yaml)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, want := range tt.want {
				if !strings.Contains(got[i], want) {
					t.Errorf("problem %d:\n got %s\nwant it to contain %s", i, got[i], want)
				}
			}
		})
	}
}

// problems parses, defaults and validates yaml the way Load does (without
// file checks) and returns each problem as "line: path: message".
func problems(t *testing.T, yaml string) []string {
	t.Helper()
	var all []spec.Problem
	collect := func(err error) {
		var ve *spec.ValidationError
		if err == nil {
			return
		}
		if !errors.As(err, &ve) {
			t.Fatalf("error is %T, not *spec.ValidationError: %v", err, err)
		}
		all = append(all, ve.Problems...)
	}
	s, err := spec.Parse([]byte(yaml), "cortex.yaml")
	collect(err)
	if s != nil {
		s.SetDefaults()
		// Validate does not repeat what Parse reported.
		collect(s.Validate())
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Line < all[j].Line })
	var out []string
	for _, p := range all {
		out = append(out, strings.Join([]string{strconv.Itoa(p.Line), p.Path, p.Message}, ": "))
	}
	return out
}

func TestErrorGolden(t *testing.T) {
	_, err := spec.Load("testdata/problems")
	if err == nil {
		t.Fatal("Load succeeded, want problems")
	}
	got := err.Error() + "\n"
	golden := "testdata/problems.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("error text differs from %s (run with -update to accept):\n got:\n%s\nwant:\n%s", golden, got, want)
	}
}

// fnDir makes a function directory holding the files the specs name.
func fnDir(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cortex.yaml", yaml)
	write("model/m.onnx", "onnx")
	write("model/notes.txt", "text")
	write("predictor/p.go", "package predictor\n")
	write("empty/p_test.go", "package empty\n")
	write("wasm/pre.wasm", "\x00asm")
	return dir
}

func TestLoadFiles(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.onnx"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		yaml    string
		symlink [2]string // link name, target ("OUT/" is the outside dir)
		want    string    // "" for no error
	}{
		{"onnx ok", "name: fn\npredictor: {type: onnx, model: model/m.onnx}\n", [2]string{}, ""},
		{"model dir ok", "name: fn\npredictor: {type: onnx, model: model}\n", [2]string{}, ""},
		{"go ok", "name: fn\npredictor: {type: go, path: ./predictor, model: model/notes.txt}\npre: wasm/pre.wasm\npost: predictor\n", [2]string{}, ""},
		{"missing model", "name: fn\npredictor: {type: onnx, model: model/gone.onnx}\n", [2]string{},
			`:2: predictor.model: model/gone.onnx does not exist in `},
		{"missing model names the fix", "name: fn\npredictor: {type: onnx, model: model/gone.onnx}\n", [2]string{},
			`: put it there, or give its path relative to the function's directory`},
		{"not onnx", "name: fn\npredictor: {type: onnx, model: model/notes.txt}\n", [2]string{},
			`:2: predictor.model: model/notes.txt is not an .onnx file`},
		{"path is a file", "name: fn\npredictor: {type: go, path: model/m.onnx}\n", [2]string{},
			`:2: predictor.path: model/m.onnx is a file; name the directory of the Go package`},
		{"path has only tests", "name: fn\npredictor: {type: go, path: empty}\n", [2]string{},
			`:2: predictor.path: empty has no .go files`},
		{"pre not wasm", "name: fn\npredictor: {type: go, path: predictor}\npre: model/notes.txt\n", [2]string{},
			`:3: pre: model/notes.txt is not a .wasm file`},
		{"dotdot inside is fine", "name: fn\npredictor: {type: onnx, model: model/../model/m.onnx}\n", [2]string{}, ""},
		{"symlink out of the tree", "name: fn\npredictor: {type: onnx, model: model/link.onnx}\n", [2]string{"model/link.onnx", "OUT/secret.onnx"},
			`:2: predictor.model: model/link.onnx is a symbolic link to ` + outside + `/secret.onnx, outside the function directory; copy the file in instead`},
		{"symlink inside the tree", "name: fn\npredictor: {type: onnx, model: link.onnx}\n", [2]string{"link.onnx", "model/m.onnx"}, ""},
		{"broken symlink", "name: fn\npredictor: {type: onnx, model: link.onnx}\n", [2]string{"link.onnx", "nowhere.onnx"},
			`:2: predictor.model: link.onnx is a broken symbolic link`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fnDir(t, tt.yaml)
			if tt.symlink[0] != "" {
				target := strings.Replace(tt.symlink[1], "OUT", outside, 1)
				if !strings.HasPrefix(target, "/") {
					target = filepath.Join(dir, target)
				}
				if err := os.Symlink(target, filepath.Join(dir, tt.symlink[0])); err != nil {
					t.Fatal(err)
				}
			}
			_, err := spec.Load(dir)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Load succeeded, want %s", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("got  %v\nwant it to contain %s", err, tt.want)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := spec.Load(t.TempDir())
	if !errors.Is(err, spec.ErrNoSpec) {
		t.Errorf("got %v, want ErrNoSpec", err)
	}
	if err == nil || !strings.Contains(err.Error(), "cortex init") {
		t.Errorf("got %v, want a hint to run cortex init", err)
	}
	if _, err := spec.Load(filepath.Join(t.TempDir(), "nope")); err == nil || !strings.Contains(err.Error(), "is not a function directory") {
		t.Errorf("got %v for a missing directory", err)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    spec.Size
		wantErr bool
	}{
		{"6MiB", 6 << 20, false},
		{"6Mi", 6 << 20, false},
		{"1MB", 1000000, false},
		{"1M", 1000000, false},
		{"512Ki", 512 << 10, false},
		{"512KiB", 512 << 10, false},
		{"10kB", 10000, false},
		{"1.5KiB", 1536, false},
		{"1048576", 1 << 20, false},
		{"100B", 100, false},
		{"2Gi", 2 << 30, false},
		{"6 MB", 0, true},
		{"MiB", 0, true},
		{"", 0, true},
		{"-1", 0, true},
		{"1mb", 0, true},
		{".", 0, true},
		{"99999999999TiB", 0, true},
		// Sizes are Kubernetes quantities (resource.ParseQuantity), which
		// also take these spellings.
		{"1K", 1000, false},
		{"1KB", 1000, false},
		{"1e3", 1000, false},
		{"+1", 1, false},
		{"1Pi", 1 << 50, false},
		{"1.", 1, false},
		{"1000m", 1, false},
		// A size is whole bytes with a digit: the fractions and the "."
		// (zero) a quantity takes are refused.
		{"1.5", 0, true},
		{"0.5", 0, true},
		{"512m", 0, true},
		{"1mB", 0, true},
		{"1Ki B", 0, true},
		{"1e19", 0, true},
		{"1e400", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := spec.ParseSize(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseSize(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestSizeString(t *testing.T) {
	tests := []struct {
		in   spec.Size
		want string
	}{
		{6 << 20, "6MiB"}, {512 << 10, "512KiB"}, {1000, "1000"}, {0, "0"}, {3 << 30, "3GiB"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
	}
}

func TestQuantities(t *testing.T) {
	tests := []struct {
		cpu, mem string
		ok       bool
	}{
		{"1", "512Mi", true},
		{"500m", "1Gi", true},
		{"0.5", "1G", true},
		{"2", "1e9", true},
		{"+1", "2147483648", true},
		{"1.5", "1.5Gi", true},
		{"1c", "1Gi", false},
		{"1", "1GiB", false},
		{"-1", "1Gi", false},
		{"1", "", true}, // empty means default
		// resource.ParseQuantity reads "." as zero and takes a sign: both
		// are then too small.
		{".", "1Gi", false},
		{"1", ".", false},
		{"1", "-1Gi", false},
		{"1e-3", "1Gi", true},
		{"1", "1.5e9", true},
	}
	for _, tt := range tests {
		t.Run(tt.cpu+"/"+tt.mem, func(t *testing.T) {
			s := &spec.Spec{Name: "fn", Predictor: spec.Predictor{Type: "go", Path: "p"}, Compute: spec.Compute{CPU: tt.cpu, Mem: tt.mem}}
			s.SetDefaults()
			err := s.Validate()
			if (err == nil) != tt.ok {
				t.Errorf("cpu %q mem %q: got %v, want ok=%v", tt.cpu, tt.mem, err, tt.ok)
			}
		})
	}
}

func TestRuntimeConfig(t *testing.T) {
	s, err := spec.Load("testdata/fn")
	if err != nil {
		t.Fatal(err)
	}
	got := s.RuntimeConfig()
	want := runtime.Config{
		Name: "iris",
		Dir:  s.Dir,
		Predictor: runtime.PredictorConfig{
			Type:   "onnx",
			Model:  "model/iris.onnx",
			Values: s.Predictor.Config,
		},
		Pre: "wasm/pre.wasm",
		GPU: 1,
		Limits: runtime.Limits{
			MaxBody:        1 << 20,
			Timeout:        runtime.Duration(10 * time.Second),
			MaxConcurrency: 16,
			MaxQueue:       -1, // max_queue: 0 is "no queue", which the runtime spells -1
			OverrunGrace:   runtime.Duration(45 * time.Second),
		},
		Batching: runtime.Batching{MaxBatchSize: 32, BatchInterval: runtime.Duration(2 * time.Millisecond)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RuntimeConfig:\n got %+v\nwant %+v", got, want)
	}
	if q := got.Limits.WithDefaults().MaxQueue; q != 0 {
		t.Errorf("runtime queue after defaults = %d, want 0", q)
	}
}

// TestWasmInterruptible: stage calls are interruptible unless the spec
// says interruptible: false, and the runtime is told so.
func TestWasmInterruptible(t *testing.T) {
	const base = "name: fn\npredictor: {type: go, path: ./p}\npre: s.wasm\n"
	for yaml, want := range map[string]bool{
		base:                                    false,
		base + "wasm: {interruptible: true}\n":  false,
		base + "wasm: {interruptible: false}\n": true,
	} {
		s, err := spec.Parse([]byte(yaml), "cortex.yaml")
		if err != nil {
			t.Fatalf("%q: %v", yaml, err)
		}
		if got := s.RuntimeConfig().Wasm.Uninterruptible; got != want {
			t.Errorf("%q: runtime Uninterruptible = %v, want %v", yaml, got, want)
		}
	}
	s, err := spec.Parse([]byte(base+"wasm: {interruptible: no thanks}\n"), "cortex.yaml")
	if err == nil || !strings.Contains(err.Error(), "wasm.interruptible: must be true or false") {
		t.Errorf("a non-boolean: %v", err)
	}
	// A field with a problem is left zero: interruptible.
	if s.Wasm.Uninterruptible {
		t.Errorf("a non-boolean interruptible made the stages uninterruptible")
	}
}

// TestSecretEnv: a secret's value is in no artifact: the runtime's
// config (cortex.json) has its name alone, whatever the environment holds;
// SecretValues reads the values from the environment it is given, and
// names every variable that is missing with the line and the fix.
func TestSecretEnv(t *testing.T) {
	const yaml = "name: fn\npredictor: {type: go, path: ./p}\npre: s.wasm\nwasm:\n  secret_env:\n" +
		"    - {name: API_TOKEN, secret: api-credentials, key: token}\n" +
		"    - {name: DB_PASSWORD, secret: db, key: password}\n"
	const value = "s3cr3t-value-in-the-environment"
	t.Setenv("API_TOKEN", value)
	s, err := spec.Parse([]byte(yaml), "fn/cortex.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.RuntimeConfig()
	if got, want := cfg.Wasm.SecretEnv, []string{"API_TOKEN", "DB_PASSWORD"}; !reflect.DeepEqual(got, want) {
		t.Errorf("runtime config's secret env = %q, want the names %q", got, want)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), value) || strings.Contains(string(b), "api-credentials") || !strings.Contains(string(b), `"secret_env":["API_TOKEN","DB_PASSWORD"]`) {
		t.Errorf("cortex.json = %s, want the names alone", b)
	}

	env := map[string]string{"API_TOKEN": value, "DB_PASSWORD": ""}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	got, err := s.SecretValues(lookup)
	if err != nil || !reflect.DeepEqual(got, env) {
		t.Errorf("SecretValues = %v, %v; want %v (an empty value is a value)", got, err, env)
	}
	delete(env, "DB_PASSWORD")
	_, err = s.SecretValues(lookup)
	if want := `fn/cortex.yaml:7: wasm.secret_env[1].name: $DB_PASSWORD is not set`; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `key "password" of Secret "db"`) {
		t.Errorf("SecretValues without $DB_PASSWORD: %v, want %q and where it comes from on Knative", err, want)
	}
}

// TestParseAliasAtTwoPaths: an anchored section used again at a path
// where its keys are unknown is reported there, and the first path keeps
// its values.
func TestParseAliasAtTwoPaths(t *testing.T) {
	s, err := spec.Parse([]byte("name: fn\npredictor: {type: go, path: ./p}\nlimits: &l {timeout: 1s}\nbatching: *l\n"), "cortex.yaml")
	var ve *spec.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Path != "batching.timeout" {
		t.Errorf("got %v, want one problem at batching.timeout", err)
	}
	if s == nil || s.Limits.Timeout != time.Second {
		t.Errorf("limits.timeout was not kept: %+v", s)
	}
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/cortex.yaml")
	more, _ := filepath.Glob("testdata/*.yaml")
	seeds = append(seeds, more...)
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{"", "name: a\n", "x: &a [*a]\n", "a: !!binary AAAA\n", "predictor: {config: {a: .nan}}\n", "predictor: {type: onnx, models: [{name: a, path: a.onnx}, b, {name: [x]}], models_dir: m, cache_size: -1}\n", "{", "- - -"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := spec.Parse(data, "cortex.yaml")
		if err != nil {
			var ve *spec.ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error %v is not a non-empty *ValidationError", err)
			}
			// Parse decodes only what its checks passed; yaml.v3
			// refusing any of it is a bug in the checks.
			if msg := err.Error(); strings.Contains(msg, "cannot be read: ") {
				t.Fatalf("the decoder refused what the checks passed:\n%s", msg)
			}
		}
		if s == nil {
			return
		}
		s.SetDefaults()
		if err := s.Validate(); err != nil {
			_ = err.Error()
		}
		_ = s.RuntimeConfig()
	})
}

// TestOverrunGrace: limits.overrun_grace defaults to twice limits.timeout,
// at least 5s, as the runtime's own default does; it reaches the runtime;
// a grace under a second is refused.
func TestOverrunGrace(t *testing.T) {
	const base = "name: fn\npredictor: {type: go, path: ./p}\n"
	tests := []struct {
		name, yaml string
		want       time.Duration
	}{
		{"default timeout", base, 60 * time.Second},
		{"short timeout", base + "limits: {timeout: 1s}\n", 5 * time.Second},
		{"timeout 10s", base + "limits: {timeout: 10s}\n", 20 * time.Second},
		{"set", base + "limits: {timeout: 10s, overrun_grace: 3s}\n", 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := spec.Parse([]byte(tt.yaml), "cortex.yaml")
			if err != nil {
				t.Fatal(err)
			}
			s.SetDefaults()
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			got := s.RuntimeConfig().Limits
			if got.OverrunGrace.D() != tt.want {
				t.Errorf("runtime overrun grace = %s, want %s", got.OverrunGrace, tt.want)
			}
			if d := (runtime.Limits{Timeout: got.Timeout}).WithDefaults().OverrunGrace.D(); s.Limits.OverrunGrace != d && !strings.Contains(tt.yaml, "overrun_grace") {
				t.Errorf("the spec's default %s is not the runtime's %s", s.Limits.OverrunGrace, d)
			}
		})
	}
	if p := problemsUnder(t, base+"limits: {overrun_grace: 500ms}\n", "limits.overrun_grace"); len(p) != 1 {
		t.Errorf("a 500ms grace: problems %q, want one at limits.overrun_grace", p)
	}
}
