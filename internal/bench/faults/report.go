package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cortexfn/cortex/internal/bench/load"
	"github.com/cortexfn/cortex/runtime/host"
)

type report struct {
	s                  settings
	load               *loadResult
	loadStart, loadEnd time.Time
	health, status     pollResult
	final              host.FunctionStatus
	finalErr           error
	runaways           map[int]bool // processes that logged a runaway
	events             []frontLine
	settled            bool
	samples            samples
	procCounts         map[int]procCounts
	stopErr            error
}

// print writes the figures and the checks, and returns how many checks
// failed.
func (r report) print(w io.Writer) int {
	s, l := r.s, r.load
	fmt.Fprintf(w, "function %q through the host: capacity %d (max_scale %d x max_concurrency %d + max_queue %d), %d clients (2x), "+
		"limits.timeout %s, overrun_grace %s, max_body %d KiB; 1 request in %d hostile, 1 prediction in %d runs away; %s, loopback\n",
		fnName, s.capacity(), s.maxScale, s.concurrency, s.maxQueue, l.clients, s.timeout, s.grace, s.maxBody>>10,
		s.hostileEvery, s.runawayEvery, l.elapsed.Round(10*time.Millisecond))
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "  %-58s %s\n", k, fmt.Sprintf(format, args...)) }

	for _, c := range classes {
		t := l.tallies[c]
		fmt.Fprintf(w, "%s: %d\n", c, t.n)
		kinds := slices.Collect(maps.Keys(t.kinds))
		slices.SortFunc(kinds, func(a, b string) int { return cmp.Or(cmp.Compare(t.kinds[b], t.kinds[a]), strings.Compare(a, b)) })
		for _, k := range kinds {
			row(k, "%d (%.1f%%)", t.kinds[k], 100*float64(t.kinds[k])/float64(max(t.n, 1)))
		}
	}
	secs := l.elapsed.Seconds()
	fmt.Fprintln(w, "figures:")
	row("accepted 200s per second", "%.0f", float64(l.accepted.N)/secs)
	row("accepted 200 latency p50 / p99", "%s / %s", l.accepted.Pct(50), l.accepted.Pct(99))
	served := 0
	l.servedBy.Range(func(_, _ any) bool { served++; return true })
	row("processes that answered accepted requests", "%d", served)
	if l.slowMax > 0 {
		row("slow headers: ended by the front after", "%s to %s (ReadHeaderTimeout %s)",
			l.slowMin.Round(time.Millisecond), l.slowMax.Round(time.Millisecond), frontHeaderTimeout)
	}

	counts := map[string]int{}
	replacedPIDs := map[int]bool{}
	for _, e := range r.events {
		counts[e.Type]++
		if host.EventType(e.Type) == host.EventReplace {
			replacedPIDs[e.PID] = true
		}
	}
	f := r.final
	row("runaway episodes (processes that logged a runaway)", "%d", len(r.runaways))
	row("/-/status: replaced / crashes / start failures", "%d / %d / %d", f.Replaced, f.Crashes, f.StartFailures)
	row("/-/status: cold starts / scale-ups", "%d / %d", f.ColdStarts, f.ScaleUps)
	row("events: start / ready / replace / crash / start_failed / drain / exit", "%d / %d / %d / %d / %d / %d / %d",
		counts["start"], counts["ready"], counts["replace"], counts["crash"], counts["start_failed"], counts["drain"], counts["exit"])
	var own procCounts
	for _, c := range r.procCounts {
		own.answers504 += c.answers504
		own.queueTimeouts += c.queueTimeouts
		own.maxOverrun = max(own.maxOverrun, c.maxOverrun)
	}
	row("processes' own counts (last scrape, a lower bound)", "%d answered 504; %d waited in the queue until their deadline and were refused (503)", own.answers504, own.queueTimeouts)
	row("most predictions overrunning at once in a process", "%d", own.maxOverrun)
	row("/faults/healthz through the front (every 100ms)", "%d polls, %d failures, max %s", r.health.n, r.health.failures, r.health.max.Round(time.Millisecond))
	for _, k := range sortedKinds(r.health.kinds) {
		row("  "+k, "%d", r.health.kinds[k])
	}
	row("/-/status (every 250ms)", "%d polls, %d failures, max %s", r.status.n, r.status.failures, r.status.max.Round(time.Millisecond))
	row("most processes at once / most requests queued in the host", "%d / %d", r.status.maxProcs, r.status.maxQueued)

	hostMem := r.memory(func(x rssSample) bool { return x.role == roleHost })
	fnMem := r.memory(func(x rssSample) bool { return x.role == roleFunction })
	slow := r.thirds(r.samples.slow)
	row("slow-headers connections open, mean by third of the load", "%d / %d / %d (max %d)", slow[0], slow[1], slow[2], r.maxSlowOpen())
	row("host RSS start / peak / end", "%s / %s / %s", mib(hostMem.start), mib(hostMem.peak), mib(hostMem.end))
	row("host RSS mean by third of the load", "%s / %s / %s", mib(hostMem.third[0]), mib(hostMem.third[1]), mib(hostMem.third[2]))
	row("host RSS, last third - first / - middle", "%s / %s", dmib(hostMem.third[2]-hostMem.third[0]), dmib(hostMem.third[2]-hostMem.third[1]))
	row("function processes sampled", "%d", fnMem.procs)
	row("function RSS start / peak / end (per process, mean of firsts/lasts)", "%s / %s / %s", mib(fnMem.start), mib(fnMem.peak), mib(fnMem.end))
	row("function RSS mean by third of the load", "%s / %s / %s", mib(fnMem.third[0]), mib(fnMem.third[1]), mib(fnMem.third[2]))
	stopped := "clean"
	if r.stopErr != nil {
		stopped = r.stopErr.Error()
	}
	row("front on SIGTERM", "%s", stopped)

	checks := load.NewChecks(w)
	check := checks.Check
	fmt.Fprintln(w)
	t := l.tallies
	check(t[classAccepted].count("200, correct") > 0 && t[classAccepted].failed == 0,
		"every accepted request answered 200 with a correct body or 503 with Retry-After")
	check(t[classAccepted].count("503 + Retry-After: host at capacity") > 0, "the load did exceed capacity (the host refused some)")
	check(t[classRunaway].count("504") > 0 && t[classRunaway].failed == 0, "every runaway caller got 504 (or 503 with Retry-After before it ran)")
	check(t[classOversized].count("413") > 0 && t[classOversized].failed == 0, "every oversized chunked body got 413 (or 503 with Retry-After at capacity)")
	check(t[classTruncated].count("400") > 0 && t[classTruncated].failed == 0, "every truncated JSON body got 400 (or 503 with Retry-After at capacity)")
	check(t[classCut].n > 0 && t[classCut].failed == 0, "every body cut short got 400 (or 503 with Retry-After at capacity)")
	check(t[classSlow].n > 0 && t[classSlow].failed == 0 && l.slowMax <= frontHeaderTimeout+2*time.Second,
		"every slow-headers client was cut off by the front (closed, or 408) within its header timeout")
	check(r.status.n > 0 && r.status.failures == 0, "/-/status answered 200 every time")
	check(r.health.kinds["200"] > 0 && r.health.failures == 0, "/healthz through the front always answered: 200, or 503 with a reason")
	check(r.settled && r.finalErr == nil, "every process that had a runaway exited before the end (final /-/status read)")
	check(len(r.runaways) > 0 && f.Replaced == int64(len(r.runaways)) && maps.Equal(replacedPIDs, r.runaways),
		fmt.Sprintf("each runaway episode replaced its process: %d episodes, %d replaced, the same processes", len(r.runaways), f.Replaced))
	check(f.Crashes == 0 && counts["crash"] == 0 && f.StartFailures == 0 && counts["start_failed"] == 0, "no crash and no failed start")
	check(hostMem.n > 0 && hostMem.peak <= s.hostPeakLimit && hostMem.third[2]-hostMem.third[1] <= s.growthLimit,
		fmt.Sprintf("host memory bounded: peak under %s, last third - middle third <= %s (see the doc comment for why not the first)",
			mib(s.hostPeakLimit), mib(s.growthLimit)))
	check(fnMem.procs > 0 && fnMem.peak <= s.fnPeakLimit && fnMem.third[2]-fnMem.third[0] <= s.growthLimit,
		fmt.Sprintf("function memory bounded: every process under %s, last third - first third <= %s", mib(s.fnPeakLimit), mib(s.growthLimit)))
	check(r.stopErr == nil, "the front drained and exited cleanly on SIGTERM")
	for _, c := range classes {
		if ex := t[c].example; ex != "" {
			fmt.Fprintf(w, "first failure, %s: %s\n", c, ex)
		}
	}
	if r.health.example != "" {
		fmt.Fprintf(w, "first /healthz failure: %s\n", r.health.example)
	}
	if r.status.example != "" {
		fmt.Fprintf(w, "first /-/status failure: %s\n", r.status.example)
	}
	if r.finalErr != nil {
		fmt.Fprintf(w, "final /-/status: %v\n", r.finalErr)
	}
	return checks.Failed
}

