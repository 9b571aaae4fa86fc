package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    []string // each on stdout
		wantErr string   // "" for success
	}{
		{"top level", nil, []string{"KEY", "name ", "predictor ", "limits ", "targets ", "Bounds one request and one replica."}, ""},
		{"section", []string{"limits"}, []string{"KEY:         limits\n", "TYPE:        section\n", "limits.timeout ", "limits.max_queue "}, ""},
		{"key", []string{"limits.timeout"}, []string{
			"KEY:         limits.timeout\n",
			"TYPE:        duration\n",
			"DEFAULT:     30s\n",
			"ALLOWED:     more than 0, at most 10m\n",
			"DESCRIPTION: Bounds one prediction;",
			"EXAMPLE:\n  limits:\n    timeout: 10s\n",
		}, ""},
		{"enum", []string{"targets.lambda.url_auth"}, []string{"TYPE:        enum\n", "DEFAULT:     AWS_IAM\n", "ALLOWED:     AWS_IAM, NONE\n"}, ""},
		{"list entry", []string{"predictor.models[0].name"}, []string{"KEY:         predictor.models[].name\n", "    - name: iris\n"}, ""},
		{"typo", []string{"limits.timout"}, nil, `cortex.yaml has no key "limits.timout"; did you mean limits.timeout?`},
		{"name in two sections", []string{"memory"}, nil, "did you mean wasm.memory or targets.lambda.memory?"},
		{"nothing close", []string{"limits.zzz"}, nil, "the keys of limits are limits.max_body, limits.timeout,"},
		{"two keys", []string{"name", "limits"}, nil, "accepts at most 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := run(t, "", append([]string{"explain"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if out != "" {
					t.Errorf("stdout %q on an error", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v\n%s", err, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout:\n%s\nwant it to contain %q", out, w)
				}
			}
		})
	}
}

func TestExplainJSON(t *testing.T) {
	out, _, err := run(t, "", "explain", "limits.timeout", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	for k, want := range map[string]any{"key": "limits.timeout", "type": "duration", "default": "30s", "max": "10m", "example": "10s"} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if d, _ := got["description"].(string); !strings.HasPrefix(d, "Bounds one prediction") {
		t.Errorf("description = %q", d)
	}

	out, _, err = run(t, "", "explain", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var all []keyJSON
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatalf("stdout is not a JSON list: %v\n%s", err, out)
	}
	if len(all) == 0 || all[0].Key != "name" {
		t.Errorf("top-level keys: %+v", all)
	}
	for _, k := range all {
		if k.Key == "targets" && (len(k.Keys) != 2 || len(k.Keys[1].Keys) == 0) {
			t.Errorf("targets does not nest its keys: %+v", k)
		}
	}

	if _, _, err := run(t, "", "explain", "-o", "yaml"); err == nil {
		t.Error("--output yaml accepted")
	}
}
