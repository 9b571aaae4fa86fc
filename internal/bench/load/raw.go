package load

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"strconv"
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
	return drive(conns, d, func(int) (func(i int) bool, func()) {
		var (
			conn net.Conn
			r    *bufio.Reader
		)
		send := func(i int) bool {
			if conn == nil {
				c, err := net.Dial("tcp", u.Host)
				if err != nil {
					time.Sleep(time.Millisecond)
					return false
				}
				conn, r = c, bufio.NewReaderSize(c, 16<<10)
			}
			if _, err := conn.Write(reqs[i%len(reqs)]); err != nil || readAnswer(r) != nil {
				conn.Close()
				conn = nil // dial again
				return false
			}
			return true
		}
		return send, func() {
			if conn != nil {
				conn.Close()
			}
		}
	})
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
