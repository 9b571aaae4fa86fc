package host

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// writeHold bounds how long a failed write to a process waits for the
// read side of its connection (see procConn).
const writeHold = 5 * time.Second

// procConn is a connection from the host to a process. It holds a write
// error back until the read side of the connection has ended (a read
// failed, or the transport closed the connection), at most writeHold.
//
// Why: a process may answer before it has read the whole request body and
// then close the connection, as the function's runtime does with a 413 for
// a body over its limits.max_body (net/http closes at once, without its
// usual half-second linger, when the request asked Expect: 100-continue,
// as curl does for a large body). The host is then still writing the body,
// and its write fails (connection reset, broken pipe) while the answer sits
// in the socket, readable. http.Transport reports whichever of the two it
// sees first, so without the hold a caller got, at random, the function's
// 413 or a 502 that blamed a healthy process (golang/go#11745, #51109).
// Held, the write error can only come after the answer has been read.
//
// The alternative, refusing an oversized body at the front, needs the
// host to know each function's limits and to apply them exactly as every
// carrier does (a structured CloudEvent may be a third larger than
// max_body, a compressed body is limited after decoding); the function
// would stop being the one place its limits live. The hold costs nothing
// on a connection whose writes succeed, and the caller of a process that
// dies under its request still gets a 502 at once: the connection's read
// side fails too, which releases the write error.
type procConn struct {
	net.Conn
	once     sync.Once
	readDone chan struct{} // closed when a read fails or the connection is closed
}

func dialProcess(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &procConn{Conn: c, readDone: make(chan struct{})}, nil
	}
}

func (c *procConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.endRead()
	}
	return n, err
}

func (c *procConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		t := time.NewTimer(writeHold)
		select {
		case <-c.readDone:
		case <-t.C:
		}
		t.Stop()
	}
	return n, err
}

func (c *procConn) Close() error {
	c.endRead()
	return c.Conn.Close()
}

// CloseWrite keeps the half-close that ReverseProxy uses on a connection
// switched to another protocol (a WebSocket, say).
func (c *procConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

func (c *procConn) endRead() { c.once.Do(func() { close(c.readDone) }) }

var _ net.Conn = (*procConn)(nil)
