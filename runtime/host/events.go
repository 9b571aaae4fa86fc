package host

import "time"

// EventType names what happened to a process.
type EventType string

// Every process has one EventStart (it was spawned) and exactly one of
// EventStartFailed, EventCrash, EventReplace or EventExit when it is gone.
// A start that could not even spawn has only EventStartFailed, with no PID.
const (
	EventStart       EventType = "start"        // spawned; PID set
	EventReady       EventType = "ready"        // answered /readyz; Duration is the cold start
	EventStartFailed EventType = "start_failed" // gone before ready; Err says why
	EventCrash       EventType = "crash"        // a ready process exited or was killed as hung
	EventReplace     EventType = "replace"      // a process exited with status 75 to be replaced: not a crash
	EventDrain       EventType = "drain"        // told to stop (scale-down, replacement or shutdown)
	EventExit        EventType = "exit"         // exited after a drain
)

// Event is something that happened to one of a function's processes.
type Event struct {
	Time     time.Time
	Function string
	Type     EventType
	PID      int
	Duration time.Duration
	Err      error
}

func (h *Host) emit(ev Event) {
	if h.opts.onEvent == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	h.opts.onEvent(ev)
}
