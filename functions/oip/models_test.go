package oip_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/functions/oip"
)

func TestModelNotFound(t *testing.T) {
	tests := []struct {
		name   string
		model  string
		served []string
		want   string
	}{
		{"one model", "rose", []string{"iris"}, `model "rose" not found; this function serves "iris"`},
		{"several", "rose", []string{"flowers", "iris"}, `model "rose" not found; this function serves "flowers", "iris"`},
		{"quotes", `a"b`, []string{"x y"}, `model "a\"b" not found; this function serves "x y"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fe *functions.Error
			if err := oip.ModelNotFound(tt.model, tt.served); !errors.As(err, &fe) || fe.Status != http.StatusNotFound || fe.Message != tt.want {
				t.Errorf("got %v, want a 404 %q", err, tt.want)
			}
		})
	}
}
