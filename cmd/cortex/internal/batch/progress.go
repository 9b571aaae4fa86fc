package batch

import (
	"fmt"
	"io"
	"time"
)

// progress prints how far a job is: on a terminal one line rewritten in
// place four times a second, else a plain line every ProgressEvery.
type progress struct {
	w        io.Writer
	terminal bool
	every    time.Duration
	total    int
	first    int // committed when this run started
	start    time.Time
	printed  bool
}

func newProgress(o Options, total, first int) *progress {
	p := &progress{w: o.Progress, terminal: o.Terminal, every: o.ProgressEvery, total: total, first: first, start: time.Now()}
	if p.terminal {
		p.every = 250 * time.Millisecond
	}
	return p
}

// print prints the line for c; last is the run's end.
func (p *progress) print(c checkpoint, last bool) {
	if p.w == io.Discard {
		return
	}
	if last && !p.printed && !p.terminal {
		return // a run too short for a progress line: the summary says it all
	}
	elapsed := time.Since(p.start)
	rate := float64(c.next-p.first) / elapsed.Seconds()
	eta := "-"
	if rate > 0 && c.next < p.total {
		eta = (time.Duration(float64(p.total-c.next) / rate * float64(time.Second))).Round(time.Second).String()
	}
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(c.next) / float64(p.total)
	}
	line := fmt.Sprintf("%d/%d (%.1f%%)  %.0f items/s  ETA %s  %d failed", c.next, p.total, pct, rate, eta, c.failed)
	if p.terminal {
		end := ""
		if last {
			end = "\n"
		}
		fmt.Fprintf(p.w, "\r\033[K%s%s", line, end)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.printed = true
}
