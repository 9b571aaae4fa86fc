package batch

import (
	"fmt"
	"testing"
)

func benchRows() ([][]byte, []byte) {
	rows := make([][]byte, 64)
	for i := range rows {
		rows[i] = fmt.Appendf(nil, `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.%d,3.5,1.4,0.2]}]}`, i%10)
	}
	resp := []byte(`{"model_name":"iris","outputs":[{"name":"label","datatype":"INT64","shape":[64],"data":[`)
	for i := range 64 {
		if i > 0 {
			resp = append(resp, ',')
		}
		resp = append(resp, '1')
	}
	resp = append(resp, `]},{"name":"probabilities","datatype":"FP32","shape":[64,3],"data":[`...)
	for i := range 64 {
		if i > 0 {
			resp = append(resp, ',')
		}
		resp = append(resp, "0.008620981,0.5059022,0.4854768"...)
	}
	resp = append(resp, "]}]}"...)
	return rows, resp
}

func BenchmarkPack64(b *testing.B) {
	rows, _ := benchRows()
	for b.Loop() {
		if _, err := pack(rows, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSplit64(b *testing.B) {
	rows, resp := benchRows()
	p, _ := pack(rows, nil)
	items := make([]*item, 64)
	for i := range items {
		items[i] = &item{index: 1000 + i, line: 1001 + i}
	}
	head := func(dst []byte, i int) []byte {
		return append(appendWhere(dst, items[i]), `,"status":200,"output":`...)
	}
	for b.Loop() {
		if _, err := p.split(resp, nil, head, "}\n"); err != nil {
			b.Fatal(err)
		}
	}
}
