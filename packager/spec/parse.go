package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
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
//
// It works in two steps. A check walks the YAML tree against the table of
// keys (keys.go), reporting every problem with its field path and line,
// recording the line of each key (Line, Has), and leaving out each key whose
// value has a problem; yaml.v3 then decodes what is left into the Spec by
// the yaml tags of its fields. Decoding alone cannot report this way: its
// errors carry a line and a text but not the field path, which Problem,
// Has and the validator (not to report a problem twice) need, nor a
// suggestion; and it gives up a whole mapping on a duplicate key.
func Parse(data []byte, filename string) (*Spec, error) {
	if filename == "" {
		filename = FileName
	}
	var root yaml.Node
	if err := safely(func() error { return decodeOne(data, &root) }); err != nil {
		return nil, &ValidationError{File: filename, Problems: []Problem{yamlProblem(err)}}
	}
	c := &checker{lines: map[string]int{}, bad: map[string]bool{}}
	s := &Spec{}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	doc = c.resolve(doc, "")
	switch {
	case doc == nil || doc.Kind == 0 || isNull(doc):
		c.bad["name"], c.bad["predictor"] = true, true
		c.problem(nil, "", "the file is empty; a function needs at least name and predictor (run `cortex init` for a starting point)")
	case doc.Kind != yaml.MappingNode:
		c.bad["name"], c.bad["predictor"] = true, true
		c.problem(doc, "", "the file must be a mapping of keys such as name: and predictor:, not %s", describe(doc))
	default:
		clean := c.mapping(doc, "", "")
		if err := safely(func() error { return clean.Decode(s) }); err != nil {
			// The check passes only what decodes; say so if it did not.
			c.problems = append(c.problems, Problem{Message: "cannot be read: " + err.Error()})
		}
		// The check refused every config that JSON cannot carry.
		s.Predictor.Config, _ = asJSON(s.Predictor.Config, "predictor.config")
	}
	s.File, s.lines, s.bad = filename, c.lines, c.bad
	if len(c.problems) > 0 {
		e := &ValidationError{File: filename, Problems: c.problems}
		e.sort()
		return s, e
	}
	return s, nil
}

// safely turns a panic in the YAML library into an error: a spec parser
// sees outside input and must never crash the CLI.
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return f()
}

// decodeOne reads the one YAML document of data into n.
func decodeOne(data []byte, n *yaml.Node) error {
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

// checker is the first step of Parse: see there.
type checker struct {
	problems []Problem
	lines    map[string]int
	bad      map[string]bool
}

func (c *checker) problem(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	if path != "" {
		c.bad[path] = true
	}
	c.problems = append(c.problems, Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
}

// resolve follows aliases (bounded, so a crafted file cannot loop).
func (c *checker) resolve(n *yaml.Node, path string) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 16 || n.Alias == nil {
			c.problem(n, path, "alias nests too deep")
			return nil
		}
		n = n.Alias
	}
	return n
}

// mapping checks the mapping n at path against the keys the table lists
// under section. It returns a copy of n for the decoder that holds each key
// without a problem, with its value as checked: the tree itself is left
// alone, since an anchored value may be used at another path too.
func (c *checker) mapping(n *yaml.Node, path, section string) *yaml.Node {
	known := Children(section)
	seen := map[string]int{}
	out := *n
	out.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := c.resolve(n.Content[i], path)
		if v := c.field(k, n.Content[i+1], path, known, seen); v != nil {
			out.Content = append(out.Content, k, v)
		}
	}
	return &out
}

// field checks one key of a mapping at path and returns its value as
// checked, or nil when it has a problem.
func (c *checker) field(k, v *yaml.Node, path string, known []Key, seen map[string]int) *yaml.Node {
	if k == nil {
		return nil
	}
	if k.Kind != yaml.ScalarNode {
		c.problem(k, path, "keys must be plain names, not %s", describe(k))
		return nil
	}
	p := join(path, k.Value)
	if first, dup := seen[k.Value]; dup {
		c.problem(k, p, "duplicate key; it is already set on line %d", first)
		return nil
	}
	seen[k.Value] = k.Line
	i := slices.IndexFunc(known, func(kk Key) bool { return kk.Name() == k.Value })
	if i < 0 {
		names := keyNames(known)
		if s := closest(k.Value, names); s != "" {
			c.problem(k, p, "unknown key; did you mean %q?", s)
		} else {
			c.problem(k, p, "unknown key; known keys here: %s", strings.Join(names, ", "))
		}
		return nil
	}
	c.lines[p] = k.Line
	return c.value(known[i], c.resolve(v, p), p)
}

// value checks v, the value of the key k at path, by the kind of the key,
// and returns it as checked, or nil when it has a problem.
func (c *checker) value(k Key, v *yaml.Node, path string) *yaml.Node {
	switch {
	case v == nil:
		return nil
	case isNull(v):
		return v // decodes as the zero value
	case k.Type == KindSection:
		if c.isMapping(v, path) {
			return c.mapping(v, path, k.Path)
		}
	case k.Type == KindList:
		return c.list(v, path, k)
	case k.Type == KindStrings:
		return c.stringList(v, path)
	case k.Type == KindMap && k.elem != "":
		if c.isMapping(v, path) {
			return c.stringMap(v, path)
		}
	case c.scalar(k, v, path):
		return v
	}
	return nil
}

