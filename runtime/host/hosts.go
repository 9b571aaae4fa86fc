package host

import "github.com/cortexfn/cortex/runtime/activation"

// AllowedHosts is the front server's guard against DNS rebinding, the
// names it answers to in the Host header (see activation.AllowedHosts). It
// lives in package activation because a function process that accepts on
// its shared socket itself (see Function.Listener) applies the same check.
type AllowedHosts = activation.AllowedHosts

// ParseAllowedHosts is activation.ParseAllowedHosts.
func ParseAllowedHosts(patterns ...string) (*AllowedHosts, error) {
	return activation.ParseAllowedHosts(patterns...)
}
