package activation_test

import (
	"strings"
	"testing"

	"github.com/cortexfn/cortex/runtime/activation"
)

// TestInheritRefusesWhatIsWrong: without the variables a process was not
// activated; with them wrong it says which, before it takes over any
// descriptor.
func TestInheritRefusesWhatIsWrong(t *testing.T) {
	t.Setenv(activation.EnvListenFD, "")
	t.Setenv(activation.EnvControlFD, "")
	if in, err := activation.Inherit(); in != nil || err != nil {
		t.Fatalf("no variables: %v %v, want nothing", in, err)
	}
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{activation.EnvListenFD: "3"}, "go together"},
		{map[string]string{activation.EnvListenFD: "3", activation.EnvControlFD: "4", activation.EnvReportInterval: "soon"}, activation.EnvReportInterval},
		{map[string]string{activation.EnvListenFD: "3", activation.EnvControlFD: "4", activation.EnvReportInterval: "-1s"}, "positive duration"},
		{map[string]string{activation.EnvListenFD: "3", activation.EnvControlFD: "4", activation.EnvAllowedHosts: "http://x"}, activation.EnvAllowedHosts},
		{map[string]string{activation.EnvListenFD: "1", activation.EnvControlFD: "4"}, "3 or more"},
	} {
		for _, name := range []string{activation.EnvListenFD, activation.EnvControlFD, activation.EnvReportInterval, activation.EnvAllowedHosts} {
			t.Setenv(name, tt.env[name])
		}
		if _, err := activation.Inherit(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want an error naming %q", tt.env, err, tt.want)
		}
	}
}

// TestReportRoundTrip: a report's line parses back to it; other lines do not.
func TestReportRoundTrip(t *testing.T) {
	r := activation.Report{InFlight: 3, Peak: 7, Served: 1 << 40}
	line := string(r.Append(nil))
	got, err := activation.ParseReport(strings.TrimSuffix(line, "\n"))
	if err != nil || got != r {
		t.Errorf("%q: %+v %v", line, got, err)
	}
	for _, bad := range []string{"", "report 1 2", "report -1 0 0", "quiesce", "report a b c"} {
		if _, err := activation.ParseReport(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
