// Package webhookguard keeps webhooks from becoming a server-side request
// forgery: it decides which URLs a webhook may go to and dials only
// addresses it allows. It is shared by the function's runtime (webhooks of
// the background predictions a process runs itself) and cortex serve's
// host (those of its durable queue, runtime/host), so both refuse the
// same targets the same way (docs/async.md, "Where a webhook may go").
package webhookguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/cortexfn/cortex/functions"
)

// Guard keeps webhooks from becoming a server-side request forgery:
// a caller who may submit predictions must not make the function POST to
// its cloud's metadata service, its cluster's services or its own
// loopback. By default a webhook may reach public addresses only. The
// check runs on the URL's host name (names that only mean something
// inside a cluster or a machine), after DNS resolution at submission (a
// 422 for the caller), and again on the address actually dialled at
// every delivery (a dialer's Control hook), so a name that resolves to a
// public address at submission and a private one later (DNS rebinding)
// is still refused. Redirects are never followed. async.webhook_allow
// opens hosts, host:ports and CIDR blocks.
type Guard struct {
	hosts map[string]bool // "host" or "host:port", lower case
	nets  []netip.Prefix
	// lookup resolves a host name; net.DefaultResolver's in production,
	// a table in tests.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// blockedNets are the address ranges a webhook may not reach unless
// listed: besides what netip's predicates name (loopback, private
// (RFC 1918, fc00::/7), link-local (169.254.0.0/16, where clouds keep
// their metadata service, and fe80::/10), multicast, unspecified).
var blockedNets = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT, often a cluster's pod network
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: may embed any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2002::/16"),       // 6to4: may embed any IPv4 address
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
}

// Settled reports whether the result of one delivery attempt (the
// receiver's status, or the error of webhook.Send) ends the delivery,
// and, when it ends it undelivered, why: a 2xx delivers it; a redirect
// (never followed: it could lead anywhere the guard refuses) or an
// address the guard refuses ends it undelivered. Anything else may be
// tried again. The runtime's deliveries and cortex serve's queue follow
// it alike.
func Settled(status int, err error) (settled bool, why string) {
	switch {
	case err == nil && status >= 200 && status < 300:
		return true, ""
	case err == nil && status >= 300 && status < 400:
		return true, "the receiver redirected, and redirects are not followed"
	case errors.Is(err, ErrBlocked):
		return true, "address refused: " + err.Error()
	}
	return false, ""
}

// internalSuffixes are host name suffixes that name something inside a
// machine or a cluster, refused before they are resolved.
var internalSuffixes = []string{".localhost", ".local", ".internal", ".svc", ".cluster.local", ".localdomain"}

func New(allow []string) (*Guard, error) {
	g := &Guard{hosts: map[string]bool{}, lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}}
	for i, a := range allow {
		a = strings.ToLower(strings.TrimSpace(a))
		if p, err := netip.ParsePrefix(a); err == nil {
			g.nets = append(g.nets, p.Masked())
			continue
		}
		if a == "" || strings.ContainsAny(a, "/ ") {
			return nil, fmt.Errorf("async.webhook_allow[%d]: %q is not a host, host:port or CIDR block", i, a)
		}
		if h, port, err := net.SplitHostPort(a); err == nil {
			g.hosts[net.JoinHostPort(h, port)] = true
		} else {
			g.hosts[strings.Trim(a, "[]")] = true
		}
	}
	return g, nil
}

// blockedAddr reports why addr may not be reached, "" when it may.
func (g *Guard) blockedAddr(addr netip.Addr) string {
	addr = addr.Unmap()
	for _, p := range g.nets {
		if p.Contains(addr) {
			return ""
		}
	}
	switch {
	case addr.IsLoopback():
		return "a loopback address"
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return "a link-local address (169.254.169.254 is the cloud's metadata service)"
	case addr.IsPrivate():
		return "a private address"
	case addr.IsUnspecified():
		return "the unspecified address"
	case addr.IsMulticast(), addr.IsInterfaceLocalMulticast():
		return "a multicast address"
	}
	for _, p := range blockedNets {
		if p.Contains(addr) {
			return "a reserved or internal address (" + p.String() + ")"
		}
	}
	return ""
}

// hostAllowed reports whether async.webhook_allow lists host (any port)
// or host:port.
func (g *Guard) hostAllowed(host, port string) bool {
	host = strings.ToLower(host)
	return g.hosts[host] || g.hosts[net.JoinHostPort(host, port)]
}

// check refuses a webhook URL that is not http(s), names an internal
// host, or resolves to an address the function may not reach: the 422
// a caller gets at submission.
func (g *Guard) Check(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return refused(raw, "it is not an absolute http or https URL without credentials")
	}
	host, port := u.Hostname(), portOf(u)
	if g.hostAllowed(host, port) {
		return nil
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if why := g.blockedAddr(addr); why != "" {
			return refused(raw, "it is "+why)
		}
		return nil
	}
	if why := internalName(host); why != "" {
		return refused(raw, why)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := g.lookup(ctx, host)
	if err != nil || len(addrs) == 0 {
		return refused(raw, fmt.Sprintf("its host %q does not resolve", host))
	}
	for _, a := range addrs {
		if why := g.blockedAddr(a); why != "" {
			return refused(raw, fmt.Sprintf("its host %q resolves to %s, %s", host, a, why))
		}
	}
	return nil
}

// internalName says why a host name is internal, "" when it is not.
func internalName(host string) string {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" {
		return "it names localhost"
	}
	if !strings.Contains(h, ".") {
		return fmt.Sprintf("its host %q has no domain: resolved through the search domains, it names a machine or service of the function's own network", host)
	}
	for _, s := range internalSuffixes {
		if strings.HasSuffix(h, s) {
			return fmt.Sprintf("its host %q is a name inside the function's machine or cluster (*%s)", host, s)
		}
	}
	return ""
}

func refused(raw, why string) error {
	return &functions.Error{Status: http.StatusUnprocessableEntity, Message: fmt.Sprintf(
		"webhook URL %q refused: %s; webhooks go to public addresses only, unless async.webhook_allow in cortex.yaml lists the host", Redact(raw), why)}
}

// Redact drops what a URL may carry that should not be echoed or
// logged: credentials, the query (tokens often travel there).
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// ErrBlocked is a delivery refused at connect time.
var ErrBlocked = errors.New("webhook address refused")

// dial connects to addr (host:port) for a delivery: a listed host as it
// resolves; any other host resolved here, every address it has checked
// (one refused address refuses the host: a rebinding name mixes them),
// and then dialled by address, with the dialer's Control hook checking
// the address once more, as it is connected to.
func (g *Guard) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	if g.hostAllowed(host, port) {
		return d.DialContext(ctx, network, addr)
	}
	d.Control = func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBlocked, address, err)
		}
		if why := g.blockedAddr(ap.Addr()); why != "" {
			return fmt.Errorf("%w: %s is %s", ErrBlocked, ap.Addr(), why)
		}
		return nil
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		if why := internalName(host); why != "" {
			return nil, fmt.Errorf("%w: %s", ErrBlocked, why)
		}
		if addrs, err = g.lookup(ctx, host); err != nil {
			return nil, err
		}
	}
	for _, a := range addrs {
		if why := g.blockedAddr(a); why != "" {
			return nil, fmt.Errorf("%w: %s resolves to %s, %s", ErrBlocked, host, a, why)
		}
	}
	var errs []error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// client is the HTTP client deliveries use: through dial, never through
// a proxy (the proxy would make the connection the guard checks), and
// following no redirect.
func (g *Guard) Client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           g.dial,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
