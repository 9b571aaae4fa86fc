package deploy_test

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/spf13/pflag"

	"github.com/cortexfn/cortex/packager/deploy"
	"github.com/cortexfn/cortex/packager/spec"
)

// platform is a Platform whose target is a stub that records its progress
// writer and the value of its one flag, --NAME-flag.
func platform(name string, opened *[]string) deploy.Platform {
	return deploy.Platform{
		Name: name,
		Doc:  map[deploy.Command]string{deploy.CommandGet: name + " paragraph"},
		Flags: func(fs *pflag.FlagSet, c deploy.Command) func(io.Writer) deploy.Target {
			v := fs.String(name+"-flag", "", "")
			if c == deploy.CommandDeploy {
				fs.Bool(name+"-deploy-only", false, "")
			}
			return func(io.Writer) deploy.Target {
				*opened = append(*opened, name+"="+*v)
				return stub{}
			}
		},
	}
}

type stub struct{ deploy.Target }

func TestPlatformsFor(t *testing.T) {
	ps := deploy.Platforms{platform("knative", nil), platform("lambda", nil)}
	tests := []struct {
		name, targets, want string
	}{
		{"no targets section", "", "knative"},
		{"only the second", "targets:\n  lambda: {arch: arm64}\n", "lambda"},
		{"only the first", "targets:\n  knative: {namespace: ml}\n", "knative"},
		{"both: the first", "targets:\n  knative: {namespace: ml}\n  lambda: {arch: arm64}\n", "knative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := spec.Parse([]byte("name: f\npredictor: {type: onnx, model: m.onnx}\n"+tt.targets), "")
			if err != nil {
				t.Fatal(err)
			}
			if got := ps.For(s); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPlatformsFlagsAndOpen(t *testing.T) {
	var opened []string
	ps := deploy.Platforms{platform("knative", &opened), platform("lambda", &opened)}
	for _, c := range []deploy.Command{deploy.CommandGet, deploy.CommandDeploy} {
		fs := pflag.NewFlagSet(string(c), pflag.ContinueOnError)
		open := ps.Flags(fs, c)
		if err := fs.Parse([]string{"--lambda-flag", "eu-west-1"}); err != nil {
			t.Fatal(err)
		}
		if got, want := fs.Lookup("knative-deploy-only") != nil, c == deploy.CommandDeploy; got != want {
			t.Errorf("%s: a flag for deploy only is there: %v, want %v", c, got, want)
		}
		opened = nil
		if _, ok := open.Open("lambda", nil); !ok || len(opened) != 1 || opened[0] != "lambda=eu-west-1" {
			t.Errorf("%s: Open(lambda): %v, opened %v", c, ok, opened)
		}
		if _, ok := open.Open("cloudrun", nil); ok {
			t.Errorf("%s: Open(cloudrun) found a target", c)
		}
	}
	if got, want := ps.Doc(deploy.CommandGet), "knative paragraph\n\nlambda paragraph"; got != want {
		t.Errorf("Doc(get) = %q, want %q", got, want)
	}
	if got := ps.Doc(deploy.CommandDelete); got != "" {
		t.Errorf("Doc(delete) = %q, want none", got)
	}
	if got := ps.Default(); got != "knative" {
		t.Errorf("Default() = %s, want the first", got)
	}
}

type row struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

func table(items []row, one bool) deploy.Table[row] {
	return deploy.Table[row]{
		Items: items, One: one, None: "no functions here",
		Columns: []string{"NAME", "URL"},
		Row:     func(r row) []string { return []string{r.Name, r.URL} },
	}
}

func TestTable(t *testing.T) {
	tests := []struct {
		name                 string
		report               deploy.Report
		json, stdout, stderr string
	}{
		{"list", table([]row{{"iris", "http://iris"}, {"echo", ""}}, false),
			`[{"name":"iris","url":"http://iris"},{"name":"echo"}]`, "NAME  URL\niris  http://iris\necho  -\n", ""},
		{"one", table([]row{{"iris", ""}}, true), `{"name":"iris"}`, "NAME  URL\niris  -\n", ""},
		{"none", table([]row{}, false), `[]`, "", "no functions here\n"},
		{"data", deploy.Data{V: row{Name: "iris"}, Text: func(stdout, stderr io.Writer) error {
			_, err := io.WriteString(stdout, "iris\n")
			return err
		}}, `{"name":"iris"}`, "iris\n", ""},
		{"data without text", deploy.Data{V: []int{1}}, `[1]`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.report)
			if err != nil || string(b) != tt.json {
				t.Errorf("json: %s, %v; want %s", b, err, tt.json)
			}
			var stdout, stderr bytes.Buffer
			if err := tt.report.WriteText(&stdout, &stderr); err != nil {
				t.Fatal(err)
			}
			if stdout.String() != tt.stdout || stderr.String() != tt.stderr {
				t.Errorf("text: stdout %q, stderr %q; want %q, %q", stdout.String(), stderr.String(), tt.stdout, tt.stderr)
			}
		})
	}
}
