package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Parse reads a spec from YAML. filename names it in messages.
//
// Parse checks structure and types: unknown keys (with the closest known key
// when one is close), duplicate keys, values of the wrong type, sizes and
// durations that do not parse. It does not fill defaults or check values
// against each other; SetDefaults and Validate do.
//
// When data is not YAML, Parse returns a nil Spec and the error. Otherwise
// it returns the Spec even when some fields had problems (those fields are
// left zero) together with a *ValidationError, so that a caller can go on to
// validate and report every problem at once, as Load does.
func Parse(data []byte, filename string) (s *Spec, err error) {
	if filename == "" {
		filename = FileName
	}
	var root yaml.Node
	if err := safeUnmarshal(data, &root); err != nil {
		return nil, &ValidationError{File: filename, Problems: []Problem{yamlProblem(err)}}
	}
	d := &decoder{lines: map[string]int{}, bad: map[string]bool{}}
	s = &Spec{File: filename}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	doc = d.resolve(doc, "")
	switch {
	case doc == nil || doc.Kind == 0 || isNull(doc):
		d.bad["name"], d.bad["predictor"] = true, true
		d.problem(nil, "", "the file is empty; a function needs at least name and predictor (run `cortex init` for a starting point)")
	case doc.Kind != yaml.MappingNode:
		d.bad["name"], d.bad["predictor"] = true, true
		d.problem(doc, "", "the file must be a mapping of keys such as name: and predictor:, not %s", describe(doc))
	default:
		d.spec(doc, s)
	}
	s.lines, s.bad = d.lines, d.bad
	if len(d.problems) > 0 {
		e := &ValidationError{File: filename, Problems: d.problems}
		e.sort()
		return s, e
	}
	return s, nil
}

// safeUnmarshal turns a panic in the YAML library into an error: a spec
// parser sees outside input and must never crash the CLI.
func safeUnmarshal(data []byte, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(n); err != nil {
		if errors.Is(err, io.EOF) {
			*n = yaml.Node{}
			return nil
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return fmt.Errorf("yaml: line %d: a second YAML document; cortex.yaml holds one function", extra.Line)
	}
	return nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlProblem(err error) Problem {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Line: line, Message: "invalid YAML: " + m[2]}
	}
	return Problem{Message: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

type decoder struct {
	problems []Problem
	lines    map[string]int
	bad      map[string]bool
}

func (d *decoder) problem(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	if path != "" {
		d.bad[path] = true
	}
	d.problems = append(d.problems, Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
}

// resolve follows aliases (bounded, so a crafted file cannot loop).
func (d *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 16 || n.Alias == nil {
			d.problem(n, path, "alias nests too deep")
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!bool":
			return "the boolean " + n.Value
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an empty value"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fields walks a mapping, reporting unknown and duplicate keys, and calls
// set for each known key with its (alias-resolved, non-null) value.
func (d *decoder) fields(n *yaml.Node, path string, known []string, set func(key string, v *yaml.Node, path string)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.resolve(n.Content[i], path), n.Content[i+1]
		if k == nil {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.problem(k, path, "keys must be plain names, not %s", describe(k))
			continue
		}
		key := k.Value
		p := join(path, key)
		if first, dup := seen[key]; dup {
			d.problem(k, p, "duplicate key; it is already set on line %d", first)
			continue
		}
		seen[key] = k.Line
		if !contains(known, key) {
			if s := closest(key, known); s != "" {
				d.problem(k, p, "unknown key; did you mean %q?", s)
			} else {
				d.problem(k, p, "unknown key; known keys here: %s", strings.Join(known, ", "))
			}
			continue
		}
		d.lines[p] = k.Line
		v = d.resolve(v, p)
		if v == nil || isNull(v) {
			continue
		}
		set(key, v, p)
	}
}

// mapping returns n when it is a mapping, else reports it.
func (d *decoder) mapping(n *yaml.Node, path string) bool {
	if n.Kind != yaml.MappingNode {
		d.problem(n, path, "must be a mapping of keys, not %s", describe(n))
		return false
	}
	return true
}

// str reads a string. Numbers are accepted as their text (cpu: 1, name: 42)
// so that the check of what the string means reports the real problem.
func (d *decoder) str(n *yaml.Node, path string) string {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float":
			return n.Value
		}
	}
	d.problem(n, path, "must be a string, not %s", describe(n))
	return ""
}

func (d *decoder) boolean(n *yaml.Node, path string) bool {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		var v bool
		if err := n.Decode(&v); err == nil {
			return v
		}
	}
	d.problem(n, path, "must be true or false, not %s", describe(n))
	return false
}

func (d *decoder) int(n *yaml.Node, path string) int {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		var v int
		if err := n.Decode(&v); err == nil {
			return v
		}
		d.problem(n, path, "%s is out of range", n.Value)
		return 0
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		if _, err := strconv.Atoi(n.Value); err == nil {
			d.problem(n, path, "must be a whole number, not the string %q; write it without quotes", n.Value)
			return 0
		}
	}
	d.problem(n, path, "must be a whole number, not %s", describe(n))
	return 0
}

