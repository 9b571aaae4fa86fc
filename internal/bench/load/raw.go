package load

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
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
	return RunRawChecked(target, bodies, conns, d, nil)
}

// RunRawChecked is RunRaw that also checks the body of every 200 answer
// with check (nil: none is checked).
func RunRawChecked(target string, bodies []string, conns int, d time.Duration, check Check) Result {
	u, err := url.Parse(target)
	if err != nil {
		panic(err)
	}
	reqs := make([][]byte, len(bodies))
	for i, b := range bodies {
		reqs[i] = fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			u.RequestURI(), u.Host, len(b), b)
	}
	return drive(conns, d, func(int) (func(i int) error, func()) {
		var (
			conn net.Conn
			r    *bufio.Reader
			buf  []byte // the answer's body, when it is checked
			ck   = checker{check: check}
		)
		send := func(i int) error {
			if conn == nil {
				c, err := net.Dial("tcp", u.Host)
				if err != nil {
					time.Sleep(time.Millisecond)
					return err
				}
				conn, r = c, bufio.NewReaderSize(c, 16<<10)
			}
			_, err := conn.Write(reqs[i%len(reqs)])
			if err == nil {
				buf, err = readAnswer(r, buf[:0], check != nil)
			}
			if err != nil {
				conn.Close()
				conn = nil // dial again
				return err
			}
			return ck.ok(buf)
		}
		return send, func() {
			if conn != nil {
				conn.Close()
			}
		}
	})
}

// readAnswer reads one HTTP/1.1 response and fails unless it is a 200
// with a Content-Length. With keep, it appends the body to buf and
// returns it; otherwise it discards the body.
func readAnswer(r *bufio.Reader, buf []byte, keep bool) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return buf, err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return buf, fmt.Errorf("status line %q", bytes.TrimSpace(line))
	}
	n := -1
	for {
		line, err = r.ReadSlice('\n')
		if err != nil {
			return buf, err
		}
		if len(line) <= 2 { // the blank line
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			if n, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return buf, err
			}
		}
	}
	if n < 0 {
		return buf, fmt.Errorf("an answer without Content-Length")
	}
	if !keep {
		_, err = r.Discard(n)
		return buf, err
	}
	buf = slices.Grow(buf, n)[:n]
	_, err = io.ReadFull(r, buf)
	return buf, err
}
