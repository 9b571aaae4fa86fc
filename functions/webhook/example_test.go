package webhook_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/cortexfn/cortex/functions/webhook"
)

// A receiver checks each delivery before it trusts the body.
func ExampleVerify() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // from the receiver's environment
	body := []byte(`{"id":"p1","status":"succeeded"}`)

	// What a function's runtime sends (Headers signs with Sign):
	h, _ := webhook.Headers(secret, "msg_p1_completed", time.Now(), body)
	req, _ := http.NewRequest(http.MethodPost, "https://receiver.example.com/hook", nil)
	req.Header = h

	fmt.Println(webhook.Verify(secret, req.Header, body, webhook.DefaultTolerance))
	fmt.Println(webhook.Verify(secret, req.Header, []byte(`{"id":"p1","status":"failed"}`), webhook.DefaultTolerance))
	// Output:
	// <nil>
	// webhook: no matching signature
}
