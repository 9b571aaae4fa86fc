package load

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// RunRaw is Run with a leaner client: each of the conns clients writes
// ready-made HTTP/1.1 requests on its own keep-alive TCP connection and
// reads the answers with a minimal parser (status line, Content-Length,
// body). It costs the machine several times less CPU per request than
// net/http's client, so on a small machine more of the CPU goes to the
// server under test. An answer without Content-Length, or other than 200,
// counts as an error (the connection is then dialled again).
func RunRaw(target string, bodies []string, conns int, d time.Duration) Result {
	u, err := url.Parse(target)
	if err != nil {
		panic(err)
	}
	reqs := make([][]byte, len(bodies))
	for i, b := range bodies {
		reqs[i] = fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			u.RequestURI(), u.Host, len(b), b)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		res    Result
		errs   atomic.Int64
		cutoff = time.Now().Add(d)
	)
	start := time.Now()
	for c := range conns {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			var (
				conn net.Conn
				r    *bufio.Reader
				err  error
			)
			for i := c; time.Now().Before(cutoff); i++ {
				if conn == nil {
					if conn, err = net.Dial("tcp", u.Host); err != nil {
						errs.Add(1)
						conn = nil
						time.Sleep(time.Millisecond)
						continue
					}
					r = bufio.NewReaderSize(conn, 16<<10)
				}
				t0 := time.Now()
				if _, err := conn.Write(reqs[i%len(reqs)]); err != nil || readAnswer(r) != nil {
					errs.Add(1)
					conn.Close()
					conn = nil
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			if conn != nil {
				conn.Close()
			}
			mu.Lock()
			res.Lat = append(res.Lat, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.N = len(res.Lat)
	res.Errors = int(errs.Load())
	return res
}

// readAnswer reads one HTTP/1.1 response and fails unless it is a 200
// with a Content-Length.
func readAnswer(r *bufio.Reader) error {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", bytes.TrimSpace(line))
	}
	n := -1
	for {
		line, err = r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 { // the blank line
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			if n, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return err
			}
		}
	}
	if n < 0 {
		return fmt.Errorf("an answer without Content-Length")
	}
	_, err = r.Discard(n)
	return err
}
