package host

import "time"

// WithHeartbeat sets how often an idle /-/events stream gets a comment
// (default eventsHeartbeat), so that a test sees one soon.
func WithHeartbeat(d time.Duration) Option {
	return func(o *options) error {
		o.heartbeat = d
		return nil
	}
}
