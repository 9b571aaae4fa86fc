package activation

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/cortexfn/cortex/functions"
)

// AllowedHosts is the list of names a front server answers to in the Host
// header, its guard against DNS rebinding: a web page the user opens can
// point a name of its own (attacker.example) at 127.0.0.1 and then call
// the host from the page as a same-origin request, reading /-/status and
// calling functions with the user's network position. Such a request
// carries the page's name in its Host header, so the host answers only
// requests that name it as the user would: localhost, a subdomain of
// localhost (function.localhost), a loopback address, the address it is
// bound to, or a name configured for it.
//
// Its zero value allows only those always allowed.
type AllowedHosts struct {
	names    map[string]bool // lower-case names and IP addresses (net.IP.String)
	suffixes []string        // ".example.com" for *.example.com
	anyIP    bool            // bound to every address: any IP literal names this machine
	any      bool            // "*": the check is off
	list     []string        // the patterns, as hostname writes them, for messages
}

// ParseAllowedHosts returns the list of the names and addresses in
// patterns besides those always allowed (localhost, *.localhost and the
// loopback addresses). A pattern is a host name (ml.example.com), "*."
// and a domain for every name under it (*.example.com, not example.com
// itself), an IP address (an unspecified one, 0.0.0.0 or ::, standing for
// every address of the machine, as a server bound to it listens on all of
// them), or "*" for any Host at all, which turns the check off (for a
// server behind a proxy that checks Host itself). A port in a pattern is
// ignored: a Host is checked by its name, whatever port it names.
func ParseAllowedHosts(patterns ...string) (*AllowedHosts, error) {
	a := &AllowedHosts{names: map[string]bool{}}
	for _, p := range patterns {
		h := hostname(strings.TrimSpace(p))
		if _, port, err := net.SplitHostPort(strings.TrimSpace(p)); err == nil && strings.Trim(port, "0123456789") != "" {
			return nil, fmt.Errorf("host: allowed host %q: want a host name, without a scheme or path", p)
		}
		switch {
		case h == "":
			return nil, fmt.Errorf("host: allowed host %q: empty", p)
		case strings.TrimSpace(p) == "*":
			a.any = true
		case strings.HasPrefix(h, "*."):
			if !validName(h[2:]) {
				return nil, fmt.Errorf("host: allowed host %q: want a host name after *.", p)
			}
			a.suffixes = append(a.suffixes, h[1:])
		default:
			if ip := net.ParseIP(h); ip != nil {
				if ip.IsUnspecified() {
					a.anyIP = true
				} else {
					a.names[ip.String()] = true
				}
			} else if validName(h) {
				a.names[h] = true
			} else {
				return nil, fmt.Errorf("host: allowed host %q: want a host name (ml.example.com), *.DOMAIN, an IP address or *", p)
			}
		}
		a.list = append(a.list, h)
	}
	return a, nil
}

// Patterns returns the patterns a was parsed from, as ParseAllowedHosts
// takes them: the host hands them to a function process in
// $CORTEX_ALLOWED_HOSTS so that its shared socket answers to the same
// names as the front.
func (a *AllowedHosts) Patterns() []string { return slices.Clone(a.list) }

// validName reports whether h (lower-case) could be a host name: labels
// of letters, digits, '-' and '_', joined by dots.
func validName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return false
		}
		for _, c := range label {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// hostname is the lower-case name of a Host header or a pattern: without
// its port, the brackets of an IPv6 address and a trailing dot.
func hostname(hostport string) string {
	h := hostport
	if name, _, err := net.SplitHostPort(hostport); err == nil {
		h = name
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// Allows reports whether a request whose Host header is hostport may be
// answered. A request without one (HTTP/1.0) may: a browser always sends
// it.
func (a *AllowedHosts) Allows(hostport string) bool {
	h := hostname(hostport)
	switch {
	case h == "", a.any, h == "localhost", strings.HasSuffix(h, ".localhost"):
		return true
	}
	// netip, not net.ParseIP: this runs on every request a process takes
	// on its own socket, and a loopback address costs no allocation.
	if ip, err := netip.ParseAddr(h); err == nil {
		ip = ip.Unmap()
		return ip.IsLoopback() || a.anyIP || a.names[ip.String()]
	}
	if a.names[h] {
		return true
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// Handler returns next behind the check: a request whose Host is not
// allowed gets 421 (Misdirected Request: it reached a server that does not
// answer for that name) with a JSON error that names the fix.
func (a *AllowedHosts) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.Allows(r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusMisdirectedRequest)
		_, _ = w.Write(functions.ErrorBody(fmt.Sprintf(
			"cortex serve does not answer to Host %q: it answers to %s, so that a web page cannot reach it under a name of its own (DNS rebinding); to call it by this name, restart it with --allowed-host %s",
			r.Host, a.describe(), hostname(r.Host))))
	})
}

// describe lists what is allowed, for a person.
func (a *AllowedHosts) describe() string {
	all := []string{"localhost", "*.localhost", "loopback addresses"}
	if a.anyIP {
		all = append(all, "any IP address of this machine")
	}
	for _, p := range a.list {
		if ip := net.ParseIP(p); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) || slices.Contains(all, p) {
			continue // said already
		}
		all = append(all, p)
	}
	return strings.Join(all[:len(all)-1], ", ") + " and " + all[len(all)-1]
}
