package supervisor

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

const (
	stderrTailLines = 10
	maxLine         = 64 << 10 // a longer line is written in pieces
	maxTailLine     = 512
)

// Output is where processes' output goes: whole lines, each written with
// one Write, serialised, so that lines of processes sharing an Output never
// mix. Give every process of a host the same Output.
type Output struct {
	mu sync.Mutex
	w  io.Writer
}

// NewOutput returns an Output that writes to w; nil discards.
func NewOutput(w io.Writer) *Output {
	if w == nil {
		w = io.Discard
	}
	return &Output{w: w}
}

func (o *Output) writeLine(prefix, line []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	buf := make([]byte, 0, len(prefix)+len(line)+1)
	buf = append(append(append(buf, prefix...), line...), '\n')
	_, _ = o.w.Write(buf)
}

// prefixWriter writes a process's output line by line with a prefix in
// front, keeping the last few lines when asked (for stderr). A line longer
// than maxLine is written in pieces rather than held: a process that never
// writes a newline must not grow the CLI's memory.
type prefixWriter struct {
	out    *Output
	prefix []byte

	mu   sync.Mutex
	buf  []byte
	tail []string
	keep int
	// watch, when set, sees every line (see Config.Watch).
	watch func(line []byte)
}

func newPrefixWriter(out *Output, prefix string, keep int) *prefixWriter {
	return &prefixWriter{out: out, prefix: []byte(prefix), keep: keep}
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) >= maxLine {
				w.lineLocked(w.buf)
				w.buf = w.buf[:0]
			}
			break
		}
		w.lineLocked(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) == 0 {
		w.buf = nil // let a large buffer go
	}
	return len(b), nil
}

func (w *prefixWriter) lineLocked(line []byte) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	w.out.writeLine(w.prefix, line)
	if w.watch != nil {
		w.watch(line)
	}
	if w.keep > 0 {
		s := string(line)
		if len(s) > maxTailLine {
			s = s[:maxTailLine] + "..."
		}
		if len(w.tail) == w.keep {
			w.tail = append(w.tail[:0], w.tail[1:]...)
		}
		w.tail = append(w.tail, s)
	}
}

// flush writes a last line that had no newline.
func (w *prefixWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.lineLocked(w.buf)
		w.buf = nil
	}
}

func (w *prefixWriter) tailText() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.tail, "\n")
}
