package supervisor

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestPrefixWriter(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	tests := []struct {
		name   string
		writes []string
		want   string // the output after flush
	}{
		{"whole lines", []string{"a\nb\n"}, "[f] a\n[f] b\n"},
		{"a line in pieces", []string{"he", "llo", "\n"}, "[f] hello\n"},
		{"CRLF", []string{"a\r\n"}, "[f] a\n"},
		{"empty line", []string{"\n"}, "[f] \n"},
		{"last line without newline, flushed", []string{"a\nend"}, "[f] a\n[f] end\n"},
		// A process that writes no newline does not grow the buffer past
		// maxLine: what it has is written as a line of its own.
		{"no newline past maxLine", []string{long, "end\n"}, "[f] " + long + "\n[f] end\n"},
		{"a long line in one write stays whole", []string{long + "\n"}, "[f] " + long + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := newPrefixWriter(NewOutput(&buf), "[f] ", 0)
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			w.flush()
			if got := buf.String(); got != tt.want {
				t.Errorf("output %s, want %s", short(got), short(tt.want))
			}
		})
	}
}

func TestPrefixWriterTail(t *testing.T) {
	w := newPrefixWriter(NewOutput(nil), "", 3)
	fmt.Fprintf(w, "1\n2\n3\n4\n%s\n", strings.Repeat("y", maxTailLine+1))
	want := "3\n4\n" + strings.Repeat("y", maxTailLine) + "..."
	if got := w.tailText(); got != want {
		t.Errorf("tail %q, want the last 3 lines, the long one cut: %q", got, want)
	}
	none := newPrefixWriter(NewOutput(nil), "", 0)
	none.Write([]byte("a\n"))
	if got := none.tailText(); got != "" {
		t.Errorf("a writer that keeps no tail has %q", got)
	}
}

// Lines of several processes sharing one Output never mix.
func TestOutputKeepsLinesWhole(t *testing.T) {
	var buf bytes.Buffer
	out := NewOutput(&buf)
	const writers, lines = 4, 200
	var wg sync.WaitGroup
	for i := range writers {
		w := newPrefixWriter(out, fmt.Sprintf("[%d] ", i), 0)
		wg.Go(func() {
			for range lines {
				// One line in three writes, so an unserialised Output
				// would interleave them.
				w.Write([]byte("abc"))
				w.Write([]byte("def"))
				w.Write([]byte("ghi\n"))
			}
		})
	}
	wg.Wait()
	got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	for _, l := range got {
		if _, rest, ok := strings.Cut(l, "] "); !ok || rest != "abcdefghi" {
			t.Fatalf("mixed line %q", l)
		}
	}
}

// short quotes s, cut in the middle when long.
func short(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%q...(%d bytes)...%q", s[:30], len(s), s[len(s)-30:])
	}
	return fmt.Sprintf("%q", s)
}
