// Package client sends one request to a running function: what `cortex
// predict` and `cortex test` share.
//
// It owns the request a command sends and the answer it prints; it must
// not import the packager or the deploy targets (a command resolves the
// URL first).
package client

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Request is a request to a function, relative to its base URL.
type Request struct {
	// Method defaults to POST when there is a body, else GET.
	Method string
	// Path is appended to the base URL; default "/predict".
	Path string
	// Header holds request headers.
	Header http.Header
	// Query holds query parameters, added to any already in Path.
	Query url.Values
	// Body is sent as is.
	Body []byte
	// OnEvent, when set, receives a text/event-stream answer's events as
	// they arrive (name "" for an event that has none, data lines joined
	// with "\n"); Response.Body is then empty. An error it returns stops
	// the reading and is Do's.
	OnEvent func(name, data string) error
}

// Response is what a function answered.
type Response struct {
	Status  int
	Header  http.Header
	Body    []byte
	Latency time.Duration
	// Streamed says the answer was a stream given to Request.OnEvent.
	Streamed bool
}

// Do sends r to the function at base (for example http://127.0.0.1:8080).
func Do(ctx context.Context, c *http.Client, base string, r Request) (*Response, error) {
	if c == nil {
		c = http.DefaultClient
	}
	u, err := URL(base, r.Path, r.Query)
	if err != nil {
		return nil, err
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
		if r.Body != nil {
			method = http.MethodPost
		}
	}
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.Body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if r.OnEvent != nil && isEventStream(resp.Header.Get("Content-Type")) {
		err := ReadEvents(resp.Body, r.OnEvent)
		return &Response{Status: resp.StatusCode, Header: resp.Header, Latency: time.Since(start), Streamed: true}, err
	}
	b, err := io.ReadAll(resp.Body)
	latency := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b, Latency: latency}, nil
}

// URL joins base, path (default /predict) and query.
func URL(base, path string, query url.Values) (string, error) {
	if path == "" {
		path = "/predict"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(strings.TrimRight(base, "/") + path)
	if err != nil {
		return "", fmt.Errorf("invalid URL %s%s: %w", base, path, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("invalid URL %q: it must start with http:// or https://", base)
	}
	if len(query) > 0 {
		q := u.Query()
		for k, vs := range query {
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// ParseHeader parses "Key: value" (or "Key:value") flags.
func ParseHeader(flags []string) (http.Header, error) {
	h := http.Header{}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("header %q: use Key:value", f)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return h, nil
}

// ParseQuery parses "key=value" flags.
func ParseQuery(flags []string) (url.Values, error) {
	q := url.Values{}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("query %q: use key=value", f)
		}
		q.Add(k, v)
	}
	return q, nil
}

// ReadData reads a -d flag: "@file" reads the file ("@-" standard input),
// anything else is the body itself.
func ReadData(d string, stdin io.Reader) ([]byte, error) {
	name, ok := strings.CutPrefix(d, "@")
	if !ok {
		return []byte(d), nil
	}
	if name == "-" {
		return io.ReadAll(stdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading request body: %w", err)
	}
	return b, nil
}

func isEventStream(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "text/event-stream"
}

// ReadEvents parses server-sent events from r as they arrive: "event:"
// and "data:" fields (data lines joined with "\n"), a blank line ending
// each; on gets each event's name ("" when it has none) and data.
func ReadEvents(r io.Reader, on func(name, data string) error) error {
	br := bufio.NewReader(r)
	var name string
	var data []string
	seen := false
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 || err == nil {
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "":
				if seen {
					if herr := on(name, strings.Join(data, "\n")); herr != nil {
						return herr
					}
				}
				name, data, seen = "", nil, false
			case strings.HasPrefix(line, "event:"):
				name, seen = strings.TrimSpace(strings.TrimPrefix(line, "event:")), true
			case strings.HasPrefix(line, "data:"):
				data, seen = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")), true
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the stream: %w", err)
		}
	}
}
