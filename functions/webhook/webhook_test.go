package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// The example of the Standard Webhooks specification (and of the
// libraries' tests): this secret, id, timestamp and payload sign to this.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specPayload   = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignSpecExample(t *testing.T) {
	got, err := Sign(specSecret, specID, time.Unix(specTimestamp, 0), []byte(specPayload))
	if err != nil {
		t.Fatal(err)
	}
	if got != specSignature {
		t.Errorf("Sign = %q, want the specification's %q", got, specSignature)
	}
}

func TestVerify(t *testing.T) {
	at := time.Unix(specTimestamp, 0)
	signed := func(mod func(h http.Header)) http.Header {
		h := http.Header{}
		h.Set(HeaderID, specID)
		h.Set(HeaderTimestamp, strconv.Itoa(specTimestamp))
		h.Set(HeaderSignature, specSignature)
		if mod != nil {
			mod(h)
		}
		return h
	}
	other := NewSecret()
	tests := []struct {
		name   string
		secret string
		header http.Header
		body   string
		now    time.Time
		want   error
	}{
		{name: "valid", header: signed(nil), body: specPayload, now: at},
		{name: "valid within the tolerance", header: signed(nil), body: specPayload, now: at.Add(4 * time.Minute)},
		{name: "one of several signatures", header: signed(func(h http.Header) {
			h.Set(HeaderSignature, "v1,Zm9vYmFy v2,abc "+specSignature)
		}), body: specPayload, now: at},
		{name: "a tampered body", header: signed(nil), body: `{"test": 2432232315}`, now: at, want: ErrSignature},
		{name: "another id", header: signed(func(h http.Header) { h.Set(HeaderID, "msg_other") }), body: specPayload, now: at, want: ErrSignature},
		{name: "another secret", secret: other, header: signed(nil), body: specPayload, now: at, want: ErrSignature},
		{name: "only another version", header: signed(func(h http.Header) {
			h.Set(HeaderSignature, "v2,"+specSignature[3:])
		}), body: specPayload, now: at, want: ErrSignature},
		{name: "too old", header: signed(nil), body: specPayload, now: at.Add(6 * time.Minute), want: ErrTimestamp},
		{name: "from the future", header: signed(nil), body: specPayload, now: at.Add(-6 * time.Minute), want: ErrTimestamp},
		{name: "not a timestamp", header: signed(func(h http.Header) { h.Set(HeaderTimestamp, "yesterday") }), body: specPayload, now: at, want: ErrTimestamp},
		{name: "no signature", header: signed(func(h http.Header) { h.Del(HeaderSignature) }), body: specPayload, now: at, want: ErrMissingHeaders},
		{name: "a bad secret", secret: "whsec_not base64!", header: signed(nil), body: specPayload, now: at, want: ErrSecret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret := tc.secret
			if secret == "" {
				secret = specSecret
			}
			err := verify(secret, tc.header, []byte(tc.body), DefaultTolerance, tc.now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	secret := NewSecret()
	body := []byte(`{"id":"p1","status":"succeeded"}`)
	h, err := Headers(secret, "msg_1", time.Now(), body)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(secret, h, body, 0); err != nil {
		t.Errorf("Verify of what Headers signed: %v", err)
	}
	if err := Verify(secret, h, append(body, ' '), 0); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify of a changed body = %v, want ErrSignature", err)
	}
}

// Send's delivery is what Verify takes, and it returns the receiver's
// status, whatever it is.
func TestSend(t *testing.T) {
	secret := NewSecret()
	var verr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		verr = Verify(secret, r.Header, body, DefaultTolerance)
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("User-Agent") != "test-agent" || r.Header.Get(HeaderID) != "msg_1" {
			verr = fmt.Errorf("headers %v", r.Header)
		}
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	status, err := Send(context.Background(), srv.Client(), srv.URL, secret, "msg_1", "test-agent", []byte(`{"id":"1"}`))
	if err != nil || status != http.StatusTeapot {
		t.Fatalf("Send: %d %v, want the receiver's 418", status, err)
	}
	if verr != nil {
		t.Errorf("the receiver could not verify the delivery: %v", verr)
	}
	if _, err := Send(context.Background(), srv.Client(), srv.URL, "not-a-secret", "msg_1", "a", nil); err == nil {
		t.Error("Send with a malformed secret: no error")
	}
}
