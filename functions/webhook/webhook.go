// Package webhook signs and verifies webhooks as Standard Webhooks
// specifies (https://www.standardwebhooks.com/): the sender puts three
// headers on each delivery,
//
//	webhook-id:        the message's id, the same on every retry of it
//	webhook-timestamp: when it was sent, in seconds since the Unix epoch
//	webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">
//
// keyed with a secret shared with the receiver, written whsec_<base64>.
// The signature header may hold several signatures separated by spaces
// (while a secret is rotated); one that matches is enough.
//
// A function's runtime signs the webhooks of its asynchronous predictions
// with Sign; a receiver checks them with Verify, which is all it needs of
// this package:
//
//	body, _ := io.ReadAll(r.Body)
//	if err := webhook.Verify(os.Getenv("WEBHOOK_SECRET"), r.Header, body, webhook.DefaultTolerance); err != nil {
//		http.Error(w, err.Error(), http.StatusUnauthorized)
//		return
//	}
//
// The package is the standard library only, so a receiver written in Go
// can import it without the rest of the SDK. (No Go library of the
// Standard Webhooks project is among the modules this project may use, and
// the scheme is a dozen lines of HMAC.)
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a signed delivery.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts a secret written the Standard Webhooks way.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a delivery's timestamp may be from the
// receiver's clock, either way: the Standard Webhooks libraries' default.
// A replayed delivery older than this is refused.
const DefaultTolerance = 5 * time.Minute

// Errors Verify returns, wrapped with what was wrong.
var (
	// ErrMissingHeaders: a header of the scheme is absent.
	ErrMissingHeaders = errors.New("webhook: missing signature headers")
	// ErrTimestamp: the timestamp is not a number, or is outside the tolerance.
	ErrTimestamp = errors.New("webhook: timestamp outside the tolerance")
	// ErrSignature: no signature in the header matches the body.
	ErrSignature = errors.New("webhook: no matching signature")
	// ErrSecret: the secret is not whsec_ followed by base64.
	ErrSecret = errors.New("webhook: invalid secret")
)

// NewSecret returns a fresh random secret, whsec_ and 32 random bytes in
// base64.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// Key decodes secret into the HMAC key: the base64 after the whsec_
// prefix (which may be left out).
func Key(secret string) ([]byte, error) {
	s := strings.TrimPrefix(strings.TrimSpace(secret), SecretPrefix)
	if s == "" {
		return nil, fmt.Errorf("%w: it is empty; make one with webhook.NewSecret (whsec_ and base64)", ErrSecret)
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not whsec_ followed by standard base64: %w", ErrSecret, err)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("%w: %d bytes of key; use at least 16 (webhook.NewSecret makes 32)", ErrSecret, len(key))
	}
	return key, nil
}

// Sign returns the webhook-signature value for a message: "v1," and the
// base64 HMAC-SHA256 of "id.timestamp.body" keyed with secret's key.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := Key(secret)
	if err != nil {
		return "", err
	}
	return "v1," + sign(key, id, strconv.FormatInt(ts.Unix(), 10), body), nil
}

// Headers returns the three headers of a signed delivery of body as
// message id at ts.
func Headers(secret, id string, ts time.Time, body []byte) (http.Header, error) {
	sig, err := Sign(secret, id, ts, body)
	if err != nil {
		return nil, err
	}
	h := make(http.Header, 3)
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return h, nil
}

// Send makes one delivery: body, JSON, POSTed to url with client, signed
// with secret as message id (the same id on every retry of a message),
// and the receiver's answer read (up to 64 KiB) and closed. It returns the
// receiver's status; the caller decides what to make of it and whether to
// try again.
func Send(ctx context.Context, client *http.Client, url, secret, id, userAgent string, body []byte) (int, error) {
	h, err := Headers(secret, id, time.Now(), body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

func sign(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery: its three headers are present, its timestamp
// is within tolerance of now (either way; 0 means DefaultTolerance), and
// one of the v1 signatures in webhook-signature is body's, signed with
// secret. Signatures are compared in constant time. A nil error means the
// body came from the holder of the secret, recently; the receiver should
// still ignore a webhook-id it has handled already (a retry).
func Verify(secret string, header http.Header, body []byte, tolerance time.Duration) error {
	return verify(secret, header, body, tolerance, time.Now())
}

func verify(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := Key(secret)
	if err != nil {
		return err
	}
	id, ts, sigs := header.Get(HeaderID), header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	var missing []string
	for _, h := range [][2]string{{HeaderID, id}, {HeaderTimestamp, ts}, {HeaderSignature, sigs}} {
		if h[1] == "" {
			missing = append(missing, h[0])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingHeaders, strings.Join(missing, ", "))
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not a number of seconds", ErrTimestamp, HeaderTimestamp, ts)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(secs, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: sent %s from now, more than %s (a replay, or a clock far off)", ErrTimestamp, d.Round(time.Second), tolerance)
	}
	want := []byte(sign(key, id, ts, body))
	for _, s := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(s, ",")
		if ok && version == "v1" && hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return ErrSignature
}
