package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Issue 18's targets.
const (
	targetRatio    = 0.9                  // served tokens/s over the model alone's
	targetOverhead = 2 * time.Millisecond // served TTFT minus the model's first step
)

// report is what a run measured; -json prints it as it is.
type report struct {
	Command    string       `json:"command"`
	Model      string       `json:"model"`
	Cortex     string       `json:"cortex,omitempty"`
	Provider   string       `json:"provider"`
	Prompt     string       `json:"prompt"`
	MaxTokens  int          `json:"max_tokens"`
	Rounds     int          `json:"rounds"`
	N          int          `json:"generations_per_path_per_round"`
	GOMAXPROCS int          `json:"gomaxprocs"`
	LoadStart  string       `json:"load_start"`
	LoadEnd    string       `json:"load_end"`
	Text       string       `json:"text"`
	Paths      []pathReport `json:"paths"`
	// Failures: every generation that failed or gave another text, by
	// path (the bench exits non-zero when there is one).
	Failures []string `json:"failures,omitempty"`
}

// pathReport is one path's figures. Times are medians over every measured
// generation; the rounds' ratios are those of each round's medians.
type pathReport struct {
	Path    string `json:"path"`
	Samples int    `json:"samples"`
	Failed  int    `json:"failed"`
	// TTFT: to the first piece of text (model alone: from the call; served:
	// from sending the request).
	TTFTMs    spread  `json:"ttft_ms"`
	FirstStep *spread `json:"first_step_ms,omitempty"` // the model's own (alone)
	// PerTokenUs: the first piece to the last over tokens - 1.
	PerTokenUs        float64 `json:"per_token_us"`
	TokensPerSec      float64 `json:"tokens_per_s"`
	WholeTokensPerSec float64 `json:"whole_call_tokens_per_s"`
	// Against the model alone, served paths only.
	Ratio                *float64  `json:"ratio_tokens_per_s,omitempty"`
	RoundRatios          []float64 `json:"round_ratios,omitempty"`
	FirstTokenOverheadMs *float64  `json:"first_token_overhead_ms,omitempty"`
	PerTokenOverheadUs   *float64  `json:"per_token_overhead_us,omitempty"`
}

