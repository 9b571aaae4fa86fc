package spec_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime/wasm"
)

// TestKeysDescribed: every key is fully described and sits in a section
// or list that is itself a key.
func TestKeysDescribed(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range spec.Keys() {
		t.Run(k.Path, func(t *testing.T) {
			if seen[k.Path] {
				t.Errorf("listed twice")
			}
			seen[k.Path] = true
			if !slices.Contains(spec.Kinds(), k.Type) {
				t.Errorf("type %q is not one of %v", k.Type, spec.Kinds())
			}
			if k.Example == "" {
				t.Error("no example")
			}
			if d := k.Description; d == "" || !strings.HasSuffix(d, ".") {
				t.Errorf("description %q: want one to three sentences", d)
			} else if n := strings.Count(d, ". ") + 1; n > 3 {
				t.Errorf("description has %d sentences, want at most 3: %q", n, d)
			}
			if (k.Type == spec.KindSection) != (k.Default == "") {
				t.Errorf("default %q: want one (or \"none\") for every key but a section", k.Default)
			}
			if (k.Type == spec.KindEnum) != (len(k.Values) > 0) {
				t.Errorf("values %q: want them for an enum and only for one", k.Values)
			}
			if k.Min != "" || k.Max != "" {
				switch k.Type {
				case spec.KindInt, spec.KindDuration, spec.KindSize, spec.KindQuantity:
				default:
					t.Errorf("min or max on a %s; state it in Rule", k.Type)
				}
			}
			if p := k.Parent(); p != "" {
				pk, err := spec.Lookup(p)
				if err != nil || (pk.Type != spec.KindSection && pk.Type != spec.KindList) {
					t.Errorf("parent %q is not a section or list key (%v)", p, err)
				}
				if !seen[p] {
					t.Errorf("listed before its parent %s", p)
				}
			}
		})
	}
}

// TestKeysParse drives the real parser with every key of the table: its
// snippet (the key set to its example) parses without a problem and
// changes the Spec, so the parser reads the key and does not drop it; a
// value of the wrong type is refused at the key's path; and each section
// knows exactly the keys the table lists under it.
func TestKeysParse(t *testing.T) {
	empty := specJSON(t, "{}")
	wrong := map[spec.Kind]string{
		spec.KindString:   "[a]",
		spec.KindEnum:     "[a]",
		spec.KindQuantity: "[a]",
		spec.KindInt:      "many",
		spec.KindBool:     "maybe",
		spec.KindDuration: "5",
		spec.KindSize:     "6 MB",
		spec.KindMap:      "[a]",
		spec.KindList:     "many",
		spec.KindStrings:  "many",
		spec.KindSection:  "many",
	}
	for _, k := range spec.Keys() {
		t.Run(k.Path, func(t *testing.T) {
			if got := specJSON(t, k.Snippet()); got == empty {
				t.Errorf("setting it changes nothing in the Spec; does its field in spec.go have the tag yaml:%q?\n%s", k.Name(), k.Snippet())
			}
			bad := k
			bad.Example = wrong[k.Type]
			if got := problemsUnder(t, bad.Snippet(), k.Path); len(got) == 0 {
				t.Errorf("a %s key took %s without a problem", k.Type, bad.Example)
			}
			if k.Type != spec.KindSection && k.Type != spec.KindList {
				return
			}
			var want []string
			for _, c := range spec.Children(k.Path) {
				want = append(want, c.Name())
			}
			unknown := spec.Key{Path: k.Path + listMark(k) + ".zzzzzzzz", Example: "1"}
			got := strings.Join(problemsUnder(t, unknown.Snippet(), k.Path), "\n")
			if w := "unknown key; known keys here: " + strings.Join(want, ", "); !strings.Contains(got, w) {
				t.Errorf("an unknown key under it:\n got %s\nwant %s", got, w)
			}
		})
	}
	top := spec.Key{Path: "zzzzzzzz", Example: "1"}
	var want []string
	for _, c := range spec.Children("") {
		want = append(want, c.Name())
	}
	got := strings.Join(problemsUnder(t, top.Snippet(), "zzzzzzzz"), "\n")
	if w := "known keys here: " + strings.Join(want, ", "); !strings.Contains(got, w) {
		t.Errorf("an unknown top-level key:\n got %s\nwant %s", got, w)
	}
}

func listMark(k spec.Key) string {
	if k.Type == spec.KindList {
		return "[]"
	}
	return ""
}

