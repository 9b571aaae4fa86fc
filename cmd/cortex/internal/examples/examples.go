// Package examples runs a function's examples/*.json against a running
// function and compares the answers: the heart of `cortex test`.
//
// One file holds one request and the response it should get:
//
//	{"description": "...",
//	 "request": {"method": "POST", "path": "/predict",
//	             "headers": {"Content-Type": "application/json"},
//	             "query": {"k": "v"}, "body": {...}},
//	 "response": {"status": 200, "body": {...}}}
//
// The request body is sent as JSON, unless the Content-Type is not JSON and
// the body is a string, which is then sent as it is (text, base64 is not
// decoded). The method defaults to POST and the path to /predict.
//
// The response matches when the status is the same and, when "body" is
// given, the body matches it: objects match when every key of the expected
// object is in the answer with a matching value (keys the answer adds, such
// as a request id, are ignored; order never matters), arrays must have the
// same length, and numbers may differ by the tolerance (default 1e-4,
// absolute or relative to the expected value; "tolerance" in "response" or
// at the top level changes it). For an error case, "error_contains" is a
// substring the answer's "error" field (or its body, when it is not JSON)
// must contain.
//
// A streamed answer (ask for one with "headers": {"Accept":
// "text/event-stream"}) is checked against "events": the server-sent
// events in order, each {"event": "output", "data": ...}, data matched as
// a body is (a JSON value, or a string for data that is not JSON); an
// expected event without "data" matches any.
package examples

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cortexfn/cortex/cmd/cortex/internal/client"
)

// DefaultTolerance is how far numbers may differ when an example says
// nothing.
const DefaultTolerance = 1e-4

// Example is one examples/*.json file.
type Example struct {
	// Name is the file name without .json.
	Name        string   `json:"-"`
	Description string   `json:"description"`
	Tolerance   *float64 `json:"tolerance,omitempty"`
	Request     struct {
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers"`
		Query   map[string]string `json:"query"`
		Body    json.RawMessage   `json:"body"`
	} `json:"request"`
	Response Expected `json:"response"`
}

// Expected is the response an example expects.
type Expected struct {
	Status        int             `json:"status"`
	Body          json.RawMessage `json:"body"`
	ErrorContains string          `json:"error_contains"`
	Tolerance     *float64        `json:"tolerance"`
	// Events are the server-sent events a streamed answer should carry.
	Events []Event `json:"events"`
}