// spread is a median with its range.
type spread struct {
	P50 float64 `json:"p50"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

func spreadOf(ds []time.Duration) spread {
	if len(ds) == 0 {
		return spread{}
	}
	ds = slices.Sorted(slices.Values(ds))
	return spread{P50: ms(median(ds)), Min: ms(ds[0]), Max: ms(ds[len(ds)-1])}
}

// median of sorted ds.
func median(ds []time.Duration) time.Duration {
	n := len(ds)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return ds[n/2]
	}
	return (ds[n/2-1] + ds[n/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// medians of samples' TTFT, first step and time per token.
func medians(ss []sample) (ttft, first, perToken time.Duration) {
	var t, f, p []time.Duration
	for _, s := range ss {
		t = append(t, s.TTFT)
		f = append(f, s.FirstStep)
		p = append(p, s.Decode/time.Duration(s.Tokens-1))
	}
	slices.Sort(t)
	slices.Sort(f)
	slices.Sort(p)
	return median(t), median(f), median(p)
}

// collect computes every path's figures from what was measured; paths[0]
// is the model alone.
func (r *report) collect(paths []path) {
	r.Paths, r.Failures = nil, nil
	for _, p := range paths {
		for _, f := range p.failures {
			r.Failures = append(r.Failures, short(p.name)+": "+f)
		}
	}
	var alone []sample
	for _, s := range paths[0].rounds {
		alone = append(alone, s...)
	}
	_, aloneFirst, alonePer := medians(alone)
	for _, p := range paths {
		var all []sample
		for _, s := range p.rounds {
			all = append(all, s...)
		}
		if len(all) == 0 {
			continue
		}
		ttft, _, per := medians(all)
		var ttfts, firsts []time.Duration
		var tokens int
		var whole time.Duration
		for _, s := range all {
			ttfts = append(ttfts, s.TTFT)
			firsts = append(firsts, s.FirstStep)
			tokens += s.Tokens
			whole += s.Whole
		}
		pr := pathReport{
			Path:              p.name,
			Samples:           len(all),
			Failed:            len(p.failures),
			TTFTMs:            spreadOf(ttfts),
			PerTokenUs:        us(per),
			TokensPerSec:      1 / per.Seconds(),
			WholeTokensPerSec: float64(tokens) / whole.Seconds(),
		}
		if p.name == pathAlone {
			fs := spreadOf(firsts)
			pr.FirstStep = &fs
		} else if alonePer > 0 {
			ratio := float64(alonePer) / float64(per)
			over := ms(ttft - aloneFirst)
			perOver := us(per - alonePer)
			pr.Ratio, pr.FirstTokenOverheadMs, pr.PerTokenOverheadUs = &ratio, &over, &perOver
			for i := range p.rounds {
				_, _, a := medians(paths[0].rounds[i])
				_, _, s := medians(p.rounds[i])
				if a > 0 && s > 0 {
					pr.RoundRatios = append(pr.RoundRatios, float64(a)/float64(s))
				}
			}
		}
		r.Paths = append(r.Paths, pr)
	}
}

// roundLine is round r's medians, for the progress output.
func roundLine(paths []path, r int) string {
	var parts []string
	for _, p := range paths {
		ttft, _, per := medians(p.rounds[r])
		parts = append(parts, fmt.Sprintf("%s: TTFT %.2f ms, %.0f tokens/s", short(p.name), ms(ttft), 1/per.Seconds()))
	}
	return strings.Join(parts, "; ")
}

func short(name string) string {
	switch name {
	case pathAlone:
		return "alone"
	case pathOwn:
		return "own port"
	case pathFront:
		return "front"
	}
	return name
}

func (r *report) writeText(w io.Writer) {
	fmt.Fprintf(w, "textgen: streamed generation through cortex serve against the model alone (issue 18)\n")
	fmt.Fprintf(w, "command: %s\n", r.Command)
	if r.Cortex != "" {
		fmt.Fprintf(w, "cortex: %s\n", r.Cortex)
	}
	fmt.Fprintf(w, "model: %s; ONNX Runtime on %s; GOMAXPROCS %d\n", r.Model, r.Provider, r.GOMAXPROCS)
	fmt.Fprintf(w, "generation: prompt %q, max_tokens %d, greedy; %d rounds x %d generations per path (after one unmeasured), interleaved, the order turning\n",
		r.Prompt, r.MaxTokens, r.Rounds, r.N)
	fmt.Fprintf(w, "load average: %s at the start, %s at the end\n\n", r.LoadStart, r.LoadEnd)
	fmt.Fprintln(w, "| path | time to first token, p50 (min–max) | tokens/s (time per token) | / model alone (rounds) | whole call, tokens/s | first-token overhead | per-token overhead |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	var alonePer float64
	for _, p := range r.Paths {
		ttft := fmt.Sprintf("%.2f ms (%.2f–%.2f)", p.TTFTMs.P50, p.TTFTMs.Min, p.TTFTMs.Max)
		rate := fmt.Sprintf("%.0f (%.0f µs)", p.TokensPerSec, p.PerTokenUs)
		if p.FirstStep != nil {
			alonePer = p.PerTokenUs
			ttft = fmt.Sprintf("first step %.2f ms (%.2f–%.2f); first piece %.2f ms", p.FirstStep.P50, p.FirstStep.Min, p.FirstStep.Max, p.TTFTMs.P50)
			fmt.Fprintf(w, "| %s | %s | %s | 1 | %.0f | | |\n", p.Path, ttft, rate, p.WholeTokensPerSec)
			continue
		}
		ratio, over, perOver := "n/a", "n/a", "n/a"
		if p.Ratio != nil {
			ratio = fmt.Sprintf("**%.2f** (%s)", *p.Ratio, rangeOf(p.RoundRatios))
			over = fmt.Sprintf("%+.2f ms", *p.FirstTokenOverheadMs)
			perOver = fmt.Sprintf("%+.0f µs (%+.1f%%)", *p.PerTokenOverheadUs, 100**p.PerTokenOverheadUs/alonePer)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.0f | %s | %s |\n", p.Path, ttft, rate, ratio, p.WholeTokensPerSec, over, perOver)
	}
	fmt.Fprintln(w)
	for _, p := range r.Paths {
		if p.Ratio == nil {
			continue
		}
		fmt.Fprintf(w, "%s: tokens/s %.3f of the model alone (target ≥ %.1f: %s); first-token overhead %+.2f ms (target ≤ %d ms: %s)\n",
			p.Path, *p.Ratio, targetRatio, met(*p.Ratio >= targetRatio),
			*p.FirstTokenOverheadMs, targetOverhead.Milliseconds(), met(*p.FirstTokenOverheadMs <= ms(targetOverhead)))
	}
	fmt.Fprintf(w, "text (every measured generation of every path): %q\n", r.Text)
	if len(r.Failures) > 0 {
		fmt.Fprintf(w, "\n%d generation(s) failed or gave another text, each replaced by another:\n", len(r.Failures))
		for _, f := range r.Failures {
			if i := strings.IndexByte(f, '\n'); i >= 0 {
				f = f[:i] + " ..."
			}
			fmt.Fprintf(w, "- %s\n", f)
		}
	}
}

func rangeOf(vs []float64) string {
	if len(vs) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f–%.2f", slices.Min(vs), slices.Max(vs))
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}
