package load_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cortexfn/cortex/internal/bench/load"
)

// TestChecked runs both clients against a server whose every third answer
// is wrong and whose every fifth is a 503: the wrong ones must be counted
// apart from the failures, and neither among the successes.
func TestChecked(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		i := n.Add(1)
		switch {
		case i%5 == 0:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case i%3 == 0:
			fmt.Fprint(w, "wrong")
		default:
			fmt.Fprint(w, "right")
		}
	}))
	defer srv.Close()
	check := func(body []byte) error {
		if string(body) != "right" {
			return fmt.Errorf("answered %q", body)
		}
		return nil
	}
	for _, tc := range []struct {
		name string
		run  func() load.Result
	}{
		{"raw", func() load.Result { return load.RunRawChecked(srv.URL, []string{"{}"}, 4, 200*time.Millisecond, check) }},
		{"go", func() load.Result {
			return load.RunChecked(srv.Client(), srv.URL, []string{"{}"}, 4, 200*time.Millisecond, check)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n.Store(0)
			r := tc.run()
			total := int(n.Load())
			if r.N == 0 || r.Wrong == 0 || r.Errors == 0 {
				t.Fatalf("got %d right, %d wrong, %d errors; want some of each", r.N, r.Wrong, r.Errors)
			}
			if got := r.N + r.Wrong + r.Errors; got != total {
				t.Errorf("counted %d answers, the server sent %d", got, total)
			}
			if want := total / 5; r.Errors != want {
				t.Errorf("got %d errors, want %d (the 503s)", r.Errors, want)
			}
			if r.Err == nil {
				t.Error("no first failure recorded")
			}

			if m := load.Merge([]load.Result{r, r}); m.Wrong != 2*r.Wrong || m.Err == nil {
				t.Errorf("merged: %d wrong, err %v; want %d and an error", m.Wrong, m.Err, 2*r.Wrong)
			}
		})
	}
}

// TestUnchecked keeps Run and RunRaw as they were: no body is checked.
func TestUnchecked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "anything")
	}))
	defer srv.Close()
	for name, r := range map[string]load.Result{
		"raw": load.RunRaw(srv.URL, []string{"{}"}, 2, 100*time.Millisecond),
		"go":  load.Run(srv.Client(), srv.URL, []string{"{}"}, 2, 100*time.Millisecond),
	} {
		if r.N == 0 || r.Errors+r.Wrong != 0 || r.Err != nil {
			t.Errorf("%s: %d right, %d wrong, %d errors (%v); want only right ones", name, r.N, r.Wrong, r.Errors, r.Err)
		}
	}
}

// TestOnlyWrong: an answer that failed its check is checked again the
// next time (only a passing one is remembered), and the failure says it
// was a wrong answer.
func TestOnlyWrong(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "wrong")
	}))
	defer srv.Close()
	var checked atomic.Int64
	r := load.RunRawChecked(srv.URL, []string{"{}"}, 2, 100*time.Millisecond, func([]byte) error {
		checked.Add(1)
		return errors.New("not right")
	})
	if r.N != 0 || r.Errors != 0 || r.Wrong == 0 || int(checked.Load()) != r.Wrong {
		t.Errorf("got %d right, %d errors, %d wrong, %d checked; want only wrong ones, each checked", r.N, r.Errors, r.Wrong, checked.Load())
	}
	if !errors.Is(r.Err, load.ErrWrongAnswer) {
		t.Errorf("the first failure is %v; want ErrWrongAnswer", r.Err)
	}
}
