package batch

// A scanner of just enough JSON to find the tensors' data in an OIP
// request or response without decoding it: encoding/json spends most of
// a small row's time on its data's numbers, which a packed request only
// copies. The rest of the document, its skeleton (with each data replaced
// by a placeholder), is small and decoded as usual, once for rows whose
// skeletons are the same bytes.

// dataPlaceholder stands for a tensor's data in a skeleton: no valid OIP
// tensor has a number as its data, so a decoded skeleton tells a
// placeholder from data the scan did not find.
const dataPlaceholder = "0"

// skeleton returns b, a valid JSON object, with the value of "data" in
// each object of its top-level array key replaced by dataPlaceholder, and
// the data's spans in b, in order. ok is false when b is not an object.
func skeleton(b []byte, key string, dst []byte, spans [][2]int) (skel []byte, _ [][2]int, ok bool) {
	i := ws(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, nil, false
	}
	last := 0
	i++
	for {
		i = ws(b, i)
		if i < len(b) && b[i] == '}' {
			break
		}
		if i >= len(b) || b[i] != '"' {
			return nil, nil, false
		}
		k0 := i
		if i = skipString(b, i); i < 0 {
			return nil, nil, false
		}
		name := b[k0+1 : i-1]
		i = ws(b, i)
		if i >= len(b) || b[i] != ':' {
			return nil, nil, false
		}
		i = ws(b, i+1)
		if string(name) == key && i < len(b) && b[i] == '[' {
			// The tensors: an array of objects.
			i++
			for {
				i = ws(b, i)
				if i < len(b) && b[i] == ']' {
					i++
					break
				}
				if i >= len(b) || b[i] != '{' {
					return nil, nil, false
				}
				i++
				for {
					i = ws(b, i)
					if i < len(b) && b[i] == '}' {
						i++
						break
					}
					if i >= len(b) || b[i] != '"' {
						return nil, nil, false
					}
					t0 := i
					if i = skipString(b, i); i < 0 {
						return nil, nil, false
					}
					tname := b[t0+1 : i-1]
					i = ws(b, i)
					if i >= len(b) || b[i] != ':' {
						return nil, nil, false
					}
					i = ws(b, i+1)
					v0 := i
					i = skipValue(b, i)
					if i < 0 {
						return nil, nil, false
					}
					if string(tname) == "data" {
						dst = append(dst, b[last:v0]...)
						dst = append(dst, dataPlaceholder...)
						last = i
						spans = append(spans, [2]int{v0, i})
					}
					i = ws(b, i)
					if i < len(b) && b[i] == ',' {
						i++
					}
				}
				i = ws(b, i)
				if i < len(b) && b[i] == ',' {
					i++
				}
			}
		} else if i = skipValue(b, i); i < 0 {
			return nil, nil, false
		}
		i = ws(b, i)
		if i < len(b) && b[i] == ',' {
			i++
		}
	}
	return append(dst, b[last:]...), spans, true
}

func ws(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i], or
// -1 when it does not end.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the value that starts at b[i], or -1.
// b is valid JSON (the input's lines are checked, answers decoded after).
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				if i = skipString(b, i) - 1; i < 0 {
					return -1
				}
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	default:
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
		}
		return i
	}
}