// Base specs to set one key in: a key's example (and each bound and enum
// value) must be valid in at least one of them.
var bases = map[string]string{
	"go":         "name: fn\npredictor: {type: go, path: ./predictor}\npre: pre.wasm\nbatching: {max_batch_size: 8}\n",
	"onnx":       "name: fn\npredictor: {type: onnx, model: model.onnx}\npre: pre.wasm\n",
	"models":     "name: fn\npredictor: {type: onnx, models: [{name: iris, path: models/iris}]}\npre: pre.wasm\n",
	"models_dir": "name: fn\npredictor: {type: onnx, models_dir: models}\npre: pre.wasm\n",
	"gpu":        "name: fn\npredictor: {type: go, path: ./predictor}\ncompute: {gpu: 1}\n",
	"cors":       "name: fn\npredictor: {type: go, path: ./predictor}\ncors: {allow_origins: [\"*\"]}\n",
	"model ref":  "name: fn\npredictor: {type: onnx, model: \"s3://models-a/iris.onnx\"}\n",
	"models ref": "name: fn\npredictor: {type: onnx, models: [{name: iris, path: \"s3://models-a/iris.onnx\"}]}\n",
}

// TestKeysValidate holds the allowed values of the table to the
// validator: the example, each enum value and each bound are accepted in
// some base spec; a value outside an enum or just past a bound is refused
// in every one.
func TestKeysValidate(t *testing.T) {
	for name, b := range bases {
		if p := problemsUnder(t, b, ""); len(p) > 0 {
			t.Fatalf("base %s is not valid: %s", name, p)
		}
	}
	for _, k := range spec.Keys() {
		t.Run(k.Path, func(t *testing.T) {
			accepted(t, k, "example", k.Example)
			for _, v := range k.Values {
				accepted(t, k, "value", v)
			}
			if len(k.Values) > 0 {
				refused(t, k, "a value outside the enum", "no-such-value")
			}
			if k.Min != "" {
				accepted(t, k, "min", k.Min)
				refused(t, k, "a value below the min", step(t, k, k.Min, -1))
			}
			if k.Max != "" {
				accepted(t, k, "max", k.Max)
				refused(t, k, "a value above the max", step(t, k, k.Max, +1))
			}
		})
	}
}

// TestKeysDefaults: setting a key to its documented default changes
// nothing once SetDefaults has run (in some base spec).
func TestKeysDefaults(t *testing.T) {
	for _, k := range spec.Keys() {
		switch {
		case k.Default == "" || k.Default == "none":
			continue
		case k.Path == "wasm.memory":
			// The runtime, not SetDefaults, fills it in.
			if got, err := spec.ParseSize(k.Default); err != nil || got != spec.Size(wasm.DefaultMemoryLimitPages)<<16 {
				t.Errorf("wasm.memory: default %s, but runtime/wasm's is %d pages", k.Default, wasm.DefaultMemoryLimitPages)
			}
			continue
		case k.Path == "limits.overrun_grace":
			for timeout, want := range map[string]time.Duration{"1s": 5 * time.Second, "7s": 14 * time.Second} {
				s, _ := spec.Parse([]byte(bases["go"]+"limits: {timeout: "+timeout+"}\n"), "")
				s.SetDefaults()
				if k.Default != "twice limits.timeout, at least 5s" || s.Limits.OverrunGrace != want {
					t.Errorf("overrun_grace: documented default %q, but with timeout %s it is %s", k.Default, timeout, s.Limits.OverrunGrace)
				}
			}
			continue
		case k.Parent() == "targets.knative.trigger" || k.Parent() == "targets.lambda.async":
			// The section's presence makes a Trigger or an event-invoke
			// configuration: its keys' defaults apply within it.
			sec, err := spec.Lookup(k.Parent())
			if err != nil {
				t.Fatal(err)
			}
			sec.Example = "{}"
			base := merge(t, bases["go"], sec.Snippet())
			if defaulted(t, merge(t, base, setTo(k, k.Default))) != defaulted(t, base) {
				t.Errorf("%s: setting it to its default %s changes the Spec with %s set", k.Path, k.Default, k.Parent())
			}
			continue
		case k.Path == "autoscaling.target_concurrency":
			s, _ := spec.Parse([]byte(bases["go"]+"limits: {max_concurrency: 7}\n"), "")
			s.SetDefaults()
			if k.Default != "limits.max_concurrency" || s.Autoscaling.TargetConcurrency != 7 {
				t.Errorf("target_concurrency: documented default %q, but with max_concurrency 7 it is %d", k.Default, s.Autoscaling.TargetConcurrency)
			}
			continue
		}
		t.Run(k.Path, func(t *testing.T) {
			set := k
			set.Example = k.Default
			for _, b := range bases {
				if defaulted(t, merge(t, b, set.Snippet())) == defaulted(t, b) {
					return
				}
			}
			t.Errorf("setting it to its default %s changes the Spec in every base", k.Default)
		})
	}
}

