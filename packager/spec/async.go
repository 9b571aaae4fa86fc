package spec

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/cortexfn/cortex/runtime"
)

// Async is async.* in cortex.yaml: background predictions
// (Prefer: respond-async) and their webhooks. Its zero value takes the
// runtime's defaults (runtime.AsyncConfig).
type Async struct {
	// Keep is how long a finished prediction's result is kept.
	Keep time.Duration `yaml:"keep"`
	// MaxPredictions is how many predictions are kept at most.
	MaxPredictions int `yaml:"max_predictions"`
	// MaxOutput is the largest answer a kept result may hold.
	MaxOutput Size `yaml:"max_output"`
	// WebhookSecretEnv is the variable that holds the webhooks' signing
	// secret; the secret itself is never in cortex.yaml.
	WebhookSecretEnv string `yaml:"webhook_secret_env"`
	// WebhookSecret and WebhookKey name the Kubernetes Secret, and the
	// key in it, that the variable is set from on Knative.
	WebhookSecret string `yaml:"webhook_secret"`
	WebhookKey    string `yaml:"webhook_key"`
	// WebhookAllow opens hosts webhooks may not reach by default.
	WebhookAllow []string `yaml:"webhook_allow"`
	// WebhookAttempts is how many times a completed event is sent.
	WebhookAttempts int `yaml:"webhook_attempts"`
	// WebhookBackoff is the wait before the second attempt, doubled after.
	WebhookBackoff time.Duration `yaml:"webhook_backoff"`
}

// setAsyncDefaults fills async.*'s defaults, the runtime's.
func (s *Spec) setAsyncDefaults() {
	a := &s.Async
	if a.Keep == 0 {
		a.Keep = runtime.DefaultAsyncKeep
	}
	if a.MaxPredictions == 0 {
		a.MaxPredictions = runtime.DefaultMaxPredictions
	}
	if a.MaxOutput == 0 {
		a.MaxOutput = runtime.DefaultMaxOutput
	}
	if a.WebhookAttempts == 0 {
		a.WebhookAttempts = runtime.DefaultWebhookAttempts
	}
	if a.WebhookBackoff == 0 {
		a.WebhookBackoff = runtime.DefaultWebhookBackoff
	}
}

// async checks async.*.
func (v *validator) async() {
	a := v.s.Async
	if name := a.WebhookSecretEnv; name != "" {
		switch {
		case !envName.MatchString(name):
			v.add("async.webhook_secret_env", "%q is not a variable name", name)
		case isReservedEnv(name):
			v.add("async.webhook_secret_env", "%q is a variable the platform or the function's runtime uses; name your own, such as WEBHOOK_SECRET", name)
		case name == v.s.Auth.TokenEnv:
			v.add("async.webhook_secret_env", "%q is also auth.token_env: webhooks must be signed with a secret of their own", name)
		}
		v.secretRef("async.webhook_secret", "async.webhook_key", a.WebhookSecret, a.WebhookKey, "the webhook secret", "webhook-secret", "secret")
	} else if a.WebhookSecret != "" || a.WebhookKey != "" {
		v.add("async.webhook_secret_env", "is required with async.webhook_secret and async.webhook_key: the variable the function reads the webhook secret from, such as WEBHOOK_SECRET")
	}
	for i, e := range a.WebhookAllow {
		if msg := badWebhookAllow(e); msg != "" {
			v.add(fmt.Sprintf("async.webhook_allow[%d]", i), "%q %s", e, msg)
		}
	}
	if a.Keep < time.Second {
		v.add("async.keep", "%s is less than 1s: a result would be gone before a caller could read it", a.Keep)
	}
	if a.MaxPredictions < 1 {
		v.add("async.max_predictions", "must be 1 or more, not %d", a.MaxPredictions)
	}
	if a.MaxOutput < 1 {
		v.add("async.max_output", "must be more than 0 bytes")
	}
	if a.WebhookAttempts < 1 {
		v.add("async.webhook_attempts", "must be 1 or more, not %d", a.WebhookAttempts)
	}
	if a.WebhookBackoff < 10*time.Millisecond {
		v.add("async.webhook_backoff", "%s is less than 10ms", a.WebhookBackoff)
	}
}

// badWebhookAllow says what is wrong with an entry of
// async.webhook_allow, or "" when nothing is.
func badWebhookAllow(e string) string {
	if _, err := netip.ParsePrefix(e); err == nil {
		return ""
	}
	if strings.Contains(e, "/") {
		return "is not a CIDR block such as 10.0.0.0/8"
	}
	host := e
	if h, port, err := net.SplitHostPort(e); err == nil {
		if port == "" {
			return "has an empty port"
		}
		host = h
	}
	if host == "" || strings.ContainsAny(host, " *?#@[]") || strings.Contains(host, "://") {
		return "is not a host, host:port or CIDR block (no scheme, path or wildcard)"
	}
	return ""
}
