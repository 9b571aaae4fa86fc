package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cortexfn/cortex/packager/spec"
)

func explainCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "explain [KEY]",
		Short: "Describe the keys of cortex.yaml",
		Long: "Describe the keys of cortex.yaml, like kubectl explain.\n\n" +
			"Without KEY, list the top-level keys. With a section such as limits, describe it and list its keys;\n" +
			"with a key such as limits.timeout, print its type, default, allowed values, description and an example.\n" +
			"The same definitions make docs/cortex-yaml.md.",
		Example: "  cortex explain\n" +
			"  cortex explain limits\n" +
			"  cortex explain limits.timeout\n" +
			"  cortex explain predictor.models.name -o json",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 0 {
				top := spec.Children("")
				if output == "json" {
					defs := make([]keyJSON, len(top))
					for i, k := range top {
						defs[i] = definition(k)
					}
					return writeJSON(out, defs)
				}
				return writeKeys(out, top, "")
			}
			k, err := spec.Lookup(args[0])
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(out, definition(k))
			}
			return writeKey(out, k)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// keyJSON is a key's definition in `cortex explain -o json`, with the keys
// under it.
type keyJSON struct {
	Key         string    `json:"key"`
	Type        spec.Kind `json:"type"`
	Default     string    `json:"default,omitempty"`
	Allowed     string    `json:"allowed,omitempty"`
	Values      []string  `json:"values,omitempty"`
	Min         string    `json:"min,omitempty"`
	Max         string    `json:"max,omitempty"`
	Description string    `json:"description"`
	Example     string    `json:"example"`
	Keys        []keyJSON `json:"keys,omitempty"`
}

func definition(k spec.Key) keyJSON {
	d := keyJSON{
		Key:         k.Path,
		Type:        k.Type,
		Default:     k.Default,
		Allowed:     k.Allowed(),
		Values:      k.Values,
		Min:         k.Min,
		Max:         k.Max,
		Description: k.Description,
		Example:     k.Example,
	}
	for _, c := range spec.Children(k.Path) {
		d.Keys = append(d.Keys, definition(c))
	}
	return d
}

// writeKey prints one key's definition and, for a section or list, the
// keys under it.
func writeKey(w io.Writer, k spec.Key) error {
	var b strings.Builder
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(&b, "%-13s%s\n", name+":", wrap(value, 13, 80))
		}
	}
	field("KEY", k.Path)
	field("TYPE", string(k.Type))
	switch k.Type {
	case spec.KindDuration, spec.KindSize, spec.KindQuantity:
		field("FORMAT", k.Type.Syntax())
	}
	field("DEFAULT", k.Default)
	field("ALLOWED", k.Allowed())
	field("DESCRIPTION", k.Description)
	b.WriteString("EXAMPLE:\n")
	for _, l := range strings.SplitAfter(strings.TrimSuffix(k.Snippet(), "\n"), "\n") {
		b.WriteString("  " + l)
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if children := spec.Children(k.Path); len(children) > 0 {
		fmt.Fprintln(w)
		return writeKeys(w, children, "  ")
	}
	return nil
}

// writeKeys prints a table of keys, one line each.
func writeKeys(w io.Writer, keys []spec.Key, indent string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%sKEY\tTYPE\tDEFAULT\tDESCRIPTION\n", indent)
	for _, k := range keys {
		def := k.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\n", indent, k.Path, k.Type, def, k.Summary())
	}
	return tw.Flush()
}

// wrap breaks s into lines of at most width columns, continuing each line
// at column indent.
func wrap(s string, indent, width int) string {
	var b strings.Builder
	col := indent
	for i, word := range strings.Fields(s) {
		if i > 0 {
			if col+1+len(word) > width {
				b.WriteString("\n" + strings.Repeat(" ", indent))
				col = indent
			} else {
				b.WriteString(" ")
				col++
			}
		}
		b.WriteString(word)
		col += len(word)
	}
	return b.String()
}