// TestReferenceExample: the example that opens the reference is valid and
// sets every top-level key.
func TestReferenceExample(t *testing.T) {
	if p := problemsUnder(t, spec.ExampleSpec, ""); len(p) > 0 {
		t.Errorf("the example has problems:\n%s", strings.Join(p, "\n"))
	}
	s, _ := spec.Parse([]byte(spec.ExampleSpec), "")
	for _, k := range spec.Children("") {
		if !s.Has(k.Path) {
			t.Errorf("the example does not set %s", k.Path)
		}
	}
}

const referenceFile = "../../docs/cortex-yaml.md"

// TestReference compares docs/cortex-yaml.md with a fresh rendering of the
// table of keys; -update rewrites it.
func TestReference(t *testing.T) {
	var b bytes.Buffer
	if err := spec.WriteReference(&b); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(referenceFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(referenceFile, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(referenceFile)
	if err != nil {
		t.Fatalf("%v; run go test ./packager/spec -run TestReference -update", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("docs/cortex-yaml.md is not the rendering of the table of keys in packager/spec/keys.go; run go test ./packager/spec -run TestReference -update\n%s", firstDiff(b.String(), string(want)))
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n rendered: " + gl + "\n     file: " + wl
		}
	}
	return ""
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name, path string
		want       string   // the key found, or "" for an error
		suggest    []string // leading suggestions
		errHas     string
	}{
		{"leaf", "limits.timeout", "limits.timeout", nil, ""},
		{"section", "targets.knative", "targets.knative", nil, ""},
		{"list entry with index", "predictor.models[0].name", "predictor.models[].name", nil, ""},
		{"list entry without brackets", "predictor.models.path", "predictor.models[].path", nil, ""},
		{"typo", "limits.timout", "", []string{"limits.timeout"}, `did you mean limits.timeout?`},
		{"typo in section", "limit.timeout", "", []string{"limits.timeout"}, ""},
		{"bare name", "timeout", "", []string{"limits.timeout"}, ""},
		{"bare name in two sections", "memory", "", []string{"wasm.memory", "targets.lambda.memory"}, "did you mean wasm.memory or targets.lambda.memory?"},
		{"prefix", "limits.max", "", []string{"limits.max_body", "limits.max_concurrency", "limits.max_queue"}, ""},
		{"camel case", "limits.maxBody", "", []string{"limits.max_body"}, ""},
		{"nothing close", "zebra", "", nil, `cortex.yaml has no key "zebra"; the top-level keys are name, predictor,`},
		{"nothing close in a section", "limits.zzz", "", nil, "the keys of limits are limits.max_body, limits.timeout,"},
		{"inside a map", "wasm.env.MODE", "", nil, "wasm.env is a map whose keys you choose"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := spec.Lookup(tt.path)
			if tt.want != "" {
				if err != nil || k.Path != tt.want {
					t.Fatalf("got %q, %v; want %s", k.Path, err, tt.want)
				}
				return
			}
			var ue *spec.UnknownKeyError
			if !errors.As(err, &ue) {
				t.Fatalf("got %q, %v; want an *UnknownKeyError", k.Path, err)
			}
			if len(ue.Suggestions) < len(tt.suggest) || !slices.Equal(ue.Suggestions[:len(tt.suggest)], tt.suggest) {
				t.Errorf("suggestions %q, want them to start with %q", ue.Suggestions, tt.suggest)
			}
			if len(tt.suggest) == 0 && len(ue.Suggestions) > 0 {
				t.Errorf("suggestions %q, want none", ue.Suggestions)
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("error %q, want it to contain %q", err, tt.errHas)
			}
		})
	}
}

