package http

import (
	"context"
	"net/http"
	"strings"

	"github.com/cortexfn/cortex/adapters"
	"github.com/cortexfn/cortex/functions"
)

// The headers of a background prediction's request (see docs/async.md).
const (
	// HeaderWebhook names the URL a background prediction's events are
	// sent to; the query parameter webhook does the same.
	HeaderWebhook = "Cortex-Webhook"
	// HeaderWebhookEvents lists the events the webhook gets: start,
	// output, completed (the default).
	HeaderWebhookEvents = "Cortex-Webhook-Events"
)

// submit answers a prediction route's request that prefers an
// asynchronous answer (Prefer: respond-async), or a PUT /predictions/{id}
// (id set): the engine admits it as a background prediction and the
// caller gets its resource, 202 with Location while it runs. A wait=N
// preference waits up to N seconds for it to finish first; a PUT without
// respond-async waits for it to finish (within the request's own time).
func (h *Handler) submit(w http.ResponseWriter, r *http.Request, req *functions.Request, ae adapters.AsyncEngine, id string) {
	prefs := adapters.ParsePrefer(r.Header)
	sub := adapters.Submission{ID: id, Webhook: r.Header.Get(HeaderWebhook)}
	if sub.Webhook == "" && req.Query != nil {
		sub.Webhook = req.Query.Get("webhook")
	}
	for _, v := range r.Header.Values(HeaderWebhookEvents) {
		for e := range strings.SplitSeq(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				sub.Events = append(sub.Events, strings.ToLower(e))
			}
		}
	}
	// The prediction gets its own request: what asked for the
	// background is not part of it.
	req.Header = req.Header.Clone()
	for _, k := range []string{"Prefer", HeaderWebhook, HeaderWebhookEvents} {
		req.Header.Del(k)
	}
	if req.Query.Has("webhook") {
		q := make(map[string][]string, len(req.Query))
		for k, v := range req.Query {
			if k != "webhook" {
				q[k] = v
			}
		}
		req.Query = q
	}
	p, _, err := ae.Submit(r.Context(), req, sub)
	if err != nil {
		writeResponse(w, adapters.ErrorResponse(err, req.ID))
		return
	}
	async := prefs.RespondAsync()
	if wait := prefs.Wait(); !p.Done() && (wait > 0 || !async) {
		ctx := r.Context()
		if async {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, wait)
			defer cancel()
		}
		if got, err := ae.Wait(ctx, p.ID); err == nil {
			p = got
		}
	}
	if async {
		w.Header().Set("Preference-Applied", "respond-async")
	}
	writePrediction(w, p)
}

// predictions serves /predictions/{id} (GET, or PUT to make it) and
// /predictions/{id}/cancel (POST), for an engine that runs background
// predictions; 404 for another.
func (h *Handler) predictions(w http.ResponseWriter, r *http.Request) {
	ae, ok := h.e.(adapters.AsyncEngine)
	id, action, route := adapters.PredictionRoute(r.URL.Path)
	if !ok || !route {
		h.notFound(w, r)
		return
	}
	if action == "cancel" {
		if allow(w, r, http.MethodPost) {
			p, err := ae.Cancel(r.Context(), id)
			answerPrediction(w, p, err)
		}
		return
	}
	if !allow(w, r, http.MethodGet, http.MethodHead, http.MethodPut) {
		return
	}
	if r.Method != http.MethodPut {
		p, err := ae.Prediction(r.Context(), id)
		answerPrediction(w, p, err)
		return
	}
	// PUT /predictions/{id}: the body is a request to the function's
	// own route (?model= names a model), made under the caller's id.
	req, err := Request(r, h.e.MaxBody())
	if err != nil {
		writeResponse(w, adapters.ErrorResponse(err, r.Header.Get("X-Request-Id")))
		return
	}
	req.Method, req.Path = http.MethodPost, "/predict"
	adapters.Route(req)
	h.submit(w, r, req, ae, id)
}

func answerPrediction(w http.ResponseWriter, p adapters.Prediction, err error) {
	if err != nil {
		writeResponse(w, adapters.ErrorResponse(err, ""))
		return
	}
	writePrediction(w, p)
}

// writePrediction answers a prediction's resource: 200 once it has
// finished, else 202 with Location, where to ask again.
func writePrediction(w http.ResponseWriter, p adapters.Prediction) {
	status := http.StatusOK
	if !p.Done() {
		status = http.StatusAccepted
		w.Header().Set("Location", p.URLs.Get)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, p)
}
