package host

import (
	"context"
	"encoding/json"
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