func sortedKinds(m map[string]int) []string {
	ks := slices.Collect(maps.Keys(m))
	sort.Strings(ks)
	return ks
}

// memory sums up the samples of some processes.
type memory struct {
	n                int
	procs            int
	start, peak, end int64    // start and end: mean of each process's first and last sample
	third            [3]int64 // mean over each third of the load
}

// third is which third of the load t falls in, or -1 outside it.
func (r report) third(t time.Time) int {
	if t.Before(r.loadStart) || !t.Before(r.loadEnd) {
		return -1
	}
	return min(int(3*t.Sub(r.loadStart)/r.loadEnd.Sub(r.loadStart)), 2)
}

func (r report) memory(keep func(rssSample) bool) memory {
	var m memory
	firsts, lasts := map[int]int64{}, map[int]int64{}
	var sum, n [3]int64
	for _, x := range r.samples.rss {
		if !keep(x) {
			continue
		}
		m.n++
		if _, ok := firsts[x.pid]; !ok {
			firsts[x.pid] = x.rss
		}
		lasts[x.pid] = x.rss
		m.peak = max(m.peak, x.rss)
		if i := r.third(x.at); i >= 0 {
			sum[i], n[i] = sum[i]+x.rss, n[i]+1
		}
	}
	m.procs = len(firsts)
	m.start, m.end = mean(firsts), mean(lasts)
	for i := range m.third {
		if n[i] > 0 {
			m.third[i] = sum[i] / n[i]
		}
	}
	return m
}

// thirds is the mean of a count over each third of the load.
func (r report) thirds(g []gaugeSample) [3]int64 {
	var sum, n, out [3]int64
	for _, x := range g {
		if i := r.third(x.at); i >= 0 {
			sum[i], n[i] = sum[i]+x.n, n[i]+1
		}
	}
	for i := range out {
		if n[i] > 0 {
			out[i] = sum[i] / n[i]
		}
	}
	return out
}

func (r report) maxSlowOpen() int64 {
	var m int64
	for _, x := range r.samples.slow {
		m = max(m, x.n)
	}
	return m
}

func mean(m map[int]int64) int64 {
	if len(m) == 0 {
		return 0
	}
	var sum int64
	for _, v := range m {
		sum += v
	}
	return sum / int64(len(m))
}

func mib(b int64) string  { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func dmib(b int64) string { return fmt.Sprintf("%+.1f MiB", float64(b)/(1<<20)) }
