package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/webhook"
	"github.com/cortexfn/cortex/runtime/webhookguard"
)

// hook is a prediction's webhook: where its events go, which ones, and
// the queue of those to send, in order (start, output, completed: at most
// one of each, so the queue never blocks the prediction).
type hook struct {
	url    string
	events []string
	queue  chan hookEvent
}

type hookEvent struct {
	name string
	res  adapters.Prediction
}

var webhookEvents = []string{adapters.EventStart, adapters.EventOutput, adapters.EventCompleted}

// newHook checks the webhook a submission asks for: its events, that the
// function can sign it, and that its URL may be reached (webhookguard):
// a 422 otherwise. nil without a webhook.
func (s *predictions) newHook(ctx context.Context, sub adapters.Submission) (*hook, error) {
	if sub.Webhook == "" {
		return nil, nil
	}
	if s.hookErr != nil {
		return nil, &functions.Error{Status: http.StatusInternalServerError, Message: "the function cannot send webhooks: its configuration is wrong; see its log",
			Err: s.hookErr}
	}
	if s.secret == "" {
		return nil, &functions.Error{Status: http.StatusUnprocessableEntity, Message: "this function sends no webhooks: it has no secret to sign them with " +
			"(async.webhook_secret_env in cortex.yaml names the variable that holds one); poll GET /predictions/{id} instead"}
	}
	h := &hook{url: sub.Webhook, queue: make(chan hookEvent, len(webhookEvents))}
	for _, e := range sub.Events {
		if !slices.Contains(webhookEvents, e) {
			return nil, &functions.Error{Status: http.StatusBadRequest, Message: fmt.Sprintf(
				"Cortex-Webhook-Events: unknown event %q; use %s", e, strings.Join(webhookEvents, ", "))}
		}
		if !slices.Contains(h.events, e) {
			h.events = append(h.events, e)
		}
	}
	if len(h.events) == 0 {
		h.events = []string{adapters.EventCompleted}
	}
	if err := s.guard.Check(ctx, sub.Webhook); err != nil {
		return nil, err
	}
	return h, nil
}

// send queues the event when the webhook asked for it. Called with
// predictions.mu held, so events queue in the order they happen.
func (h *hook) send(name string, res adapters.Prediction) {
	if h != nil && slices.Contains(h.events, name) {
		h.queue <- hookEvent{name, res}
	}
}

// close ends the queue, after the completed event.
func (h *hook) close() {
	if h != nil {
		close(h.queue)
	}
}

// deliver sends p's webhook events as they come, then releases the
// admission Submit held for it. The completed event is sent in up to
// async.webhook_attempts attempts; start and output, which a later
// event supersedes, in one.
func (s *predictions) deliver(p *prediction, h *hook) {
	defer s.r.leave()
	for ev := range h.queue {
		attempts := 1
		if ev.name == adapters.EventCompleted {
			attempts = s.cfg.WebhookAttempts
		}
		s.post(h.url, ev, attempts)
	}
}

// post sends one event: the prediction's resource as JSON, signed as
// Standard Webhooks says, with the same webhook-id on every attempt. A
// 2xx answer delivers it. A connection error or another answer is tried
// again after a backoff (async.webhook_backoff, doubled each time, with
// jitter), except a redirect, which is never followed (it could lead
// anywhere the guard refuses), and an address the guard refuses. While
// the function drains, the next attempt is made at once and is the last.
func (s *predictions) post(url string, ev hookEvent, attempts int) {
	body, err := json.Marshal(ev.res)
	if err != nil {
		s.r.log.Error("encoding a webhook", "prediction", ev.res.ID, "err", err)
		return
	}
	msgID := "msg_" + ev.res.ID + "_" + ev.name
	log := s.r.log.With("prediction", ev.res.ID, "event", ev.name, "webhook", webhookguard.Redact(url))
	backoff := s.cfg.WebhookBackoff.D()
	for i := 1; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		status, err := webhook.Send(ctx, s.client, url, s.secret, msgID, "cortex-webhook/"+version(), body)
		cancel()
		if settled, why := webhookguard.Settled(status, err); settled {
			if why != "" {
				log.Warn("webhook not delivered: "+why, "status", status)
			} else {
				log.Debug("webhook delivered", "attempt", i)
			}
			return
		}
		if i >= attempts {
			log.Warn("webhook not delivered; giving up", "attempts", i, "status", status, "err", err)
			return
		}
		log.Info("webhook attempt failed; retrying", "attempt", i, "status", status, "err", err)
		if !s.sleep(backoff + rand.N(backoff/4+1)) {
			attempts = i + 1 // draining: one last attempt, now
		}
		backoff *= 2
	}
}

// sleep waits d, and reports false, at once, when the function starts
// draining: a drain does not wait out a backoff.
func (s *predictions) sleep(d time.Duration) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if s.r.draining.Load() {
			return false
		}
		time.Sleep(min(time.Until(end), 50*time.Millisecond))
	}
	return !s.r.draining.Load()
}
