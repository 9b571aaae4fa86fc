package runtime

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cortexfn/cortex/functions/webhook"
)

// TestAsyncWebhookSSRF: through the function, a refused webhook URL is a
// 422 at submission and runs nothing; a receiver that redirects to an
// address the function may not reach is not followed there.
func TestAsyncWebhookSSRF(t *testing.T) {
	t.Setenv(testWebhookSecretEnv, webhook.NewSecret())
	var hits atomic.Int64
	internal := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer internal.Close()
	rc := &receiver{}
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.ServeHTTP(httptest.NewRecorder(), r)
		http.Redirect(w, r, internal.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	m := &model{}
	cfg := Config{Async: AsyncConfig{WebhookSecretEnv: testWebhookSecretEnv, WebhookAllow: []string{hostOf(t, redirector.URL)},
		WebhookBackoff: Duration(10 * time.Millisecond)}}
	_, srv := asyncRuntime(t, m, cfg)
	for _, hook := range []string{internal.URL + "/x", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/x", "http://localhost:1/x"} {
		resp, _, b := do(t, "POST", srv.URL+"/predict", `1`, map[string]string{"Prefer": "respond-async", "Cortex-Webhook": hook})
		if resp.StatusCode != 422 {
			t.Errorf("webhook %s: %d %s, want 422", hook, resp.StatusCode, b)
		}
	}
	if n := m.runs.Load(); n != 0 {
		t.Errorf("the model ran %d times for refused submissions", n)
	}
	_, p, _ := do(t, "POST", srv.URL+"/predict", `1`, map[string]string{"Prefer": "respond-async", "Cortex-Webhook": redirector.URL + "/hook"})
	poll(t, srv.URL, p.ID)
	waitFor(t, func() bool { return len(rc.deliveries()) >= 1 })
	time.Sleep(100 * time.Millisecond)
	if n, h := len(rc.deliveries()), hits.Load(); n != 1 || h != 0 {
		t.Errorf("a redirecting receiver: %d deliveries and %d hits on the redirect's target; want 1 and none", n, h)
	}
}
