package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Size is a number of bytes. In cortex.yaml it is a plain number of bytes or
// a number with a unit: B, K/KB/kB (1000), Ki/KiB (1024), M/MB, Mi/MiB,
// G/GB, Gi/GiB, T/TB, Ti/TiB.
type Size int64

var sizeUnits = map[string]float64{
	"": 1, "B": 1,
	"K": 1e3, "k": 1e3, "KB": 1e3, "kB": 1e3, "Ki": 1 << 10, "KiB": 1 << 10,
	"M": 1e6, "MB": 1e6, "Mi": 1 << 20, "MiB": 1 << 20,
	"G": 1e9, "GB": 1e9, "Gi": 1 << 30, "GiB": 1 << 30,
	"T": 1e12, "TB": 1e12, "Ti": 1 << 40, "TiB": 1 << 40,
}

// ParseSize parses a size such as "6MiB", "1MB", "512Ki" or "1048576".
func ParseSize(s string) (Size, error) {
	num, unit := splitNumber(s)
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("%q is not a size; use a number of bytes or a unit like 6MiB, 512Ki", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size; use a number of bytes or a unit like 6MiB, 512Ki", s)
	}
	v := f * mult
	if v >= math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return Size(v), nil
}

// String formats s with the largest binary unit that divides it exactly
// ("6MiB", "512KiB") and as plain bytes otherwise.
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

// splitNumber splits "512Mi" into "512" and "Mi". The number is an unsigned
// decimal with an optional fraction; anything after it is the unit.
func splitNumber(s string) (num, unit string) {
	i := 0
	dot := false
	for i < len(s) {
		c := s[i]
		if c >= '0' && c <= '9' {
			i++
			continue
		}
		if c == '.' && !dot {
			dot = true
			i++
			continue
		}
		break
	}
	num = s[:i]
	if num == "." {
		num = ""
	}
	return num, s[i:]
}

var quantitySuffixes = map[string]float64{
	"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
	"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60,
}

// parseQuantity parses a Kubernetes resource quantity ("500m", "1", "0.5",
// "512Mi", "1e3") and returns its value. It accepts what
// k8s.io/apimachinery's resource.ParseQuantity accepts for non-negative
// values, without importing it: a function binary's spec code stays light.
func parseQuantity(s string) (float64, error) {
	body := strings.TrimPrefix(s, "+")
	num, suffix := splitNumber(body)
	if num == "" || strings.HasSuffix(num, ".") && len(num) == 1 {
		return 0, fmt.Errorf("not a number")
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	if mult, ok := quantitySuffixes[suffix]; ok {
		return f * mult, nil
	}
	if len(suffix) > 1 && (suffix[0] == 'e' || suffix[0] == 'E') {
		exp, err := strconv.Atoi(suffix[1:])
		if err == nil && exp > -30 && exp < 30 {
			return f * math.Pow10(exp), nil
		}
	}
	return 0, fmt.Errorf("unknown suffix %q", suffix)
}
