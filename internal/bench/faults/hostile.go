package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// answer is what a raw client read back.
type answer struct {
	status     int
	retryAfter string
	body       []byte
	err        error // no final answer: why
}

// readFinal reads responses from r until a final one (not 1xx), telling
// interim about a 100 Continue.
func readFinal(r *bufio.Reader, interim chan<- struct{}) answer {
	for {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return answer{err: err}
		}
		if resp.StatusCode == http.StatusContinue {
			select {
			case interim <- struct{}{}:
			default:
			}
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: b}
		if err != nil && resp.StatusCode < 100 {
			a.err = err
		}
		return a
	}
}

// curlContinueWait is how long curl waits for 100 Continue before it
// sends the body anyway.
const curlContinueWait = time.Second

// oversized sends, as curl does for a large upload of unknown length, a
// chunked body of size bytes with Expect: 100-continue: it waits up to a
// second for 100 Continue, then writes the body while it reads, stopping
// at the first final answer or write error. It returns the final answer.
func oversized(addr string, size int64) answer {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return answer{err: err}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(conn, "POST /%s/predict HTTP/1.1\r\nHost: %s\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n"+
		"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n", fnName, addr); err != nil {
		return answer{err: err}
	}
	interim := make(chan struct{}, 1)
	final := make(chan answer, 1)
	go func() { final <- readFinal(bufio.NewReader(conn), interim) }()
	select {
	case a := <-final:
		return a // answered before the body: nothing more to send
	case <-interim:
	case <-time.After(curlContinueWait):
	}
	const chunkSize = 16 << 10
	data := bytes.Repeat([]byte("1,"), chunkSize/2)
	copy(data, `{"id":"oversized","rounds":1,"values":[`)
	chunk := fmt.Appendf(nil, "%x\r\n%s\r\n", len(data), data)
	for sent := int64(0); sent < size; sent += chunkSize {
		select {
		case a := <-final:
			return a
		default:
		}
		if _, err := conn.Write(chunk); err != nil {
			return <-final // the front stopped reading: its answer, if any, is in the socket
		}
	}
	if _, err := io.WriteString(conn, "0\r\n\r\n"); err != nil {
		return <-final
	}
	return <-final
}

// Slow headers: the request line, then the headers one byte per
// slowEvery; they take longer than the front's header timeout to send,
// and the client gives up at slowBound.
const (
	slowEvery = time.Second
	slowBound = frontHeaderTimeout + 5*time.Second
)

// slowResult is how a slow-headers client ended.
type slowResult struct {
	kind string
	ok   bool
	took time.Duration // from the connection to its end
}

// slowHeaders trickles a request's headers and reports how the front
// ended it: a closed connection (or 408) near its header timeout is right;
// any other answer, or a connection still open at slowBound, is not.
func slowHeaders(addr string) slowResult {
	start := time.Now()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return slowResult{kind: "dial error: " + err.Error()}
	}
	defer conn.Close()
	_ = conn.SetDeadline(start.Add(slowBound))
	if _, err := fmt.Fprintf(conn, "POST /%s/predict HTTP/1.1\r\n", fnName); err != nil {
		return slowResult{kind: "write error on the request line: " + err.Error()}
	}
	rest := fmt.Sprintf("Host: %s\r\nContent-Type: application/json\r\nX-Trickle: %s\r\nContent-Length: 2\r\n\r\n{}",
		addr, strings.Repeat("x", 40))
	type read struct {
		b   []byte
		err error
		at  time.Duration
	}
	done := make(chan read, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(conn, 4096))
		done <- read{b, err, time.Since(start)}
	}()
	t := time.NewTicker(slowEvery)
	defer t.Stop()
	var (
		r   read
		got bool
	)
	for i := 0; i < len(rest) && !got; {
		select {
		case r = <-done:
			got = true
		case <-t.C:
			if _, err := conn.Write([]byte{rest[i]}); err != nil {
				i = len(rest) // closed: the reader tells how
			} else {
				i++
			}
		}
	}
	if !got {
		r = <-done // bounded by the deadline
	}
	switch {
	case len(r.b) == 0 && errors.Is(r.err, os.ErrDeadlineExceeded):
		return slowResult{kind: fmt.Sprintf("still open after %s (the client gave up)", slowBound), took: r.at}
	case len(r.b) == 0:
		return slowResult{kind: "closed by the front, no answer", ok: true, took: r.at}
	case bytes.HasPrefix(r.b, []byte("HTTP/1.1 408 ")):
		return slowResult{kind: "408", ok: true, took: r.at}
	}
	line, _, _ := bytes.Cut(r.b, []byte("\r\n"))
	return slowResult{kind: fmt.Sprintf("answered %q", line), took: r.at}
}

// cutShort sends a request whose body stops halfway through its
// Content-Length (the client then closes its side for writing, as one
// that dies mid-upload) and reads the answer.
func cutShort(addr, body string) answer {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return answer{err: err}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(conn, "POST /%s/predict HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		fnName, addr, len(body), body[:len(body)/2]); err != nil {
		return answer{err: err}
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	return readFinal(bufio.NewReader(conn), nil)
}
