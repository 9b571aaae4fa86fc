// Package bpe is GPT-2's byte-level BPE tokenizer, read from a model's own
// vocab.json and merges.txt.
//
// Why our own and not a library: the Go tokenizer libraries either embed
// one fixed vocabulary (tiktoken ports) or bring a large dependency tree
// (Hugging Face tokenizers ports) for what is, for GPT-2, three small steps:
//
//  1. pre-tokenize: split the text into words, numbers, punctuation runs
//     and whitespace with GPT-2's pattern (hand-written below, as Go's
//     regexp has no look-ahead);
//  2. map each word's bytes to printable runes (bytes_to_unicode), so
//     every byte, valid UTF-8 or not, has a symbol;
//  3. merge adjacent symbols, lowest merge rank first, until no merge
//     applies, and look the symbols up in the vocabulary.
//
// Decoding inverts step 2, so Encode then Decode gives back the input
// bytes exactly. A token may end in the middle of a UTF-8 character;
// Stream holds such bytes back until the character is complete.
package bpe

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// EndOfText is GPT-2's end-of-text token, also its start token.
const EndOfText = "<|endoftext|>"

// Tokenizer encodes text to token ids and back. It is safe for concurrent
// use.
type Tokenizer struct {
	vocab   map[string]int
	tokens  [][]byte // id -> the token's bytes
	ranks   map[pair]int
	special map[string]int // tokens written as text, never merged: <|endoftext|>

	mu    sync.Mutex
	cache map[string][]int // a word's ids; bounded by cacheSize
}

type pair struct{ a, b string }

// cacheSize bounds the per-word cache; past it the cache starts afresh.
const cacheSize = 1 << 16

// Load reads vocab.json (token -> id) and merges.txt (one "a b" merge per
// line, highest priority first, an optional "#version" line on top).
func Load(vocabPath, mergesPath string) (*Tokenizer, error) {
	vf, err := os.Open(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("bpe: %w", err)
	}
	defer vf.Close()
	mf, err := os.Open(mergesPath)
	if err != nil {
		return nil, fmt.Errorf("bpe: %w", err)
	}
	defer mf.Close()
	return Read(vf, mf)
}

// Read is Load from readers.
func Read(vocab, merges io.Reader) (*Tokenizer, error) {
	var v map[string]int
	if err := json.NewDecoder(vocab).Decode(&v); err != nil {
		return nil, fmt.Errorf("bpe: reading the vocabulary: %w", err)
	}
	if len(v) == 0 {
		return nil, errors.New("bpe: the vocabulary is empty")
	}
	t := &Tokenizer{vocab: v, ranks: map[pair]int{}, special: map[string]int{}, cache: map[string][]int{}}
	maxID := -1
	for _, id := range v {
		if id < 0 {
			return nil, fmt.Errorf("bpe: the vocabulary has a negative id %d", id)
		}
		maxID = max(maxID, id)
	}
	t.tokens = make([][]byte, maxID+1)
	for tok, id := range v {
		if t.tokens[id] != nil {
			return nil, fmt.Errorf("bpe: the vocabulary gives id %d twice", id)
		}
		if strings.HasPrefix(tok, "<|") && strings.HasSuffix(tok, "|>") {
			t.special[tok] = id
			t.tokens[id] = []byte(tok)
			continue
		}
		b, err := unmapBytes(tok)
		if err != nil {
			return nil, fmt.Errorf("bpe: vocabulary token %q: %w", tok, err)
		}
		t.tokens[id] = b
	}
	// Every byte must have a token, or some text could not be encoded.
	for b := range 256 {
		if _, ok := v[string(byteRune[b])]; !ok {
			return nil, fmt.Errorf("bpe: the vocabulary lacks the byte %#02x (%q): it is not a byte-level BPE vocabulary", b, byteRune[b])
		}
	}
	sc := bufio.NewScanner(merges)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		if strings.HasPrefix(s, "#") || strings.TrimSpace(s) == "" {
			continue
		}
		a, b, ok := strings.Cut(s, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("bpe: merges line %d: %q is not two symbols", line, s)
		}
		p := pair{a, b}
		if _, dup := t.ranks[p]; !dup {
			t.ranks[p] = len(t.ranks)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bpe: reading the merges: %w", err)
	}
	return t, nil
}

// VocabSize returns one more than the largest token id.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// ID returns a token's id (a special token such as EndOfText, or a token
// written in the vocabulary's byte-mapped form).
func (t *Tokenizer) ID(token string) (int, bool) {
	id, ok := t.vocab[token]
	return id, ok
}

// Encode returns the token ids of text. Special tokens written in the text
// (<|endoftext|>) become their ids; everything else, invalid UTF-8
// included, is encoded byte for byte.
func (t *Tokenizer) Encode(text string) []int {
	var ids []int
	for text != "" {
		// The earliest special token splits the text.
		at, tok := -1, ""
		for s := range t.special {
			if i := strings.Index(text, s); i >= 0 && (at < 0 || i < at || (i == at && len(s) > len(tok))) {
				at, tok = i, s
			}
		}
		if at < 0 {
			return t.encodeOrdinary(ids, text)
		}
		ids = t.encodeOrdinary(ids, text[:at])
		ids = append(ids, t.special[tok])
		text = text[at+len(tok):]
	}
	return ids
}

func (t *Tokenizer) encodeOrdinary(ids []int, text string) []int {
	for text != "" {
		n := nextWord(text)
		ids = append(ids, t.word(text[:n])...)
		text = text[n:]
	}
	return ids
}

