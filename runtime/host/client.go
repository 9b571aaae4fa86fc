package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// StatusPath is where a host's front server answers every function's
// FunctionStatus as JSON: {"functions": [...]}.
const StatusPath = "/-/status"

// FetchStatus reads the status of every function a host serves, from its
// front server at base (http://127.0.0.1:8080), by name: what `cortex
// predict NAME` asks a running `cortex serve`, and what tests poll.
func FetchStatus(ctx context.Context, c *http.Client, base string) (map[string]FunctionStatus, error) {
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+StatusPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("GET %s%s: %s: %w", base, StatusPath, resp.Status, ErrUnauthorized)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s%s: %s", base, StatusPath, resp.Status)
	}
	var all struct{ Functions []FunctionStatus }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&all); err != nil {
		return nil, fmt.Errorf("GET %s%s: %w", base, StatusPath, err)
	}
	m := make(map[string]FunctionStatus, len(all.Functions))
	for _, s := range all.Functions {
		m[s.Name] = s
	}
	return m, nil
}

// ErrUnauthorized is the error (wrapped) of FetchStatus from a front that
// requires a token the client did not send, or sent wrong.
var ErrUnauthorized = errors.New("cortex serve requires a bearer token (" + TokenEnv + "): 401")

// TokenClient returns a client for the front server at addr (host:port)
// that sends token as Authorization: Bearer on every request to addr that
// has no Authorization header of its own, and never to another address
// (a redirect elsewhere goes without it). With an empty token it returns
// http.DefaultClient.
func TokenClient(addr, token string) *http.Client {
	if token == "" {
		return http.DefaultClient
	}
	return &http.Client{Transport: &bearer{next: http.DefaultTransport, addr: addr, token: token}}
}

type bearer struct {
	next  http.RoundTripper
	addr  string
	token string
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != b.addr || r.Header.Get("Authorization") != "" {
		return b.next.RoundTrip(r)
	}
	r = r.Clone(r.Context()) // a RoundTripper must not change the caller's request
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}
