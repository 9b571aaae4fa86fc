package main

import (
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// flagLine is a flag's line in a command's help: "  -o, --output string   text or json".
var flagLine = regexp.MustCompile(`^\s+(?:-\S, )?--([\w-]+)(?: (\S+))?`)

// valueNames is how pflag names a flag's value in help, by the value's type,
// when the usage text does not name it.
var valueNames = map[string]string{
	"bool": "", "boolfunc": "", "func": "value", "float64": "float", "int64": "int", "uint64": "uint",
	"stringSlice": "strings", "intSlice": "ints", "uintSlice": "uints", "boolSlice": "bools",
}

// TestHelpNamesFlagValues renders every command's help and checks each
// flag's line. pflag takes a `back-quoted` word in a flag's usage as the name
// of its value, so a usage that quotes a command that way garbles the help
// ("--onnxruntime go tool task setup   libonnxruntime.so.1 to ship"): no
// usage may hold a back quote, and every flag shows its value's type.
func TestHelpNamesFlagValues(t *testing.T) {
	root := newRoot(strings.NewReader(""), io.Discard, io.Discard)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var cmds []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.InitDefaultHelpFlag() // as Execute does, for the lookups below
		cmds = append(cmds, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for _, c := range cmds {
		path := strings.Fields(c.CommandPath())[1:]
		t.Run(strings.Join(append([]string{"cortex"}, path...), " "), func(t *testing.T) {
			help, _, err := run(t, "", append(path, "--help")...)
			if strings.HasSuffix(c.Short, "(not in this build)") {
				// A deploy command of a -tags nodeploy build: its help is
				// the error that says how to get the command.
				if err == nil || !strings.Contains(err.Error(), "make build") {
					t.Errorf("--help of a command not in this build: %v, want the error naming make build", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("--help: %v", err)
			}
			lines, inFlags := 0, false
			for _, line := range strings.Split(help, "\n") {
				if strings.Contains(line, "`") {
					t.Errorf("help line %q holds a back quote", line)
				}
				switch {
				case strings.HasSuffix(line, "Flags:"):
					inFlags = true
					continue
				case strings.TrimSpace(line) == "":
					inFlags = false
				}
				m := flagLine.FindStringSubmatch(line)
				if !inFlags || m == nil {
					continue
				}
				lines++
				f := c.Flags().Lookup(m[1])
				if f == nil {
					f = c.InheritedFlags().Lookup(m[1])
				}
				if f == nil {
					t.Errorf("help line %q: no flag --%s", line, m[1])
					continue
				}
				if strings.Contains(f.Usage, "`") {
					t.Errorf("--%s: usage %q holds a back quote, which pflag reads as the value's name", f.Name, f.Usage)
				}
				want, ok := valueNames[f.Value.Type()]
				if !ok {
					want = f.Value.Type()
				}
				if got, _, _ := strings.Cut(m[2], "[="); got != want {
					t.Errorf("help line %q: --%s shows its value as %q, want %q", line, f.Name, got, want)
				}
			}
			if lines == 0 {
				t.Errorf("no flag lines in the help (not even --help):\n%s", help)
			}
		})
	}
}

// TestPackageHelp checks the line of the flag that was garbled.
func TestPackageHelp(t *testing.T) {
	help, _, err := run(t, "", "package", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(help, "\n") {
		if strings.Contains(line, "--onnxruntime") {
			if !strings.Contains(line, "--onnxruntime string ") {
				t.Errorf("got %q, want --onnxruntime string", line)
			}
			return
		}
	}
	t.Errorf("no --onnxruntime in the help:\n%s", help)
}
