package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Report is what a Target call did or found. It marshals (encoding/json)
// to what --output json prints, and yaml what --output yaml prints;
// WriteText prints it as text: what a script reads (a URL, a table, a
// manifest) to stdout, what a person reads to stderr.
type Report interface {
	WriteText(stdout, stderr io.Writer) error
}

// Data is a Report of a value: it marshals as V, and Text (when set)
// prints it as text.
type Data struct {
	V    any
	Text func(stdout, stderr io.Writer) error
}

// MarshalJSON marshals d.V.
func (d Data) MarshalJSON() ([]byte, error) { return json.Marshal(d.V) }

// WriteText runs d.Text.
func (d Data) WriteText(stdout, stderr io.Writer) error {
	if d.Text == nil {
		return nil
	}
	return d.Text(stdout, stderr)
}

// Table is a Report of items of one kind: as data, the items (or, for
// One, the item asked for by name); as text, a table with a row per item,
// "-" in an empty cell.
type Table[T any] struct {
	Items []T
	// One: the report of one item asked for by name.
	One bool
	// Columns are the table's headings; Row is an item's cells.
	Columns []string
	Row     func(T) []string
	// None is what stderr says when there are no items.
	None string
}

// MarshalJSON marshals the items, or the one item.
func (t Table[T]) MarshalJSON() ([]byte, error) {
	if t.One && len(t.Items) == 1 {
		return json.Marshal(t.Items[0])
	}
	return json.Marshal(t.Items)
}

// WriteText writes the table to stdout, or None to stderr.
func (t Table[T]) WriteText(stdout, stderr io.Writer) error {
	if len(t.Items) == 0 && !t.One {
		_, err := fmt.Fprintln(stderr, t.None)
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.Columns, "\t"))
	for _, item := range t.Items {
		cells := t.Row(item)
		for i, c := range cells {
			if c == "" {
				cells[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

var (
	_ Report = Data{}
	_ Report = Table[struct{}]{}
)
