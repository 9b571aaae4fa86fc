package oip_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
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
		{"none", "rose", nil, `model "rose" not found; this function serves no models at the moment`},
		{"none, empty", "rose", []string{}, `model "rose" not found; this function serves no models at the moment`},
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

func TestPin(t *testing.T) {
	var released []string
	release := func(name string) func() { return func() { released = append(released, name) } }

	ctx, pin := oip.WithPin(context.Background())
	if oip.PinFrom(ctx) != pin || oip.PinFrom(context.Background()) != nil {
		t.Fatal("PinFrom does not find the Pin WithPin made, or finds one where there is none")
	}
	if got := pin.Held(); got != nil {
		t.Errorf("a new Pin holds %v", got)
	}
	if !pin.Hold("v1", release("v1")) || pin.Held() != "v1" || len(released) != 0 {
		t.Errorf("Hold: holds %v, released %v; want v1 held, nothing released", pin.Held(), released)
	}
	pin.Hold("v2", release("v2"))
	if pin.Held() != "v2" || !slices.Equal(released, []string{"v1"}) {
		t.Errorf("Hold again: holds %v, released %v; want v2 held, v1 released", pin.Held(), released)
	}
	pin.Release()
	pin.Release()
	if pin.Held() != nil || !slices.Equal(released, []string{"v1", "v2"}) {
		t.Errorf("Release twice: holds %v, released %v; want nothing held, v2 released once", pin.Held(), released)
	}
	if pin.Hold("v3", release("v3")) || pin.Held() != nil || !slices.Equal(released, []string{"v1", "v2", "v3"}) {
		t.Errorf("Hold on a released Pin: holds %v, released %v; want v3 released at once", pin.Held(), released)
	}

	var none *oip.Pin // a context without one
	if none.Hold("v4", release("v4")) || none.Held() != nil || !slices.Equal(released, []string{"v1", "v2", "v3", "v4"}) {
		t.Errorf("Hold on a nil Pin: released %v; want v4 released at once", released)
	}
	none.Release()
}