// scalar checks a value that is not a section, a list or a map of
// strings, and reports whether it is fit to decode.
func (c *checker) scalar(k Key, v *yaml.Node, path string) bool {
	switch k.Type {
	case KindMap:
		return c.isMapping(v, path) && c.jsonMap(v, path)
	case KindBool:
		if !isScalar(v, "!!bool") || v.Decode(new(bool)) != nil {
			c.problem(v, path, "must be true or false, not %s", describe(v))
			return false
		}
	case KindInt:
		return c.int(v, path)
	case KindDuration:
		if isScalar(v, "!!int") && v.Value == "0" {
			// A bare 0 is allowed: it is the zero value, which yaml.v3
			// would refuse to decode from a number into a time.Duration.
			return false
		}
		if _, err := time.ParseDuration(v.Value); err != nil || !isScalar(v, "!!str") {
			c.problem(v, path, "%s is not a duration; use a number with a unit, like 30s, 500ms or 2m", quoteValue(v))
			return false
		}
	case KindSize:
		if err := v.Decode(new(Size)); err != nil {
			c.problem(v, path, "%v", err)
			return false
		}
	default:
		// A string, an enum or a quantity. Numbers are taken as their text
		// (cpu: 1, name: 42) so that the check of what the string means
		// reports the real problem.
		if !isScalar(v, "!!str", "!!int", "!!float") {
			c.problem(v, path, "must be a string, not %s", describe(v))
			return false
		}
	}
	return true
}

func (c *checker) isMapping(n *yaml.Node, path string) bool {
	if n.Kind != yaml.MappingNode {
		c.problem(n, path, "must be a mapping of keys, not %s", describe(n))
		return false
	}
	return true
}

func (c *checker) int(n *yaml.Node, path string) bool {
	switch {
	case isScalar(n, "!!int"):
		if n.Decode(new(int)) == nil {
			return true
		}
		c.problem(n, path, "%s is out of range", n.Value)
	case isScalar(n, "!!str") && isInt(n.Value):
		c.problem(n, path, "must be a whole number, not the string %q; write it without quotes", n.Value)
	default:
		c.problem(n, path, "must be a whole number, not %s", describe(n))
	}
	return false
}

func isInt(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// list checks a list of entries, each a mapping of the keys under k. An
// entry that is not a mapping decodes as an empty one, which keeps the
// indices of the entries after it. Each entry's line is recorded under
// path[i], its fields under path[i].name and so on.
func (c *checker) list(n *yaml.Node, path string, k Key) *yaml.Node {
	fields := keyNames(Children(k.Path))
	if n.Kind != yaml.SequenceNode {
		c.problem(n, path, "must be a list of {%s} entries, not %s", strings.Join(fields, ", "), describe(n))
		return nil
	}
	out := *n
	out.Content = make([]*yaml.Node, len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		out.Content[i] = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		switch e := c.resolve(item, p); {
		case e == nil:
		case e.Kind != yaml.MappingNode:
			c.lines[p] = e.Line
			c.problem(e, p, "must be a mapping with %s, not %s", strings.Join(fields, " and "), describe(e))
		default:
			c.lines[p] = e.Line
			out.Content[i] = c.mapping(e, p, k.Path)
		}
	}
	return &out
}

// stringList checks a list of strings and returns a copy in which an
// entry that has a problem is an empty string, which keeps the indices of
// the entries after it (the validator skips the entries reported here).
// An entry's line is recorded under path[i].
func (c *checker) stringList(n *yaml.Node, path string) *yaml.Node {
	if n.Kind != yaml.SequenceNode {
		c.problem(n, path, "must be a list of strings, like [a, b], not %s", describe(n))
		return nil
	}
	out := *n
	out.Content = make([]*yaml.Node, len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		out.Content[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str"}
		e := c.resolve(item, p)
		if e == nil {
			continue
		}
		c.lines[p] = e.Line
		if !isScalar(e, "!!str", "!!int", "!!float") {
			c.problem(e, p, "must be a string, not %s", describe(e))
			continue
		}
		out.Content[i] = e
	}
	return &out
}

// stringMap checks a map whose keys the user chooses and whose values are
// strings, and returns a copy without the entries that have a problem. An
// entry's line is recorded under path[key].
func (c *checker) stringMap(n *yaml.Node, path string) *yaml.Node {
	seen := map[string]bool{}
	out := *n
	out.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := c.resolve(n.Content[i], path), c.resolve(n.Content[i+1], path)
		if k == nil || v == nil {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			c.problem(k, path, "keys must be strings, not %s", describe(k))
			continue
		}
		p := path + "[" + k.Value + "]"
		if seen[k.Value] {
			c.problem(k, p, "duplicate key")
			continue
		}
		seen[k.Value] = true
		c.lines[p] = v.Line
		if v.Kind != yaml.ScalarNode || isNull(v) {
			c.problem(v, p, "must be a string, not %s", describe(v))
			continue
		}
		out.Content = append(out.Content, k, v)
	}
	return &out
}

// jsonMap checks predictor.config, which reaches the predictor through
// JSON.
func (c *checker) jsonMap(n *yaml.Node, path string) bool {
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		c.problem(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return false
	}
	if _, err := asJSON(m, path); err != nil {
		c.problem(n, path, "%v", err)
		return false
	}
	return true
}

// asJSON returns m as the predictor's Init receives it, through JSON
// (runtime.Config), so that what a test or tool sees in the Spec is what
// the predictor sees: numbers become float64.
func asJSON(m map[string]any, path string) (map[string]any, error) {
	if err := jsonSafe(m, path); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("cannot be passed to the predictor as JSON: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("cannot be passed to the predictor as JSON: %w", err)
	}
	return out, nil
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

func isScalar(n *yaml.Node, tags ...string) bool {
	return n.Kind == yaml.ScalarNode && slices.Contains(tags, n.ShortTag())
}

func isNull(n *yaml.Node) bool { return isScalar(n, "!!null") }

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

func quoteValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		if n.ShortTag() == "!!str" {
			return strconv.Quote(n.Value)
		}
		return n.Value
	}
	return describe(n)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func keyNames(keys []Key) []string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name()
	}
	return names
}
