package wasm

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of what a guest may write through cortex.log. A guest can call
// it in a loop, and every line reaches the function's log (and its log
// bill), so lines past a call's share or the module's share of the current
// second are dropped and counted (Stats.LogDropped), and one line says how
// many, at most once a second: the first call or instantiation to end once
// one is due writes it, whoever dropped the lines (an instantiation, this
// call or calls whose summary had to wait), and Close writes what is left.
const (
	logLinesPerCall   = 100
	logBytesPerCall   = 64 << 10
	logLinesPerSecond = 1000
	logBytesPerSecond = 1 << 20
	logSummaryEvery   = time.Second
)

var logLimits = fmt.Sprintf("%d lines and %s a call, %d lines and %s a second",
	logLinesPerCall, formatBytes(logBytesPerCall), logLinesPerSecond, formatBytes(logBytesPerSecond))

// logLimiter enforces the log limits of one Module.
type logLimiter struct {
	now func() time.Time // time.Now; tests replace it

	mu            sync.Mutex
	second        int64 // the Unix second lines and bytes count
	lines, nbytes int
	// Dropped since the last summary line, and when that was.
	pendingLines, pendingBytes uint64
	lastSummary                time.Time
	// pending says pendingLines > 0, so that the end of a call finds
	// nothing to report without taking the lock.
	pending atomic.Bool

	// Totals for Stats.
	dropped, droppedBytes atomic.Uint64
}

// allow says whether a line of n bytes may be written now, counting it
// against inst's call (nil during instantiation) and the current second.
// Only the goroutine running inst touches its counters, so a guest looping
// over cortex.log past its call's share takes no lock.
func (l *logLimiter) allow(inst *instance, n uint32) bool {
	if inst != nil && (inst.logLines >= logLinesPerCall || inst.logBytes+int(n) > logBytesPerCall) {
		inst.dropLines++
		inst.dropBytes += uint64(n)
		return false
	}
	l.mu.Lock()
	if s := l.clock().Unix(); s != l.second {
		l.second, l.lines, l.nbytes = s, 0, 0
	}
	ok := l.lines < logLinesPerSecond && l.nbytes+int(n) <= logBytesPerSecond
	if ok {
		l.lines++
		l.nbytes += int(n)
	} else if inst == nil {
		l.pendingLines++
		l.pendingBytes += uint64(n)
		l.pending.Store(true)
		l.dropped.Add(1)
		l.droppedBytes.Add(uint64(n))
	}
	l.mu.Unlock()
	switch {
	case !ok && inst != nil:
		inst.dropLines++
		inst.dropBytes += uint64(n)
	case ok && inst != nil:
		inst.logLines++
		inst.logBytes += int(n)
	}
	return ok
}

// endCall adds what inst's call dropped to the totals, resets its counters
// and writes the summary line when one is due.
func (l *logLimiter) endCall(m *Module, inst *instance) {
	lines, bytes := inst.dropLines, inst.dropBytes
	inst.logLines, inst.logBytes, inst.dropLines, inst.dropBytes = 0, 0, 0, 0
	if lines > 0 {
		l.dropped.Add(lines)
		l.droppedBytes.Add(bytes)
		l.mu.Lock()
		l.pendingLines += lines
		l.pendingBytes += bytes
		l.pending.Store(true)
		l.mu.Unlock()
	}
	l.report(m, false)
}

// report writes the summary of what was dropped since the last one, if
// anything was and one is due (always, with force).
func (l *logLimiter) report(m *Module, force bool) {
	if !l.pending.Load() {
		return
	}
	l.mu.Lock()
	lines, bytes := l.pendingLines, l.pendingBytes
	now := l.clock()
	if lines == 0 || !force && now.Sub(l.lastSummary) < logSummaryEvery {
		l.mu.Unlock()
		return
	}
	l.lastSummary = now
	l.pendingLines, l.pendingBytes = 0, 0
	l.pending.Store(false)
	l.mu.Unlock()
	l.summary(m, lines, bytes)
}

// flush writes the summary of what was dropped since the last one.
func (l *logLimiter) flush(m *Module) { l.report(m, true) }

func (l *logLimiter) summary(m *Module, lines, bytes uint64) {
	m.log.Warn("wasm guest log lines dropped by the log limits",
		slog.String("wasm", m.name),
		slog.Uint64("dropped_lines", lines),
		slog.Uint64("dropped_bytes", bytes),
		slog.String("limits", logLimits))
}

func (l *logLimiter) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}