func TestSnippet(t *testing.T) {
	for path, want := range map[string]string{
		"name":                    "name: iris\n",
		"limits.timeout":          "limits:\n  timeout: 10s\n",
		"predictor.models[].name": "predictor:\n  models:\n    - name: iris\n",
	} {
		k, err := spec.Lookup(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := k.Snippet(); got != want {
			t.Errorf("%s: got\n%s\nwant\n%s", path, got, want)
		}
	}
}

// accepted fails unless some base spec with k set to v has no problem at
// k's path.
func accepted(t *testing.T, k spec.Key, what, v string) {
	t.Helper()
	set := k
	set.Example = v
	var all []string
	for name, b := range bases {
		p := problemsUnder(t, merge(t, b, set.Snippet()), k.Path)
		if len(p) == 0 {
			return
		}
		all = append(all, name+": "+strings.Join(p, "; "))
	}
	t.Errorf("the %s %s is refused in every base:\n%s", what, v, strings.Join(all, "\n"))
}

// refused fails when some base spec with k set to v has no problem at k's
// path.
func refused(t *testing.T, k spec.Key, what, v string) {
	t.Helper()
	set := k
	set.Example = v
	for name, b := range bases {
		if p := problemsUnder(t, merge(t, b, set.Snippet()), k.Path); len(p) == 0 {
			t.Errorf("%s, %s, is accepted in base %s", what, v, name)
		}
	}
}

// step returns the value one small step below (dir -1) or above (+1) the
// bound v of k. Zero takes a key's default, so a step to 0 goes on to -1.
func step(t *testing.T, k spec.Key, v string, dir int) string {
	t.Helper()
	switch k.Type {
	case spec.KindInt:
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("bound %q: %v", v, err)
		}
		return strconv.Itoa(notZero(n + dir))
	case spec.KindSize:
		n, err := spec.ParseSize(v)
		if err != nil {
			t.Fatalf("bound %q: %v", v, err)
		}
		return strconv.Itoa(notZero(int(n) + dir))
	case spec.KindDuration:
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("bound %q: %v", v, err)
		}
		return (d + time.Duration(dir)*time.Millisecond).String()
	case spec.KindQuantity:
		num := strings.TrimRightFunc(v, func(r rune) bool { return r < '0' || r > '9' })
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			t.Fatalf("bound %q: %v", v, err)
		}
		return strconv.FormatFloat(f*(1+float64(dir)/10), 'f', -1, 64) + v[len(num):]
	}
	t.Fatalf("a bound on a %s", k.Type)
	return ""
}

func notZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// merge sets the keys of snippet in base: mappings merge, and so do the
// first entries of two lists.
func merge(t *testing.T, base, snippet string) string {
	t.Helper()
	var b, s any
	if err := yaml.Unmarshal([]byte(base), &b); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(snippet), &s); err != nil {
		t.Fatalf("%v:\n%s", err, snippet)
	}
	out, err := yaml.Marshal(mergeValue(b, s))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func mergeValue(dst, src any) any {
	switch s := src.(type) {
	case map[string]any:
		d, ok := dst.(map[string]any)
		if !ok {
			return s
		}
		for k, v := range s {
			d[k] = mergeValue(d[k], v)
		}
		return d
	case []any:
		d, ok := dst.([]any)
		if !ok || len(d) == 0 || len(s) != 1 {
			return s
		}
		d[0] = mergeValue(d[0], s[0])
		return d
	}
	return src
}

var listIndexes = regexp.MustCompile(`\[[0-9]+\]`)

// problemsUnder parses, defaults and validates yaml and returns the
// problems at path or below it ("" for all of them).
func problemsUnder(t *testing.T, yaml, path string) []string {
	t.Helper()
	var all []spec.Problem
	s, err := spec.Parse([]byte(yaml), "cortex.yaml")
	var ve *spec.ValidationError
	if errors.As(err, &ve) {
		all = append(all, ve.Problems...)
	} else if err != nil {
		t.Fatalf("%v:\n%s", err, yaml)
	}
	if s != nil {
		s.SetDefaults()
		if errors.As(s.Validate(), &ve) {
			all = append(all, ve.Problems...)
		}
	}
	var out []string
	for _, p := range all {
		at := listIndexes.ReplaceAllString(p.Path, "[]")
		if path == "" || at == path || strings.HasPrefix(at, path+".") || strings.HasPrefix(at, path+"[") {
			out = append(out, p.String())
		}
	}
	return out
}

// specJSON parses yaml, which must have no problem, and returns the Spec
// as JSON.
func specJSON(t *testing.T, yaml string) string {
	t.Helper()
	s, err := spec.Parse([]byte(yaml), "cortex.yaml")
	if err != nil {
		t.Fatalf("%v:\n%s", err, yaml)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// defaulted returns the Spec of yaml after SetDefaults, as JSON.
func defaulted(t *testing.T, yaml string) string {
	t.Helper()
	s, _ := spec.Parse([]byte(yaml), "cortex.yaml")
	if s == nil {
		t.Fatalf("not YAML:\n%s", yaml)
	}
	s.SetDefaults()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// setTo is the snippet that sets k to value.
func setTo(k spec.Key, value string) string {
	k.Example = value
	return k.Snippet()
}
