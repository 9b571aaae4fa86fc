package knative

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cortexfn/cortex/packager/deploy"
)

// coldStartTimeout bounds `cortex get`'s scrape of a function's metrics:
// the cold start is extra. (A function at zero replicas is not asked at
// all: Client.Running.)
const coldStartTimeout = 3 * time.Second

// maxMetrics bounds the metrics page read: a function's is tens of KB.
const maxMetrics = 4 << 20

// ColdStart reads the last cold start of the function whose base URL is
// base from its /metrics (cortex_cold_start_seconds): each phase's
// observation (runtime.Phases) in seconds, as the replica that answered
// the scrape recorded it. With token set the request carries it as a
// bearer token (a function with auth: answers /metrics only with it).
//
// The histogram holds one observation per phase per process, so a
// phase's sum over its count is that process's duration; a replica that
// has answered no prediction yet has no first_prediction. Any failure
// (unreachable, 401, no histogram: a function built before it existed)
// is returned; `cortex get` then says nothing of the cold start.
func ColdStart(ctx context.Context, hc *http.Client, base, token string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, coldStartTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, maxMetrics))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", req.URL, err)
	}
	f, ok := fams["cortex_cold_start_seconds"]
	if !ok {
		return nil, fmt.Errorf("%s has no cortex_cold_start_seconds", req.URL)
	}
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		h := m.GetHistogram()
		if h.GetSampleCount() == 0 {
			continue
		}
		for _, l := range m.GetLabel() {
			if l.GetName() == "phase" {
				out[l.GetValue()] = h.GetSampleSum() / float64(h.GetSampleCount())
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no cold start recorded", req.URL)
	}
	return out, nil
}

// withColdStart fills f's last cold start from its metrics, if they can be
// read in time; otherwise f says nothing of it.
func withColdStart(ctx context.Context, f *Function) {
	if f.URL == "" || f.Ready != "True" {
		return
	}
	var token string
	if name := f.tokenEnv; name != "" {
		if token = os.Getenv(name); token == "" {
			return // its metrics need the token, and we have none
		}
	}
	f.ColdStart, _ = ColdStart(ctx, http.DefaultClient, f.URL, token)
}

// oneFunction is `cortex get NAME`'s report of f.
func oneFunction(f Function) deploy.Report {
	return functionReport{functionTable([]Function{f}, true, "").(deploy.Table[Function])}
}

// functionReport is `cortex get NAME`'s report: the table, then the last
// cold start when the function's metrics said it.
type functionReport struct {
	deploy.Table[Function]
}

func (r functionReport) WriteText(stdout, stderr io.Writer) error {
	if err := r.Table.WriteText(stdout, stderr); err != nil {
		return err
	}
	if len(r.Items) != 1 {
		return nil
	}
	f := r.Items[0]
	switch {
	case len(f.ColdStart) > 0:
		_, err := fmt.Fprintf(stdout, "\nlast cold start: %s\n", deploy.FormatColdStart(f.ColdStart))
		return err
	case f.atZero && f.Ready == "True":
		// Said on stderr: it is about what get did not do, not the function.
		_, err := fmt.Fprintln(stderr, "no replica running: its last cold start is read from a running replica, and asking would start one")
		return err
	}
	return nil
}

var _ deploy.Report = functionReport{}
