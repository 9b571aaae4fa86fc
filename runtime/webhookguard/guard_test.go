package webhookguard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cortexfn/cortex/functions"
)

// testResolver is a DNS table for the guard.
func testResolver(table map[string]string) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		a, ok := table[strings.ToLower(host)]
		if !ok {
			return nil, fmt.Errorf("no such host %q", host)
		}
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
}

var testDNS = map[string]string{
	"hooks.example.com":   "93.184.216.34",
	"private.example.com": "10.0.0.5",
	"meta.example.com":    "169.254.169.254",
	"v6.example.com":      "fd00::1",
}

// TestWebhookGuard: loopback, link-local (the metadata address), private
// and cluster-internal targets are refused by default, directly or
// through a name that resolves to them, and allowed only when listed.
func TestWebhookGuard(t *testing.T) {
	tests := []struct {
		url   string
		allow []string
		ok    bool
	}{
		{url: "https://hooks.example.com/cb", ok: true},
		{url: "http://93.184.216.34:8080/cb", ok: true},
		{url: "http://127.0.0.1/cb"},
		{url: "http://127.0.0.1:9000/cb", allow: []string{"127.0.0.1"}, ok: true},
		{url: "http://127.0.0.1:9000/cb", allow: []string{"127.0.0.1:9001"}},
		{url: "http://127.0.0.1:9000/cb", allow: []string{"127.0.0.1:9000"}, ok: true},
		{url: "http://169.254.169.254/latest/meta-data/"},
		{url: "http://meta.example.com/"},
		{url: "http://10.1.2.3/cb"},
		{url: "http://10.1.2.3/cb", allow: []string{"10.0.0.0/8"}, ok: true},
		{url: "http://private.example.com/cb"},
		{url: "http://private.example.com/cb", allow: []string{"private.example.com"}, ok: true},
		{url: "http://private.example.com/cb", allow: []string{"10.0.0.0/24"}, ok: true},
		{url: "http://172.16.0.1/"},
		{url: "http://192.168.1.1/"},
		{url: "http://100.64.0.1/"},
		{url: "http://0.0.0.0/"},
		{url: "http://224.0.0.1/"},
		{url: "http://[::1]/"},
		{url: "http://[::1]:8080/", allow: []string{"[::1]:8080"}, ok: true},
		{url: "http://[::ffff:127.0.0.1]/"},
		{url: "http://[fe80::1]/"},
		{url: "http://v6.example.com/"},
		{url: "http://localhost:8080/"},
		{url: "http://localhost:8080/", allow: []string{"localhost"}, ok: true},
		{url: "http://api.localhost/"},
		{url: "http://metadata.google.internal/"},
		{url: "http://kubernetes.default.svc/"},
		{url: "http://iris.default.svc.cluster.local/"},
		{url: "http://redis/"},
		{url: "http://nowhere.example.com/"},
		{url: "ftp://hooks.example.com/"},
		{url: "http://user:pass@hooks.example.com/"},
		{url: "/relative"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s allow %v", tc.url, tc.allow), func(t *testing.T) {
			g, err := New(tc.allow)
			if err != nil {
				t.Fatal(err)
			}
			g.lookup = testResolver(testDNS)
			err = g.Check(context.Background(), tc.url)
			if tc.ok != (err == nil) {
				t.Fatalf("check = %v, want allowed: %v", err, tc.ok)
			}
			if err != nil && (functions.StatusOf(err) != 422 || !strings.Contains(err.Error(), "async.webhook_allow")) {
				t.Errorf("refusal %v, want a 422 naming async.webhook_allow", err)
			}
			if strings.Contains(fmt.Sprint(err), "pass") {
				t.Errorf("the refusal echoes the URL's credentials: %v", err)
			}
		})
	}
	if _, err := New([]string{"not a host/x y"}); err == nil {
		t.Error("New took a malformed entry")
	}
}

// TestWebhookGuardDial: at connect time a name that now resolves to a
// refused address (DNS rebinding, after it passed at submission) is not
// dialled, and the dialer's Control hook refuses a refused address.
func TestWebhookGuardDial(t *testing.T) {
	var calls atomic.Int64
	hits := atomic.Int64{}
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer target.Close()
	port := target.URL[strings.LastIndex(target.URL, ":")+1:]
	g, _ := New(nil)
	g.lookup = func(context.Context, string) ([]netip.Addr, error) {
		if calls.Add(1) == 1 {
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil // public at submission
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil // loopback at delivery
	}
	u := "http://rebind.example.com:" + port + "/cb"
	if err := g.Check(context.Background(), u); err != nil {
		t.Fatalf("check at submission: %v", err)
	}
	resp, err := g.Client().Post(u, "application/json", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, ErrBlocked) || hits.Load() != 0 {
		t.Errorf("delivery to a rebound name: err %v, %d hits; want refused, none", err, hits.Load())
	}
	// The Control hook, on its own: a dial to a literal refused address.
	if _, err := g.dial(context.Background(), "tcp", "127.0.0.1:"+port); !errors.Is(err, ErrBlocked) {
		t.Errorf("dial 127.0.0.1: %v, want refused", err)
	}
}

func TestSettled(t *testing.T) {
	for _, c := range []struct {
		status  int
		err     error
		settled bool
		why     bool
	}{
		{200, nil, true, false},
		{204, nil, true, false},
		{302, nil, true, true},
		{0, fmt.Errorf("dial: %w", ErrBlocked), true, true},
		{500, nil, false, false},
		{429, nil, false, false},
		{0, errors.New("connection refused"), false, false},
	} {
		settled, why := Settled(c.status, c.err)
		if settled != c.settled || (why != "") != c.why {
			t.Errorf("Settled(%d, %v) = %v %q", c.status, c.err, settled, why)
		}
	}
}
