package host

import "time"

// WithSweepEvery sets how often the durable queue deletes expired
// results (default defaultSweepEvery), so that a test sees it soon.
func WithSweepEvery(d time.Duration) Option {
	return func(o *options) error {
		o.sweepEvery = d
		return nil
	}
}