func (d *decoder) duration(n *yaml.Node, path string) time.Duration {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str":
			v, err := time.ParseDuration(n.Value)
			if err == nil {
				return v
			}
		case "!!int":
			if n.Value == "0" {
				return 0
			}
		}
	}
	d.problem(n, path, "%s is not a duration; use a number with a unit, like 30s, 500ms or 2m", quoteValue(n))
	return 0
}

func (d *decoder) size(n *yaml.Node, path string) Size {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!int":
			var v int64
			if err := n.Decode(&v); err == nil {
				return Size(v)
			}
		case "!!str":
			v, err := ParseSize(n.Value)
			if err == nil {
				return v
			}
			d.problem(n, path, "%v", err)
			return 0
		}
	}
	d.problem(n, path, "%s is not a size; use a number of bytes or a unit like 6MiB, 512Ki", quoteValue(n))
	return 0
}

func quoteValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		if n.ShortTag() == "!!str" {
			return strconv.Quote(n.Value)
		}
		return n.Value
	}
	return describe(n)
}

func (d *decoder) stringMap(n *yaml.Node, path string) map[string]string {
	if !d.mapping(n, path) {
		return nil
	}
	m := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.resolve(n.Content[i], path), d.resolve(n.Content[i+1], path)
		if k == nil || v == nil {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.problem(k, path, "keys must be strings, not %s", describe(k))
			continue
		}
		p := path + "[" + k.Value + "]"
		if _, dup := m[k.Value]; dup {
			d.problem(k, p, "duplicate key")
			continue
		}
		d.lines[p] = v.Line
		if v.Kind != yaml.ScalarNode || isNull(v) {
			d.problem(v, p, "must be a string, not %s", describe(v))
			continue
		}
		m[k.Value] = v.Value
	}
	return m
}

