package host

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"sync/atomic"
	"time"
)

// The front page: GET / of the front server is a page that lists every
// function with its live state and links to each function's own page
// (/{function}/, served by the function's HTTP carrier). The page is a
// static shell (frontpage/: HTML, CSS and JS, embedded, no CDN) that holds
// nothing of the functions': its script reads the state from the front,
// StatusPath for a snapshot and EventsPath for changes, with the bearer
// token when the front requires one, and writes every name, state and
// error into the page as text, never as HTML. So the shell is served
// without the token, and what it shows is not. index.html, front.js and
// front.css are about 1.5, 6.7 and 1.7 KB (4 KB gzipped together);
// TestFrontPageShell keeps them under 16 KiB.

// EventsPath is where a host's front server streams Status as server-sent
// events (text/event-stream): an event "status" whose data is StatusPath's
// JSON, once when the stream opens and then whenever a function changes
// (its processes, its requests in flight or held, a request answered, a
// build), at most every eventsInterval, with a comment every heartbeat
// while nothing changes so that proxies keep the stream open.
const EventsPath = "/-/events"

// The shell's own assets (index.html is served at /).
const (
	frontJS  = "/-/front.js"
	frontCSS = "/-/front.css"
)

// eventsInterval is the least time between two events of a stream: a busy
// function changes with every request, and a person reads the page at
// most a few times a second.
const eventsInterval = 250 * time.Millisecond

// eventsHeartbeat is how often an idle stream gets a comment: well within
// the minute after which proxies commonly close a quiet connection.
const eventsHeartbeat = 15 * time.Second

// frontCSP lets the page load its own script, style and data and nothing
// else: no inline script or style, no other origin, no framing.
const frontCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed frontpage
var frontFiles embed.FS

// serveAsset writes the shell's file name (index.html, front.js or
// front.css).
func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	b, err := frontFiles.ReadFile("frontpage/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", frontCSP)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	// Revalidate every time: the shell changes with the cortex binary,
	// and the ETag makes the check cheap.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", assetTags[name])
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

// assetTags are the shell's ETags, from their contents.
var assetTags = func() map[string]string {
	tags := map[string]string{}
	entries, _ := frontFiles.ReadDir("frontpage")
	for _, e := range entries {
		b, _ := frontFiles.ReadFile("frontpage/" + e.Name())
		sum := fnv.New64a() // a cache key, not a secret
		sum.Write(b)
		tags[e.Name()] = fmt.Sprintf(`"%x"`, sum.Sum64())
	}
	return tags
}()

// statusJSON is StatusPath's body: {"functions": [...]} and a newline.
func (h *Host) statusJSON() []byte {
	b, err := json.Marshal(struct {
		Functions []FunctionStatus `json:"functions"`
	}{h.Status()})
	if err != nil {
		// A FunctionStatus has nothing json cannot write.
		panic("host: encoding the status: " + err.Error())
	}
	return append(b, '\n')
}

// serveEvents streams the status to the caller until it goes away or
// CloseStreams ends the streams.
func (h *Host) serveEvents(w http.ResponseWriter, r *http.Request) {
	// The front server's read and write timeouts bound the host's short
	// answers; a stream is as long as its caller wants it.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Accel-Buffering", "no") // nginx in front: do not hold the events back
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	write := func(b []byte) bool {
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	heartbeat := time.NewTicker(h.opts.heartbeat)
	defer heartbeat.Stop()
	var last []byte
	var sent time.Time
	for {
		// Wait on the changes before reading the status, so that a change
		// made after the read is never missed.
		changed := h.changes.wait()
		if snap := h.statusJSON(); !bytes.Equal(snap, last) {
			ev := make([]byte, 0, len(snap)+len("event: status\ndata: \n\n"))
			ev = append(ev, "event: status\ndata: "...)
			ev = append(ev, bytes.TrimSuffix(snap, []byte("\n"))...)
			ev = append(ev, "\n\n"...)
			if !write(ev) {
				return
			}
			last, sent = snap, time.Now()
		}
		select {
		case <-r.Context().Done():
			return
		case <-h.streams:
			return
		case <-heartbeat.C:
			// Also the moment to notice a change no request makes: a
			// backoff that ended.
			if !write([]byte(": heartbeat\n\n")) {
				return
			}
		case <-changed:
			wait := time.NewTimer(time.Until(sent.Add(eventsInterval)))
			select {
			case <-r.Context().Done():
				wait.Stop()
				return
			case <-h.streams:
				wait.Stop()
				return
			case <-wait.C:
			}
		}
	}
}

// CloseStreams ends every EventsPath stream, and refuses new ones (they
// end after their first event). http.Server.Shutdown waits for every
// request to finish, and a front page left open keeps its stream for as
// long as it is open: register CloseStreams with the server's
// RegisterOnShutdown. Shutdown calls it too.
func (h *Host) CloseStreams() {
	h.streamsOnce.Do(func() { close(h.streams) })
}

// changes tells the /-/events streams that something changed. It costs
// the host's hot path (every request's start and end) one atomic load
// while no stream waits, and one close per wait while one does.
type changes struct {
	ch atomic.Pointer[chan struct{}]
}

// wait returns a channel that is closed at the next change.
func (c *changes) wait() <-chan struct{} {
	for {
		if p := c.ch.Load(); p != nil {
			return *p
		}
		ch := make(chan struct{})
		if c.ch.CompareAndSwap(nil, &ch) {
			return ch
		}
	}
}

// notify wakes every waiter.
func (c *changes) notify() {
	if p := c.ch.Load(); p != nil && c.ch.CompareAndSwap(p, nil) {
		close(*p)
	}
}
