package runtime

import (
	"bufio"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cortexfn/cortex/runtime/activation"
)

// A process started by cortex serve reports predictions it runs in the
// background (202 answered, no request open) as load, so that the host
// does not scale it away under them.
func TestActivatedReportsBackgroundWork(t *testing.T) {
	host, child := net.Pipe()
	defer host.Close()
	a := newActivated(&activation.Inherited{Control: child, ReportInterval: time.Millisecond})
	var background atomic.Int64
	a.background = &background
	stop := make(chan struct{})
	defer close(stop)
	go a.report(stop)
	background.Add(2)
	lines := bufio.NewScanner(host)
	host.SetReadDeadline(time.Now().Add(5 * time.Second))
	for lines.Scan() {
		rep, err := activation.ParseReport(lines.Text())
		if err != nil {
			t.Fatal(err)
		}
		if rep.InFlight == 2 && rep.Peak >= 2 {
			return
		}
	}
	t.Fatalf("no report of the 2 background predictions (%v)", lines.Err())
}
