package functions_test

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/functions"
)

// chunks is a Stream that keeps what it was sent, and fails the Send after
// failAfter chunks when failAfter > 0.
type chunks struct {
	header    http.Header
	got       []string
	failAfter int
}

func (c *chunks) Header() http.Header { return c.header }

func (c *chunks) Send(b []byte) error {
	if c.failAfter > 0 && len(c.got) == c.failAfter {
		return errors.New("the caller went away")
	}
	c.got = append(c.got, string(b))
	return nil
}

type words struct{ text string }

func (w words) PredictStream(ctx context.Context, req *functions.Request, s functions.Stream) error {
	s.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for i, word := range strings.Fields(w.text) {
		if i > 0 {
			word = " " + word
		}
		if err := s.Send([]byte(word)); err != nil {
			return err
		}
	}
	return nil
}

func TestCollectConcatenatesText(t *testing.T) {
	resp, err := functions.Collect(context.Background(), words{"once upon a time"}, &functions.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "once upon a time" || resp.ContentType() != "text/plain; charset=utf-8" || resp.StatusCode() != 200 {
		t.Errorf("Collect: %d %q %q", resp.StatusCode(), resp.ContentType(), resp.Body)
	}
}

type token struct {
	Text  string `json:"text"`
	Index int    `json:"index"`
}

type prompt struct {
	Text string `json:"text"`
	N    int    `json:"n"`
}

func generate(ctx context.Context, in prompt) iter.Seq2[token, error] {
	return func(yield func(token, error) bool) {
		for i := range in.N {
			if i == 3 && in.Text == "fail" {
				yield(token{}, functions.Errorf(http.StatusUnprocessableEntity, "cannot go on after %d tokens", i))
				return
			}
			if !yield(token{Text: in.Text, Index: i}, nil) {
				return
			}
		}
	}
}

func TestTypedStream(t *testing.T) {
	p := functions.TypedStream(generate)
	s := &chunks{header: http.Header{}}
	// "stream" asks for a stream; the input type need not declare it.
	if err := p.PredictStream(context.Background(), &functions.Request{Body: []byte(`{"text":"a","n":3,"stream":true}`)}, s); err != nil {
		t.Fatal(err)
	}
	if want := []string{`{"text":"a","index":0}`, `{"text":"a","index":1}`, `{"text":"a","index":2}`}; strings.Join(s.got, "|") != strings.Join(want, "|") {
		t.Errorf("chunks %q, want %q", s.got, want)
	}
	if ct := s.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}

	resp, err := p.Predict(context.Background(), &functions.Request{Body: []byte(`{"text":"b","n":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(resp.Body), `[{"text":"b","index":0},{"text":"b","index":1}]`; got != want {
		t.Errorf("collected %s, want %s", got, want)
	}

	// An error midway ends the stream with it, after what was sent.
	s = &chunks{header: http.Header{}}
	err = p.PredictStream(context.Background(), &functions.Request{Body: []byte(`{"text":"fail","n":9}`)}, s)
	var fe *functions.Error
	if !errors.As(err, &fe) || fe.Status != http.StatusUnprocessableEntity || len(s.got) != 3 {
		t.Errorf("failing stream: %v after %d chunks, want a 422 after 3", err, len(s.got))
	}

	// A Send that fails stops the sequence.
	s = &chunks{header: http.Header{}, failAfter: 2}
	if err := p.PredictStream(context.Background(), &functions.Request{Body: []byte(`{"text":"c","n":100}`)}, s); err == nil || len(s.got) != 2 {
		t.Errorf("stream whose caller left: %v after %d chunks, want an error after 2", err, len(s.got))
	}

	// A misspelt field fails the input schema, a 422 (the "stream" key is
	// not one of its fields: it was left out first); a body that is not
	// JSON is a 400.
	for _, tt := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"txt":"a","n":1,"stream":true}`, http.StatusUnprocessableEntity, "$.text: missing; $.txt: unknown field"},
		{`{"text":`, http.StatusBadRequest, "invalid JSON"},
	} {
		err := p.PredictStream(context.Background(), &functions.Request{Body: []byte(tt.body)}, &chunks{header: http.Header{}})
		if !errors.As(err, &fe) || fe.Status != tt.status || !strings.Contains(fe.Message, tt.want) {
			t.Errorf("body %s: %v, want a %d saying %q", tt.body, err, tt.status, tt.want)
		}
	}
}
