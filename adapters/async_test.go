package adapters

import (
	"net/http"
	"testing"
	"time"
)

func TestParsePrefer(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		async  bool
		wait   time.Duration
	}{
		{name: "none"},
		{name: "respond-async", values: []string{"respond-async"}, async: true},
		{name: "with wait", values: []string{"respond-async, wait=5"}, async: true, wait: 5 * time.Second},
		{name: "case and spaces", values: []string{"  Respond-Async ;foo=bar ,WAIT = 3"}, async: true, wait: 3 * time.Second},
		{name: "two headers", values: []string{"return=minimal", "respond-async"}, async: true},
		{name: "a quoted comma", values: []string{`foo="a, respond-async", wait=2`}, wait: 2 * time.Second},
		{name: "first wins", values: []string{"wait=1, wait=9"}, wait: time.Second},
		{name: "not a number", values: []string{"respond-async, wait=soon"}, async: true},
		{name: "another preference", values: []string{"respond-asyncx"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.values {
				h.Add("Prefer", v)
			}
			p := ParsePrefer(h)
			if got := p.RespondAsync(); got != tc.async {
				t.Errorf("RespondAsync = %v, want %v (%v)", got, tc.async, p)
			}
			if got := p.Wait(); got != tc.wait {
				t.Errorf("Wait = %v, want %v (%v)", got, tc.wait, p)
			}
		})
	}
}

func TestPredictionRoute(t *testing.T) {
	for path, want := range map[string][3]any{
		"/predictions/abc":        {"abc", "", true},
		"/predictions/abc/cancel": {"abc", "cancel", true},
		"/predictions/abc/other":  {"", "", false},
		"/predictions/":           {"", "", false},
		"/predictions":            {"", "", false},
	} {
		id, action, ok := PredictionRoute(path)
		if id != want[0] || action != want[1] || ok != want[2] {
			t.Errorf("PredictionRoute(%q) = %q, %q, %v; want %v", path, id, action, ok, want)
		}
		if ServiceRoute(path) != ok {
			t.Errorf("ServiceRoute(%q) = %v, want %v", path, !ok, ok)
		}
	}
}