// Event is one server-sent event of a streamed answer.
type Event struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// Load reads every examples/*.json in a function directory, sorted by name.
func Load(dir string) ([]Example, error) {
	files, err := filepath.Glob(filepath.Join(dir, "examples", "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Example
	var errs []error
	for _, f := range files {
		ex, err := LoadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, ex)
	}
	return out, errors.Join(errs...)
}

// LoadFile reads one example.
func LoadFile(path string) (Example, error) {
	var ex Example
	b, err := os.ReadFile(path)
	if err != nil {
		return ex, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ex); err != nil {
		return ex, fmt.Errorf("example %s: %w", path, err)
	}
	ex.Name = strings.TrimSuffix(filepath.Base(path), ".json")
	if ex.Response.Status == 0 {
		return ex, fmt.Errorf("example %s: response.status is required", path)
	}
	return ex, nil
}

// tolerance is the example's tolerance.
func (ex *Example) tolerance() float64 {
	switch {
	case ex.Response.Tolerance != nil:
		return *ex.Response.Tolerance
	case ex.Tolerance != nil:
		return *ex.Tolerance
	}
	return DefaultTolerance
}

// ClientRequest turns the example's request into a client.Request.
func (ex *Example) ClientRequest() (client.Request, error) {
	r := client.Request{Method: ex.Request.Method, Path: ex.Request.Path, Header: http.Header{}, Query: url.Values{}}
	if r.Method == "" {
		r.Method = http.MethodPost
	}
	for k, v := range ex.Request.Headers {
		r.Header.Set(k, v)
	}
	for k, v := range ex.Request.Query {
		r.Query.Set(k, v)
	}
	if len(ex.Request.Body) > 0 {
		r.Body = ex.Request.Body
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			r.Header.Set("Content-Type", "application/json")
		} else if !isJSON(ct) {
			var s string
			if json.Unmarshal(ex.Request.Body, &s) == nil {
				r.Body = []byte(s)
			}
		}
	}
	return r, nil
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// Result is the outcome of one example.
type Result struct {
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Pass        bool          `json:"pass"`
	Status      int           `json:"status"`
	WantStatus  int           `json:"want_status"`
	Latency     time.Duration `json:"-"`
	LatencyMS   float64       `json:"latency_ms"`
	// Problem says why the example failed.
	Problem string `json:"problem,omitempty"`
}

// Run sends the example's request to the function at base and checks the
// answer.
func Run(ctx context.Context, c *http.Client, base string, ex Example) Result {
	res := Result{Name: ex.Name, Description: ex.Description, WantStatus: ex.Response.Status}
	req, err := ex.ClientRequest()
	if err == nil {
		var resp *client.Response
		resp, err = client.Do(ctx, c, base, req)
		if err == nil {
			res.Status, res.Latency = resp.Status, resp.Latency
			res.LatencyMS = float64(resp.Latency.Microseconds()) / 1000
			err = Check(ex, resp.Status, resp.Body)
		}
	}
	if err != nil {
		res.Problem = err.Error()
	}
	res.Pass = err == nil
	return res
}

// Check compares a status and body with what the example expects.
func Check(ex Example, status int, body []byte) error {
	want := ex.Response
	if status != want.Status {
		return fmt.Errorf("status %d, want %d: %s", status, want.Status, snippet(body))
	}
	if want.ErrorContains != "" {
		msg := string(body)
		var e struct {
			Error *string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != nil {
			msg = *e.Error
		}
		if !strings.Contains(msg, want.ErrorContains) {
			return fmt.Errorf("error %q does not contain %q", msg, want.ErrorContains)
		}
	}
	if want.Events != nil {
		if err := checkEvents(want.Events, body, ex.tolerance()); err != nil {
			return err
		}
	}
	if len(want.Body) > 0 {
		var w, g any
		if err := json.Unmarshal(want.Body, &w); err != nil {
			return fmt.Errorf("the example's response.body: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&g); err != nil {
			// A non-JSON answer can still match an expected string.
			g = string(body)
		}
		if err := Compare(w, g, ex.tolerance()); err != nil {
			return err
		}
	}
	return nil
}

// checkEvents compares the server-sent events in body with want.
func checkEvents(want []Event, body []byte, tol float64) error {
	got := parseEvents(body)
	if len(got) != len(want) {
		return fmt.Errorf("%d events, want %d: %s", len(got), len(want), snippet(body))
	}
	for i, w := range want {
		g := got[i]
		if g.Event != w.Event {
			return fmt.Errorf("event %d is %q, want %q", i, g.Event, w.Event)
		}
		if len(w.Data) == 0 {
			continue
		}
		var wd, gd any
		if err := json.Unmarshal(w.Data, &wd); err != nil {
			return fmt.Errorf("the example's events[%d].data: %w", i, err)
		}
		dec := json.NewDecoder(strings.NewReader(g.Data))
		dec.UseNumber()
		if dec.Decode(&gd) != nil {
			gd = g.Data
		}
		if err := Compare(wd, gd, tol); err != nil {
			return fmt.Errorf("event %d (%s): %w", i, g.Event, err)
		}
	}
	return nil
}

// sseEvent is a parsed server-sent event.
type sseEvent struct{ Event, Data string }

// parseEvents reads the server-sent events of a whole body, as cortex
// predict reads them as they arrive (client.ReadEvents).
func parseEvents(body []byte) []sseEvent {
	var out []sseEvent
	_ = client.ReadEvents(bytes.NewReader(body), func(name, data string) error {
		out = append(out, sseEvent{name, data})
		return nil
	})
	return out
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// Compare reports how got differs from want (both decoded JSON), with the
// JSON path of the first difference. Objects in want match when each of
// their keys matches in got; numbers match within tol (absolute, or relative
// to want).
func Compare(want, got any, tol float64) error {
	return compare("$", want, got, tol)
}

func compare(path string, want, got any, tol float64) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: got %s, want an object", path, show(got))
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s.%s: missing", path, k)
			}
			if err := compare(path+"."+k, w[k], gv, tol); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok {
			return fmt.Errorf("%s: got %s, want an array", path, show(got))
		}
		if len(g) != len(w) {
			return fmt.Errorf("%s: got %d elements, want %d", path, len(g), len(w))
		}
		for i := range w {
			if err := compare(fmt.Sprintf("%s[%d]", path, i), w[i], g[i], tol); err != nil {
				return err
			}
		}
		return nil
	case float64, json.Number:
		wf, _ := number(w)
		gf, ok := number(got)
		if !ok {
			return fmt.Errorf("%s: got %s, want the number %v", path, show(got), w)
		}
		diff := math.Abs(gf - wf)
		if diff <= tol || diff <= tol*math.Abs(wf) {
			return nil
		}
		return fmt.Errorf("%s: got %v, want %v (tolerance %g)", path, gf, wf, tol)
	default:
		if gn, ok := got.(json.Number); ok {
			got = gn.String()
			if _, isNum := want.(string); isNum {
				return fmt.Errorf("%s: got the number %s, want %s", path, got, show(want))
			}
		}
		if want != got {
			return fmt.Errorf("%s: got %s, want %s", path, show(got), show(want))
		}
		return nil
	}
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func show(v any) string {
	if v == nil {
		return "null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// WriteTable prints results as a table: name, status, latency, result.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EXAMPLE\tSTATUS\tLATENCY\tRESULT")
	for _, r := range results {
		status := "-"
		if r.Status != 0 {
			status = fmt.Sprint(r.Status)
		}
		result := "pass"
		if !r.Pass {
			result = "FAIL: " + r.Problem
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, status, r.Latency.Round(10*time.Microsecond), result)
	}
	return tw.Flush()
}

// Summary is the machine-readable outcome of a test run.
type Summary struct {
	Function string   `json:"function"`
	Passed   int      `json:"passed"`
	Failed   int      `json:"failed"`
	Results  []Result `json:"results"`
}

// Summarize counts results.
func Summarize(function string, results []Result) Summary {
	s := Summary{Function: function, Results: results}
	for _, r := range results {
		if r.Pass {
			s.Passed++
		} else {
			s.Failed++
		}
	}
	return s
}
