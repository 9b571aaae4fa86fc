package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// oipModel is an OIP function for the tests: for an input of shape
// [n,4] it answers a label a row (the sum of its row mod 3) and two
// "scores" a row, echoes the request's id, and refuses (422) a row with
// a value above 100.
func oipModel(requests *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		var req struct {
			ID     string `json:"id"`
			Inputs []struct {
				Shape []int           `json:"shape"`
				Data  json.RawMessage `json:"data"`
			} `json:"inputs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Inputs) != 1 || len(req.Inputs[0].Shape) != 2 || req.Inputs[0].Shape[1] != 4 {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		n := req.Inputs[0].Shape[0]
		elems, err := flatData(req.Inputs[0].Data, nil)
		if err != nil || len(elems) != n*4 {
			http.Error(w, `{"error":"bad data"}`, http.StatusBadRequest)
			return
		}
		data := make([]float64, len(elems))
		for i, e := range elems {
			data[i], _ = strconv.ParseFloat(string(e), 64)
		}
		var labels []int
		var scores []string
		for i := range n {
			sum := 0.0
			for _, v := range data[i*4 : i*4+4] {
				if v > 100 {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusUnprocessableEntity)
					fmt.Fprintf(w, `{"error":"row %d: %g is out of range"}`, i, v)
					return
				}
				sum += v
			}
			labels = append(labels, int(sum)%3)
			scores = append(scores, fmt.Sprintf("%.3f", sum/10), fmt.Sprintf("%.1e", sum))
		}
		w.Header().Set("Content-Type", "application/json")
		id := ""
		if req.ID != "" {
			id = fmt.Sprintf(`"id":%q,`, req.ID)
		}
		lj, _ := json.Marshal(labels)
		// Spaced and indented as some servers answer: the lines are compact.
		fmt.Fprintf(w, "{\"model_name\": \"m\", %s\"outputs\": [\n {\"name\": \"label\", \"datatype\": \"INT64\", \"shape\": [%d], \"data\": %s},\n {\"name\": \"scores\", \"datatype\": \"FP32\", \"shape\": [%d, 2], \"data\": [%s]}]}\n",
			id, n, lj, n, strings.Join(scores, ", "))
	}
}

func TestBatchEqualsSingle(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(oipModel(&requests))
	defer srv.Close()
	var lines []string
	for i := range 150 {
		switch {
		case i == 7:
			lines = append(lines, `{"id":"seven","inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[[7,0.5,1,2]]}]}`) // nested, with an id
		case i == 20:
			lines = append(lines, `{"inputs":[{"name":"x","shape":[2,4],"datatype":"FP32","data":[1,2,3,4,5,6,7,8]}]}`) // two rows in one line
		case i == 33:
			lines = append(lines, `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,300,4]}]}`) // refused
		case i == 70:
			lines = append(lines, `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`) // does not pack with the others
		case i == 71:
			lines = append(lines, `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}], "extra": 1}`) // not only OIP
		default:
			lines = append(lines, fmt.Sprintf(`{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [%d, 1.5, -2e-1, %d]}]}`, i%50, i%7))
		}
	}
	input := writeLines(t, lines...)
	single, packed := t.TempDir(), t.TempDir()
	if _, err := Run(context.Background(), Options{Input: input, Output: single, URL: srv.URL}); err != nil {
		t.Fatal(err)
	}
	sent := requests.Swap(0)
	tot, err := Run(context.Background(), Options{Input: input, Output: packed, URL: srv.URL, Batch: 16, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{OutputsFile, FailuresFile} {
		a, _ := os.ReadFile(filepath.Join(single, f))
		b, _ := os.ReadFile(filepath.Join(packed, f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s with --batch 16 differs from one row a request:\n%s\nwant:\n%s", f, b, a)
		}
	}
	if sent != 150 || requests.Load() > 150/16+1+3*16 {
		t.Errorf("%d requests one a row, %d packed: want 150, and far fewer packed", sent, requests.Load())
	}
	// The batches of rows 32-47 (one refused) and 64-79 (rows that do
	// not pack) go alone.
	if tot.Unpacked != 32 || tot.Failed != 2 {
		t.Errorf("totals %+v, want 32 rows sent alone and 2 failed (row 33, refused, and row 70, whose shape the model refuses)", tot)
	}
	b, _ := os.ReadFile(filepath.Join(packed, OutputsFile))
	if !bytes.Contains(b, []byte(`{"index":7,"line":8,"status":200,"output":{"model_name":"m","id":"seven","outputs":[{"name":"label","datatype":"INT64","shape":[1],"data":[1]},{"name":"scores","datatype":"FP32","shape":[1,2],"data":[1.050,`)) {
		t.Errorf("row 7's line is not its own answer with its id:\n%s", b)
	}
}

func TestFlatData(t *testing.T) {
	tests := []struct {
		in   string
		want []string // nil: an error
	}{
		{`[1,2,3]`, []string{"1", "2", "3"}},
		{` [[1, -2.5e3], [0, 4E+2]] `, []string{"1", "-2.5e3", "0", "4E+2"}},
		{`[["a\"]", "b"], [true, null]]`, []string{`"a\"]"`, `"b"`, "true", "null"}},
		{`[]`, []string{}},
		{`[1,,2]`, nil},
		{`[1 2]`, nil},
		{`[1,]`, nil},
		{`[01]`, nil},
		{`[1.]`, nil},
		{`[-]`, nil},
		{`[nul]`, nil},
		{`[{"a":1}]`, nil},
		{`[1]]`, nil},
		{`[[1]`, nil},
		{`1`, nil},
		{`["a`, nil},
		{"[\"\x01\"]", nil},
	}
	for _, tt := range tests {
		got, err := flatData([]byte(tt.in), nil)
		if tt.want == nil {
			if err == nil {
				t.Errorf("flatData(%s) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("flatData(%s) = %q, %v; want %q", tt.in, got, err, tt.want)
			continue
		}
		for i := range got {
			if string(got[i]) != tt.want[i] {
				t.Errorf("flatData(%s)[%d] = %s, want %s", tt.in, i, got[i], tt.want[i])
			}
		}
	}
}

// FuzzPack: rows pack only when each is valid JSON (a packed row is sent
// without another check), and what they pack to is valid JSON.
func FuzzPack(f *testing.F) {
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`), []byte(`{"id":"b","inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[[5,6,7,8]]}]}`))
	f.Add([]byte(`{"inputs":[{"name":"x","shape":[1,1],"datatype":"BYTES","data":["a"]}],"parameters":{"k":1}}`), []byte(`{"inputs":[{"name":"x","shape":[1,1],"datatype":"BYTES","data":["b\"]"]}],"parameters":{"k":1}}`))
	f.Add([]byte(`{"inputs":[{"data":[1],"name":"x","shape":[1,1],"datatype":"FP32"}]} `), []byte(`{"inputs":[{"data":[1] "name":"x","shape":[1,1],"datatype":"FP32"}]}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		p, err := pack([][]byte{a, b}, nil)
		if err != nil {
			return
		}
		if !json.Valid(a) || !json.Valid(b) {
			t.Fatalf("rows that are not JSON packed:\n%s\n%s", a, b)
		}
		if !json.Valid(p.body) {
			t.Fatalf("packed to something that is not JSON: %s", p.body)
		}
	})
}

// FuzzSplit: an answer splits or is refused, never a panic, and what it
// splits to is JSON.
func FuzzSplit(f *testing.F) {
	f.Add([]byte(`{"model_name":"m","outputs":[{"name":"l","datatype":"INT64","shape":[2],"data":[1,2]}]}`))
	f.Add([]byte(`{"model_name":"m","outputs":[{"name":"l","datatype":"FP32","shape":[2,2],"data":[[1,2],[3,4]]}],"parameters":{}}`))
	p := &packed{rows: []int64{1, 1}, ids: []string{"", "x"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		lines, err := p.split(body, nil, func(dst []byte, i int) []byte { return dst }, "")
		if err != nil {
			return
		}
		for _, l := range lines {
			if !json.Valid(l) {
				t.Fatalf("split %s into %s, not JSON", body, l)
			}
		}
	})
}
