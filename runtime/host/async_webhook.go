package host

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

// The host's webhooks are the runtime's (runtime/async_webhook.go): the
// same resource as JSON, signed with functions/webhook, the same message
// ids (msg_{id}_{event}), the same guard (package webhookguard). What
// differs is that the completed event's delivery is in the state file:
// each attempt is recorded, so a host killed during the backoff goes on
// with the next attempt when it starts again, and a delivery done is not
// made again.

var webhookEvents = []string{adapters.EventStart, adapters.EventOutput, adapters.EventCompleted}

// hookClient is a function's webhook guard and the client that dials
// through it, kept while the function's allow list stays the same.
type hookClient struct {
	allow  string
	guard  *webhookguard.Guard
	client *http.Client
}

// hooks returns f's guard and client for set.
func (q *asyncQueue) hooks(f *function, set AsyncSettings) (*hookClient, error) {
	allow := strings.Join(set.WebhookAllow, "\n")
	q.mu.Lock()
	defer q.mu.Unlock()
	if hc := q.guards[f.name]; hc != nil && hc.allow == allow {
		return hc, nil
	}
	g, err := webhookguard.New(set.WebhookAllow)
	if err != nil {
		return nil, err
	}
	hc := &hookClient{allow: allow, guard: g, client: g.Client()}
	q.guards[f.name] = hc
	return hc, nil
}

// checkHook checks a submission's webhook: the function can sign it,
// its events are known, and the guard lets its URL through (else 422).
// It returns the events, the default filled in.
func (q *asyncQueue) checkHook(ctx context.Context, f *function, set AsyncSettings, raw string, events []string) ([]string, error) {
	if set.WebhookSecret == "" {
		return nil, &functions.Error{Status: http.StatusUnprocessableEntity, Message: fmt.Sprintf(
			"function %q sends no webhooks: it has no secret to sign them with (async.webhook_secret_env in cortex.yaml names the variable, in cortex serve's environment, that holds one); poll GET /%s/predictions/{id} instead", f.name, f.name)}
	}
	if _, err := webhook.Key(set.WebhookSecret); err != nil {
		return nil, &functions.Error{Status: http.StatusInternalServerError, Message: fmt.Sprintf("function %q cannot sign webhooks: its secret (async.webhook_secret_env): %v", f.name, err)}
	}
	for _, e := range events {
		if !slices.Contains(webhookEvents, e) {
			return nil, &functions.Error{Status: http.StatusBadRequest, Message: fmt.Sprintf(
				"Cortex-Webhook-Events: unknown event %q; use %s", e, strings.Join(webhookEvents, ", "))}
		}
	}
	if len(events) == 0 {
		events = []string{adapters.EventCompleted}
	}
	hc, err := q.hooks(f, set)
	if err != nil {
		return nil, &functions.Error{Status: http.StatusInternalServerError, Message: fmt.Sprintf("function %q cannot send webhooks: %v", f.name, err)}
	}
	if err := hc.guard.Check(ctx, raw); err != nil {
		return nil, err
	}
	return events, nil
}

// goEvent sends a start or output event, once: a later event supersedes
// it, and it is not kept in the state file.
func (q *asyncQueue) goEvent(f *function, rec *record, name string) {
	res := rec.Res
	res.URLs = adapters.PredictionURLs{Get: "/" + f.name + res.URLs.Get, Cancel: "/" + f.name + res.URLs.Cancel}
	q.wg.Go(func() {
		set := f.async()
		if _, err := q.attempt(f, set, rec.Webhook, name, res); err != nil {
			q.h.opts.logger.Info("webhook event not delivered", "function", f.name, "prediction", res.ID, "event", name, "err", err)
		}
	})
}

func (q *asyncQueue) goDeliver(f *function, id string) {
	q.wg.Go(func() { q.deliver(f, id) })
}

// deliver sends the completed event of a finished prediction: attempts
// up to async.webhook_attempts, each recorded, with a backoff doubled
// each time (from the attempts recorded, so a restart goes on with the
// schedule). A 2xx delivers it; a redirect (never followed) or an
// address the guard refuses ends it.
func (q *asyncQueue) deliver(f *function, id string) {
	log := q.h.opts.logger.With("function", f.name, "prediction", id)
	for {
		rec, err := q.store.get(f.name, id)
		if err != nil || rec == nil || !rec.hookPending() {
			return
		}
		set := f.async()
		res := rec.Res
		res.URLs = adapters.PredictionURLs{Get: "/" + f.name + res.URLs.Get, Cancel: "/" + f.name + res.URLs.Cancel}
		status, err := q.attempt(f, set, rec.Webhook, adapters.EventCompleted, res)
		if q.ctx.Err() != nil {
			return // cut off by the shutdown: not an attempt; made again at the restart
		}
		done, why := webhookguard.Settled(status, err)
		switch {
		case why != "":
			log.Warn("webhook not delivered: "+why, "status", status)
		case !done && rec.HookAttempts+1 >= set.WebhookAttempts:
			log.Warn("webhook not delivered; giving up", "attempts", rec.HookAttempts+1, "status", status, "err", err)
			done = true
		}
		rec, err = q.store.update(f.name, id, func(rec *record) (*record, error) {
			if rec == nil {
				return nil, nil
			}
			rec.HookAttempts++
			rec.HookDone = rec.HookDone || done
			return rec, nil
		})
		if err != nil || rec == nil || done {
			return
		}
		backoff := set.WebhookBackoff << min(rec.HookAttempts-1, 16)
		log.Info("webhook attempt failed; retrying", "attempt", rec.HookAttempts, "status", status, "err", err, "in", backoff)
		select {
		case <-time.After(backoff + rand.N(backoff/4+1)):
		case <-q.ctx.Done():
			return // the next attempt is made when the host starts again
		}
	}
}

// attempt makes one delivery and returns the receiver's status.
func (q *asyncQueue) attempt(f *function, set AsyncSettings, url, event string, res adapters.Prediction) (int, error) {
	hc, err := q.hooks(f, set)
	if err != nil {
		return 0, err
	}
	body, err := json.Marshal(res)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(q.ctx, 30*time.Second)
	defer cancel()
	return webhook.Send(ctx, hc.client, url, set.WebhookSecret, "msg_"+res.ID+"_"+event, "cortex-serve-webhook", body)
}