// anyMap decodes predictor.config. It must survive a JSON round trip,
// since that is how it reaches the predictor: numbers come out as float64.
func (d *decoder) anyMap(n *yaml.Node, path string) map[string]any {
	if !d.mapping(n, path) {
		return nil
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		d.problem(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil
	}
	if err := jsonSafe(m, path); err != nil {
		d.problem(n, path, "%v", err)
		return nil
	}
	// The values reach Init through JSON (runtime.Config); give them the
	// same shape here (numbers become float64) so that what a test or tool
	// sees in the Spec is what the predictor sees.
	b, err := json.Marshal(m)
	if err != nil {
		d.problem(n, path, "cannot be passed to the predictor as JSON: %v", err)
		return nil
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		d.problem(n, path, "cannot be passed to the predictor as JSON: %v", err)
		return nil
	}
	return out
}

// jsonSafe reports values that encoding/json cannot encode: maps with
// non-string keys (YAML allows `1: x`).
func jsonSafe(v any, path string) error {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if err := jsonSafe(e, path+"."+k); err != nil {
				return err
			}
		}
	case map[any]any:
		for k := range v {
			return fmt.Errorf("the key %v under %s is not a string; quote it", k, path)
		}
	case []any:
		for i, e := range v {
			if err := jsonSafe(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// The known keys of each section come from the table of keys (keys.go), so
// a key cannot be read without being documented. A key added there needs a
// case in the switch that reads its section below; TestKeysParse fails
// until it has one.
var (
	topKeys         = keysUnder("")
	wasmKeys        = keysUnder("wasm")
	predictorKeys   = keysUnder("predictor")
	modelKeys       = keysUnder("predictor.models")
	computeKeys     = keysUnder("compute")
	autoscalingKeys = keysUnder("autoscaling")
	batchingKeys    = keysUnder("batching")
	limitsKeys      = keysUnder("limits")
	targetsKeys     = keysUnder("targets")
	knativeKeys     = keysUnder("targets.knative")
	lambdaKeys      = keysUnder("targets.lambda")
)

func (d *decoder) spec(n *yaml.Node, s *Spec) {
	d.fields(n, "", topKeys, func(key string, v *yaml.Node, p string) {
		switch key {
		case "name":
			s.Name = d.str(v, p)
		case "pre":
			s.Pre = d.str(v, p)
		case "post":
			s.Post = d.str(v, p)
		case "predictor":
			if d.mapping(v, p) {
				d.predictor(v, p, &s.Predictor)
			}
		case "wasm":
			if d.mapping(v, p) {
				d.fields(v, p, wasmKeys, func(key string, v *yaml.Node, p string) {
					switch key {
					case "memory":
						s.Wasm.Memory = d.size(v, p)
					case "env":
						s.Wasm.Env = d.stringMap(v, p)
					case "clock":
						s.Wasm.Clock = d.boolean(v, p)
					case "random":
						s.Wasm.Random = d.boolean(v, p)
					case "interruptible":
						s.Wasm.Uninterruptible = !d.boolean(v, p)
					}
				})
			}
		case "compute":
			if d.mapping(v, p) {
				d.compute(v, p, &s.Compute)
			}
		case "autoscaling":
			if d.mapping(v, p) {
				d.autoscaling(v, p, &s.Autoscaling)
			}
		case "batching":
			if d.mapping(v, p) {
				d.fields(v, p, batchingKeys, func(key string, v *yaml.Node, p string) {
					switch key {
					case "max_batch_size":
						s.Batching.MaxBatchSize = d.int(v, p)
					case "batch_interval":
						s.Batching.BatchInterval = d.duration(v, p)
					}
				})
			}
		case "limits":
			if d.mapping(v, p) {
				d.limits(v, p, &s.Limits)
			}
		case "targets":
			if d.mapping(v, p) {
				d.targets(v, p, &s.Targets)
			}
		}
	})
}

func (d *decoder) predictor(n *yaml.Node, path string, pr *Predictor) {
	d.fields(n, path, predictorKeys, func(key string, v *yaml.Node, p string) {
		switch key {
		case "type":
			pr.Type = d.str(v, p)
		case "model":
			pr.Model = d.str(v, p)
		case "path":
			pr.Path = d.str(v, p)
		case "config":
			pr.Config = d.anyMap(v, p)
		case "models":
			pr.Models = d.models(v, p)
		case "models_dir":
			pr.ModelsDir = d.str(v, p)
		case "cache_size":
			pr.CacheSize = d.int(v, p)
		case "poll_interval":
			pr.PollInterval = d.duration(v, p)
		case "default_model":
			pr.DefaultModel = d.str(v, p)
		}
	})
}

// models reads predictor.models: a list of {name, path} mappings. Each
// entry's line is recorded under path[i], its fields under path[i].name
// and path[i].path.
func (d *decoder) models(n *yaml.Node, path string) []Model {
	if n.Kind != yaml.SequenceNode {
		d.problem(n, path, "must be a list of {name, path} entries, not %s", describe(n))
		return nil
	}
	var out []Model
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		item = d.resolve(item, p)
		if item == nil {
			continue
		}
		d.lines[p] = item.Line
		if item.Kind != yaml.MappingNode {
			d.problem(item, p, "must be a mapping with name and path, not %s", describe(item))
			out = append(out, Model{}) // keeps the indices of later entries
			continue
		}
		var m Model
		d.fields(item, p, modelKeys, func(key string, v *yaml.Node, p string) {
			switch key {
			case "name":
				m.Name = d.str(v, p)
			case "path":
				m.Path = d.str(v, p)
			}
		})
		out = append(out, m)
	}
	return out
}

func (d *decoder) compute(n *yaml.Node, path string, c *Compute) {
	d.fields(n, path, computeKeys, func(key string, v *yaml.Node, p string) {
		switch key {
		case "cpu":
			c.CPU = d.str(v, p)
		case "mem":
			c.Mem = d.str(v, p)
		case "gpu":
			c.GPU = d.int(v, p)
		}
	})
}

func (d *decoder) autoscaling(n *yaml.Node, path string, a *Autoscaling) {
	d.fields(n, path, autoscalingKeys, func(key string, v *yaml.Node, p string) {
		switch key {
		case "min_scale":
			a.MinScale = d.int(v, p)
		case "max_scale":
			a.MaxScale = d.int(v, p)
		case "target_concurrency":
			a.TargetConcurrency = d.int(v, p)
		case "scale_down_delay":
			a.ScaleDownDelay = d.duration(v, p)
		case "window":
			a.Window = d.duration(v, p)
		}
	})
}

func (d *decoder) limits(n *yaml.Node, path string, l *Limits) {
	d.fields(n, path, limitsKeys, func(key string, v *yaml.Node, p string) {
		switch key {
		case "max_body":
			l.MaxBody = d.size(v, p)
		case "timeout":
			l.Timeout = d.duration(v, p)
		case "max_concurrency":
			l.MaxConcurrency = d.int(v, p)
		case "max_queue":
			q := d.int(v, p)
			if !d.bad[p] {
				l.MaxQueue = &q
			}
		case "overrun_grace":
			l.OverrunGrace = d.duration(v, p)
		}
	})
}

func (d *decoder) targets(n *yaml.Node, path string, t *Targets) {
	d.fields(n, path, targetsKeys, func(key string, v *yaml.Node, p string) {
		if !d.mapping(v, p) {
			return
		}
		switch key {
		case "knative":
			d.fields(v, p, knativeKeys, func(key string, v *yaml.Node, p string) {
				switch key {
				case "namespace":
					t.Knative.Namespace = d.str(v, p)
				case "visibility":
					t.Knative.Visibility = d.str(v, p)
				case "gpu_node_selector":
					t.Knative.GPUNodeSelector = d.stringMap(v, p)
				case "registry":
					t.Knative.Registry = d.str(v, p)
				}
			})
		case "lambda":
			d.fields(v, p, lambdaKeys, func(key string, v *yaml.Node, p string) {
				switch key {
				case "arch":
					t.Lambda.Arch = d.str(v, p)
				case "memory":
					t.Lambda.Memory = d.int(v, p)
				case "url_auth":
					t.Lambda.URLAuth = d.str(v, p)
				}
			})
		}
	})
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
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