// word returns the ids of one pre-tokenized word.
func (t *Tokenizer) word(w string) []int {
	t.mu.Lock()
	ids, ok := t.cache[w]
	t.mu.Unlock()
	if ok {
		return ids
	}
	syms := make([]string, len(w))
	for i := range len(w) {
		syms[i] = string(byteRune[w[i]])
	}
	for len(syms) > 1 {
		best, at := -1, -1
		for i := range len(syms) - 1 {
			if r, ok := t.ranks[pair{syms[i], syms[i+1]}]; ok && (best < 0 || r < best) {
				best, at = r, i
			}
		}
		if at < 0 {
			break
		}
		a, b := syms[at], syms[at+1]
		out := syms[:0:0]
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == a && syms[i+1] == b {
				out = append(out, a+b)
				i++
				continue
			}
			out = append(out, syms[i])
		}
		syms = out
	}
	ids = make([]int, 0, len(syms))
	for _, s := range syms {
		id, ok := t.vocab[s]
		if !ok {
			// A merge result missing from the vocabulary: fall back to its
			// bytes, which Read checked are all there.
			for _, r := range s {
				ids = append(ids, t.vocab[string(r)])
			}
			continue
		}
		ids = append(ids, id)
	}
	t.mu.Lock()
	if len(t.cache) >= cacheSize {
		t.cache = map[string][]int{}
	}
	t.cache[w] = ids
	t.mu.Unlock()
	return ids
}

// Bytes returns the bytes a token stands for (nil for an unknown id).
func (t *Tokenizer) Bytes(id int) []byte {
	if id < 0 || id >= len(t.tokens) {
		return nil
	}
	return t.tokens[id]
}

// Decode returns the text of ids. It is the exact inverse of Encode, so the
// result may hold invalid UTF-8 when ids end inside a character.
func (t *Tokenizer) Decode(ids []int) string {
	var b []byte
	for _, id := range ids {
		b = append(b, t.Bytes(id)...)
	}
	return string(b)
}

// Stream decodes tokens one at a time into text that is whole UTF-8: the
// bytes of a character split across tokens are held back until its last
// byte arrives. The zero value is not usable; use Tokenizer.Stream.
type Stream struct {
	t       *Tokenizer
	pending []byte
}

// Stream returns a decoder for one sequence of tokens.
func (t *Tokenizer) Stream() *Stream { return &Stream{t: t} }

// Next adds a token and returns the text that became complete ("" while a
// character is still split).
func (s *Stream) Next(id int) string {
	s.pending = append(s.pending, s.t.Bytes(id)...)
	n := completeUTF8(s.pending)
	out := string(s.pending[:n])
	s.pending = append(s.pending[:0], s.pending[n:]...)
	return out
}

// Flush returns the bytes held back (an incomplete character at the end of
// the sequence) and empties the decoder.
func (s *Stream) Flush() string {
	out := string(s.pending)
	s.pending = s.pending[:0]
	return out
}

// completeUTF8 returns how many leading bytes of b can be emitted: all of
// them but a trailing, incomplete (yet possibly valid) UTF-8 sequence.
// Invalid bytes that no later byte can complete are emitted as they are.
func completeUTF8(b []byte) int {
	// A UTF-8 sequence is at most 4 bytes: only the last 3 can be the
	// start of an unfinished one.
	for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
		c := b[i]
		if c < utf8.RuneSelf {
			return len(b)
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			return len(b)
		}
	}
	return len(b)
}

// nextWord returns the length of the first word of s under GPT-2's
// pre-tokenizer pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// tried alternative by alternative at the start of s, as the regex engine
// does. An invalid UTF-8 byte counts as a symbol ([^\s\p{L}\p{N}]).
func nextWord(s string) int {
	for _, c := range [...]string{"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"} {
		if strings.HasPrefix(s, c) {
			return len(c)
		}
	}
	start := 0
	if s[0] == ' ' && len(s) > 1 {
		start = 1
	}
	r, _ := utf8.DecodeRuneInString(s[start:])
	var class func(rune, int) bool
	switch {
	case unicode.IsLetter(r):
		class = func(r rune, _ int) bool { return unicode.IsLetter(r) }
	case unicode.IsNumber(r):
		class = func(r rune, _ int) bool { return unicode.IsNumber(r) }
	case !isSpace(r):
		class = func(r rune, _ int) bool { return !isSpace(r) && !unicode.IsLetter(r) && !unicode.IsNumber(r) }
	}
	if class != nil {
		n := start
		for n < len(s) {
			r, size := utf8.DecodeRuneInString(s[n:])
			if !class(r, size) {
				break
			}
			n += size
		}
		return n
	}
	// Whitespace: the whole run when it ends the text; else all of it but
	// its last character, which then prefixes the next word (\s+(?!\S));
	// a single whitespace character before a word stands alone (\s+).
	n, last := 0, 0
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		if !isSpace(r) {
			break
		}
		last = size
		n += size
	}
	if n < len(s) && n > last {
		return n - last
	}
	return n
}

// isSpace is \s of the regex module GPT-2's tokenizers use: Unicode white
// space, and the ASCII separators U+001C-U+001F.
func isSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// byteRune is GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for
// themselves, the others for runes from U+0100 on, in byte order.
var byteRune [256]rune

// runeByte inverts byteRune.
var runeByte = map[rune]byte{}

func init() {
	n := 0
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			byteRune[b] = rune(b)
		} else {
			byteRune[b] = rune(256 + n)
			n++
		}
		runeByte[byteRune[b]] = byte(b)
	}
}

// unmapBytes turns a vocabulary token back into the bytes it stands for.
func unmapBytes(tok string) ([]byte, error) {
	b := make([]byte, 0, len(tok))
	for _, r := range tok {
		c, ok := runeByte[r]
		if !ok {
			return nil, fmt.Errorf("rune %q stands for no byte", r)
		}
		b = append(b, c)
	}
	return b, nil
}
