package runtime

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/cortexfn/cortex/runtime/activation"
)

// activated is a process started by `cortex serve` with a shared socket
// (see package activation): it accepts there once ready, reports its load
// over the control channel, stops accepting when told to, and drains when
// the host goes away.
type activated struct {
	*activation.Inherited
	inflight atomic.Int64
	peak     atomic.Int64
	served   atomic.Uint64
	hostGone chan struct{} // closed when the control channel ends
	// background, when not nil, counts the predictions the process runs
	// in the background (Prefer: respond-async): they are load too, so
	// that the host does not scale the process away under them.
	background *atomic.Int64
}

func newActivated(in *activation.Inherited) *activated {
	return &activated{Inherited: in, hostGone: make(chan struct{})}
}

// count wraps h to keep the load the process reports: two atomic adds
// and, on a new peak, a compare-and-swap per request. Probes and scrapes
// are not load. served counts the requests of the shared socket only
// (shared true): the host counts the ones it forwards itself.
func (a *activated) count(h http.Handler, shared bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if isProbe(req) {
			h.ServeHTTP(w, req)
			return
		}
		n := a.inflight.Add(1)
		for p := a.peak.Load(); n > p && !a.peak.CompareAndSwap(p, n); p = a.peak.Load() {
		}
		defer func() {
			a.inflight.Add(-1)
			if shared {
				a.served.Add(1)
			}
		}()
		h.ServeHTTP(w, req)
	})
}

// report writes the load to the host whenever it changed, at most every
// ReportInterval, until stop closes. A write error means the host is
// gone: control's read side sees it too.
func (a *activated) report(stop <-chan struct{}) {
	t := time.NewTicker(a.ReportInterval)
	defer t.Stop()
	var last activation.Report
	buf := make([]byte, 0, 64)
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		n := a.inflight.Load()
		if a.background != nil {
			n += a.background.Load()
		}
		rep := activation.Report{InFlight: int(n), Peak: int(max(a.peak.Swap(n), n)), Served: a.served.Load()}
		if rep == last {
			continue
		}
		last = rep
		if _, err := a.Control.Write(rep.Append(buf[:0])); err != nil {
			return
		}
	}
}

// control follows the host's messages: Quiesce stops srv accepting on the
// shared socket and closes its idle connections (the ones with a request
// on them finish it, answered with Connection: close). When the channel
// ends, hostGone closes.
func (a *activated) control(srv *http.Server) {
	defer close(a.hostGone)
	lines := activation.Lines(a.Control)
	for lines.Scan() {
		if lines.Text() == activation.Quiesce {
			a.quiesce(srv)
		}
	}
}

func (a *activated) quiesce(srv *http.Server) {
	_ = a.Listener.Close()
	srv.SetKeepAlivesEnabled(false)
}
