package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Size is a number of bytes. In cortex.yaml it is a plain number of bytes or
// a number with a unit: B, K/KB/kB (1000), Ki/KiB (1024), M/MB, Mi/MiB,
// G/GB, Gi/GiB, T/TB, Ti/TiB, or any other Kubernetes quantity of whole
// bytes (1e6, 1Pi).
type Size int64

// maxSize is where resource.ParseQuantity clamps a larger value, so a size
// that reaches it is too large.
var maxSize = *resource.NewQuantity(math.MaxInt64, resource.DecimalSI)

// ParseSize parses a size such as "6MiB", "1MB", "512Ki" or "1048576".
//
// A size is read as a Kubernetes quantity (resource.ParseQuantity, as
// compute.mem is), so the two kinds of value in cortex.yaml that count
// bytes read alike. A size may also be written the way byte counts usually
// are, with a B after the unit (6MiB, 1MB, 100B) and with K for k (1K, 1KB),
// which a quantity does not take; a lower-case b or m (1mb) stays an error,
// since m is milli in a quantity.
func ParseSize(s string) (Size, error) {
	q, err := resource.ParseQuantity(asQuantity(s))
	switch {
	// A quantity may be "." (zero) or negative; a size has a digit and no sign.
	case err != nil || q.Sign() < 0 || !strings.ContainsAny(s, "0123456789"):
		return 0, fmt.Errorf("%q is not a size; use a number of bytes or a unit like 6MiB, 512Ki", s)
	case q.Cmp(maxSize) >= 0:
		return 0, fmt.Errorf("%q is too large", s)
	case q.Cmp(*resource.NewQuantity(q.Value(), resource.DecimalSI)) == 0:
		return Size(q.Value()), nil
	}
	if num, ok := strings.CutSuffix(asQuantity(s), "m"); ok {
		return 0, fmt.Errorf("%q means %s milli-bytes (the m suffix is milli); did you mean %sMi?", s, num, num)
	}
	return 0, fmt.Errorf("%q is not a whole number of bytes; use a number of bytes or a unit like 6MiB, 512Ki", s)
}

// asQuantity turns the byte spellings a quantity lacks into its own:
// "6MiB" into "6Mi", "1KB" into "1k".
func asQuantity(s string) string {
	s = strings.TrimSuffix(s, "B")
	if k, ok := strings.CutSuffix(s, "K"); ok {
		return k + "k"
	}
	return s
}

// UnmarshalYAML reads a size written as a number of bytes (max_body:
// 1048576) or as ParseSize takes it (max_body: 1MiB).
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!int":
			var v int64
			if err := n.Decode(&v); err == nil {
				*s = Size(v)
				return nil
			}
		case "!!str", "!!float": // 1e6 is a float in YAML and a quantity
			v, err := ParseSize(n.Value)
			if err != nil {
				return err
			}
			*s = v
			return nil
		}
	}
	return fmt.Errorf("%s is not a size; use a number of bytes or a unit like 6MiB, 512Ki", quoteValue(n))
}

// String formats s with the largest binary unit that divides it exactly
// ("6MiB", "512KiB") and as plain bytes otherwise. It is not a quantity's
// String, which writes 1000 as "1k" and 6MiB as "6Mi": messages and the
// reference write sizes as a user of cortex.yaml reads them.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}
