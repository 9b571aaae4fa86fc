package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// client asks for the generation as server-sent events: net/http with one
// keep-alive connection, no compression, no proxy, the events read as they
// arrive.
type client struct {
	hc   *http.Client
	body []byte
}

func newClient(prompt string, tokens int) *client {
	body, err := json.Marshal(struct {
		Prompt      string  `json:"prompt"`
		MaxTokens   int     `json:"max_tokens"`
		Temperature float64 `json:"temperature"`
	}{prompt, tokens, 0})
	if err != nil {
		panic(err) // strings and numbers always marshal
	}
	return &client{
		hc:   &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 1}},
		body: body,
	}
}

// chunk is an "output" event's data on /predict: {"text": piece}, then
// the usage ({"finish_reason", "tokens", ...}).
type chunk struct {
	Text         *string `json:"text"`
	FinishReason string  `json:"finish_reason"`
	Tokens       int     `json:"tokens"`
}

// generate streams one generation from url and times it: the request's
// send to the first text event, the first text event to the last, and to
// the "done" event.
func (c *client) generate(ctx context.Context, url string) (sample, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(c.body))
	if err != nil {
		return sample{}, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return sample{}, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return sample{}, "", fmt.Errorf("POST %s: %s: %s", url, resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return sample{}, "", fmt.Errorf("POST %s: Content-Type %q, not text/event-stream", url, ct)
	}

	var (
		s           sample
		first, last time.Time
		text        strings.Builder
		usage       *chunk
		name        string
		data        []byte
	)
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return sample{}, "", fmt.Errorf("POST %s: reading the events: %w (no done event)", url, err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > 0 {
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				name = string(value)
			case "data":
				if data != nil {
					data = append(data, '\n')
				}
				data = append(data, value...)
			}
			continue
		}
		// A blank line ends the event.
		now := time.Now()
		switch name {
		case "output":
			var ch chunk
			if err := json.Unmarshal(data, &ch); err != nil {
				return sample{}, "", fmt.Errorf("POST %s: an output event's data %q: %w", url, data, err)
			}
			switch {
			case ch.Text != nil:
				if first.IsZero() {
					first = now
				}
				last = now
				text.WriteString(*ch.Text)
			case ch.FinishReason != "":
				usage = &ch
			}
		case "error":
			return sample{}, "", fmt.Errorf("POST %s: error event: %s", url, data)
		case "done":
			s.Whole = now.Sub(start)
			// Read to the end, so that the connection is reused.
			_, _ = io.Copy(io.Discard, br)
			if usage == nil {
				return sample{}, "", fmt.Errorf("POST %s: no usage chunk before done", url)
			}
			if usage.Tokens < 2 || first.IsZero() {
				return sample{}, "", fmt.Errorf("POST %s: %d tokens (%s); a rate needs two", url, usage.Tokens, usage.FinishReason)
			}
			s.TTFT, s.Decode, s.Tokens = first.Sub(start), last.Sub(first), usage.Tokens
			return s, text.String(), nil
		}
		name, data = "", nil
	}
}
