package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// answer is a function's answer to one request, after retries.
type answer struct {
	status int // 0 when no answer came (a transport error)
	ctype  string
	body   []byte
	err    error // the transport error, when status is 0
}

// retryable reports whether a status is a transient failure worth
// another attempt: too many requests, a gateway's or a host's overload.
func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// maxRetryAfter bounds how long one Retry-After is honoured.
const maxRetryAfter = 10 * time.Minute

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// send posts body to the route, retrying transient failures: 429, 502,
// 503 and 504 (after Retry-After when the answer has one, else an
// exponential backoff with jitter) and transport errors, up to
// e.retries more attempts. It returns the last answer; only ctx's end is
// an error.
func (e *engine) send(ctx context.Context, body []byte, ctype string) (answer, error) {
	var a answer
	for attempt := 0; ; attempt++ {
		var wait time.Duration
		a, wait = e.attempt(ctx, body, ctype)
		if ctx.Err() != nil {
			return a, ctx.Err()
		}
		if !(a.status == 0 || retryable(a.status)) || attempt >= e.o.Retries {
			return a, nil
		}
		if wait <= 0 {
			wait = e.backoff(attempt)
		}
		e.retries.Add(1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return a, ctx.Err()
		case <-t.C:
		}
	}
}

// attempt sends body once; wait is the answer's Retry-After, if any.
func (e *engine) attempt(ctx context.Context, body []byte, ctype string) (a answer, wait time.Duration) {
	if e.o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.o.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.o.URL, bytes.NewReader(body))
	if err != nil {
		return answer{err: err}, 0
	}
	for k, vs := range e.o.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := e.client.Do(req)
	if err != nil {
		return answer{err: err}, 0
	}
	defer resp.Body.Close()
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return answer{err: fmt.Errorf("reading the answer: %w", err)}, 0
	}
	a = answer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: bytes.Clone(buf.Bytes())}
	if retryable(resp.StatusCode) {
		wait = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return a, wait
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// backoff is the wait before retry attempt+1: BackoffBase doubled each
// time up to 30 s, with "equal jitter" (half of it fixed, half random),
// so that the workers a failure stopped together do not come back
// together.
func (e *engine) backoff(attempt int) time.Duration {
	d := e.o.BackoffBase << min(attempt, 20)
	d = min(d, 30*time.Second)
	return d/2 + rand.N(d/2+1)
}

// failure describes an answer that is not a success, for failures.jsonl.
func (a answer) failure() string {
	if a.status == 0 {
		if a.err == nil {
			return "no answer"
		}
		return a.err.Error()
	}
	msg := bytes.TrimSpace(a.body)
	var e struct {
		Error string `json:"error"`
	}
	if jsonType(a.ctype) && json.Unmarshal(msg, &e) == nil && e.Error != "" {
		return e.Error
	}
	if len(msg) > 1024 {
		msg = append(msg[:1024:1024], "..."...)
	}
	if len(msg) == 0 {
		return http.StatusText(a.status)
	}
	return string(msg)
}
