package host_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/runtime/host"
)

func benchHost(b *testing.B) (*host.Host, *httptest.Server) {
	b.Helper()
	h, err := host.New([]host.Function{function("echo", host.Autoscaling{})},
		host.WithLogWriter(io.Discard), host.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	return h, httptest.NewServer(h)
}

func shutdown(b *testing.B, h *host.Host, srv *httptest.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		b.Error(err)
	}
	srv.Close()
}

func benchPost(b *testing.B, c *http.Client, url string) {
	resp, err := c.Post(url, "text/plain", strings.NewReader(`{"x":1}`))
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("POST %s: %d", url, resp.StatusCode)
	}
}

// BenchmarkColdStart is the first request to an idle function, spawn to
// answer, against the same request once the process is warm.
func BenchmarkColdStart(b *testing.B) {
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			h, srv := benchHost(b)
			c := &http.Client{Transport: &http.Transport{}}
			b.StartTimer()
			benchPost(b, c, srv.URL+"/echo/")
			b.StopTimer()
			c.CloseIdleConnections()
			shutdown(b, h, srv)
			b.StartTimer()
		}
	})
	b.Run("warm", func(b *testing.B) {
		h, srv := benchHost(b)
		defer shutdown(b, h, srv)
		c := &http.Client{Transport: &http.Transport{}}
		defer c.CloseIdleConnections()
		benchPost(b, c, srv.URL+"/echo/")
		for b.Loop() {
			benchPost(b, c, srv.URL+"/echo/")
		}
	})
}

// BenchmarkProxy is a warm request through the host against the same
// request sent straight to the function's process: the difference is what
// the host adds.
func BenchmarkProxy(b *testing.B) {
	h, srv := benchHost(b)
	defer shutdown(b, h, srv)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer c.CloseIdleConnections()
	benchPost(b, c, srv.URL+"/echo/")
	direct := "http://" + h.Status()[0].Processes[0].Addr + "/"
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			benchPost(b, c, direct)
		}
	})
	b.Run("host", func(b *testing.B) {
		for b.Loop() {
			benchPost(b, c, srv.URL+"/echo/")
		}
	})
}

// BenchmarkProxyParallel is BenchmarkProxy at 64 concurrent callers, with
// the function's own socket beside the front: warm, a process accepts
// there itself, so the socket should cost what the process alone costs.
func BenchmarkProxyParallel(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	fn := function("echo", host.Autoscaling{})
	fn.Listener = ln
	own := "http://" + ln.Addr().String() + "/"
	h, err := host.New([]host.Function{fn},
		host.WithLogWriter(io.Discard), host.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer shutdown(b, h, srv)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer c.CloseIdleConnections()
	benchPost(b, c, srv.URL+"/echo/")
	direct := "http://" + h.Status()[0].Processes[0].Addr + "/"
	for _, bc := range []struct{ name, url string }{{"direct", direct}, {"host", srv.URL + "/echo/"}, {"own-port", own}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetParallelism(32) // x GOMAXPROCS 2: 64 callers
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchPost(b, c, bc.url)
				}
			})
		})
	}
}
