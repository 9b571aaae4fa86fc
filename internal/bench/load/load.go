// Package load is the load generator the bench programs share: a fixed
// number of concurrent keep-alive clients POSTing for a fixed time, with
// every successful request's latency recorded.
package load

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one load run, or several merged.
type Result struct {
	N, Errors int
	Elapsed   time.Duration
	Lat       []time.Duration // sorted by Merge
}

// Run has conns clients POST bodies (round robin, each client starting at
// its own index) to url for d. A request that fails or answers other than
// 200 counts as an error.
func Run(client *http.Client, url string, bodies []string, conns int, d time.Duration) Result {
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
			for i := c; time.Now().Before(cutoff); i++ {
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", strings.NewReader(bodies[i%len(bodies)]))
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				lat = append(lat, time.Since(t0))
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

// Merge adds runs together and sorts the latencies.
func Merge(rs []Result) Result {
	var m Result
	for _, r := range rs {
		m.N += r.N
		m.Errors += r.Errors
		m.Elapsed += r.Elapsed
		m.Lat = append(m.Lat, r.Lat...)
	}
	slices.Sort(m.Lat)
	return m
}

// RPS is the successful requests per second.
func (r Result) RPS() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// Pct is the p-th percentile latency of a merged result.
func (r Result) Pct(p int) time.Duration {
	if len(r.Lat) == 0 {
		return 0
	}
	i := min(len(r.Lat)*p/100, len(r.Lat)-1)
	return r.Lat[i].Round(time.Microsecond)
}
