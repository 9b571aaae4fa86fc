package bpe

import (
	"reflect"
	"testing"
)

// TestNextWord checks the hand-written pre-tokenizer against the splits
// GPT-2's regular expression makes.
func TestNextWord(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"words", "Hello world", []string{"Hello", " world"}},
		{"contractions", "I'm don't we'll", []string{"I", "'m", " don", "'t", " we", "'ll"}},
		{"numbers", "in 2024, 3.5", []string{"in", " 2024", ",", " 3", ".", "5"}},
		{"punctuation runs", "wait...!? ok", []string{"wait", "...!?", " ok"}},
		{"two spaces", "a  b", []string{"a", " ", " b"}},
		{"space run before a word", "a    b", []string{"a", "   ", " b"}},
		{"newlines", "a\n\nb", []string{"a", "\n", "\n", "b"}},
		{"newline before a word", "a\nb", []string{"a", "\n", "b"}},
		{"trailing spaces", "end   ", []string{"end", "   "}},
		{"tab before a word", "x\t y", []string{"x", "\t", " y"}},
		{"letters of other scripts", "naïve café Ωmega 東京", []string{"naïve", " café", " Ωmega", " 東京"}},
		{"invalid bytes are symbols", "a\xff\xfeb", []string{"a", "\xff\xfe", "b"}},
		{"space then symbol", "x !", []string{"x", " !"}},
		{"lone space", " ", []string{" "}},
		{"apostrophe not a contraction", "'hello", []string{"'", "hello"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for s := tc.in; s != ""; {
				n := nextWord(s)
				if n <= 0 {
					t.Fatalf("nextWord(%q) = %d", s, n)
				}
				got = append(got, s[:n])
				s = s[n:]
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("split %q: got %q; want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestCompleteUTF8(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", 0},
		{"abc", 3},
		{"a\xe2\x82", 1},         // "€" lacks its last byte
		{"a\xe2\x82\xac", 4},     // "€" whole
		{"\xf0\x9f\x98", 0},      // three of an emoji's four bytes
		{"\xff", 1},              // never valid: emitted
		{"ab\x82", 3},            // a stray continuation byte: emitted
		{"\xf0\x9f\x98\x80x", 5}, // emoji then ASCII
	} {
		if got := completeUTF8([]byte(tc.in)); got != tc.want {
			t.Errorf("completeUTF8(%q) = %d; want %d", tc.in, got, tc.want)
		}
	}
}
