package onnx_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cortexfn/cortex/functions/oip"
	"github.com/cortexfn/cortex/runtime/onnx"
)

// The session tests run the PaddleOCR v4 text detector the OCR sample
// serves: a real model with dynamic height and width. Like the library, it
// is fetched rather than committed; without it the tests fail and say how to
// fetch it.

var ocrDetector = filepath.Join("..", "..", "samples", "ocr", "model", "ch_PP-OCRv4_det_infer.onnx")

func openDetector(t testing.TB) *onnx.Session {
	t.Helper()
	if _, err := os.Stat(ocrDetector); err != nil {
		t.Fatalf("%v: run scripts/fetch-ocr-models.sh (or `make models`) to fetch the OCR models", err)
	}
	s, err := onnx.Open(context.Background(), ocrDetector, onnx.SessionOptions{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// page returns a white 1x3xHxW image, normalised as the detector expects,
// with a dark bar where a line of text would be.
func page(h, w int) onnx.Tensor {
	mean, std := [3]float32{0.485, 0.456, 0.406}, [3]float32{0.229, 0.224, 0.225}
	data := make([]float32, 3*h*w)
	for c := range 3 {
		for y := range h {
			for x := range w {
				v := float32(1)
				if y >= h/2-4 && y < h/2+4 && x >= w/4 && x < 3*w/4 && (x/6)%2 == 0 {
					v = 0
				}
				data[(c*h+y)*w+x] = (v - mean[c]) / std[c]
			}
		}
	}
	return onnx.Tensor{Shape: []int64{1, 3, int64(h), int64(w)}, Data: data}
}

func TestSessionRun(t *testing.T) {
	s := openDetector(t)
	if got := s.Provider(); got != "CPU" {
		t.Errorf("Provider: got %q, want CPU (no GPU asked for)", got)
	}
	in, out := s.Inputs(), s.Outputs()
	if len(in) != 1 || len(out) != 1 || in[0].Datatype != oip.FP32 || len(in[0].Shape) != 4 {
		t.Fatalf("Inputs/Outputs: got %v / %v, want one 4-D FP32 input and one output", in, out)
	}

	got, err := s.Run(context.Background(), page(64, 96))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("Run: got %d outputs, want 1", len(got))
	}
	if want := []int64{1, 1, 64, 96}; !slices.Equal(got[0].Shape, want) {
		t.Errorf("output shape: got %v, want %v", got[0].Shape, want)
	}
	if len(got[0].Data) != 64*96 {
		t.Fatalf("output data: got %d elements, want %d", len(got[0].Data), 64*96)
	}
	// The map is a probability of text per pixel: high on the bar, low on
	// the blank margin.
	bar, blank := got[0].Data[32*96+48], got[0].Data[4*96+4]
	for _, p := range got[0].Data {
		if p < 0 || p > 1 {
			t.Fatalf("output value %v is not a probability", p)
		}
	}
	if bar < 0.5 || blank > 0.1 {
		t.Errorf("probability on the bar %.3f (want > 0.5), on the margin %.3f (want < 0.1)", bar, blank)
	}
}

func TestSessionRunErrors(t *testing.T) {
	s := openDetector(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		inputs []onnx.Tensor
		want   string
	}{
		{"no inputs", context.Background(), nil, "0 inputs given; the model takes 1"},
		{"two inputs", context.Background(), []onnx.Tensor{page(32, 32), page(32, 32)}, "2 inputs given"},
		{"wrong rank", context.Background(), []onnx.Tensor{{Shape: []int64{3, 32, 32}, Data: make([]float32, 3*32*32)}}, "does not match the model's"},
		{"wrong channels", context.Background(), []onnx.Tensor{{Shape: []int64{1, 4, 32, 32}, Data: make([]float32, 4*32*32)}}, "does not match the model's"},
		{"short data", context.Background(), []onnx.Tensor{{Shape: []int64{1, 3, 32, 32}, Data: make([]float32, 10)}}, "does not hold the 10 elements"},
		{"negative dimension", context.Background(), []onnx.Tensor{{Shape: []int64{1, 3, -1, 32}, Data: make([]float32, 96)}}, "does not hold"},
		{"cancelled", cancelled, []onnx.Tensor{page(32, 32)}, "inference not started"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Run(tt.ctx, tt.inputs...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := s.Run(cancelled, page(32, 32)); !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel: got %v, want it to wrap context.Canceled", err)
	}
}

func TestSessionConcurrentAndClosed(t *testing.T) {
	s := openDetector(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			h := 32 * (i + 1)
			out, err := s.Run(context.Background(), page(h, 64))
			if err != nil {
				t.Errorf("Run: %v", err)
				return
			}
			if want := []int64{1, 1, int64(h), 64}; !slices.Equal(out[0].Shape, want) {
				t.Errorf("output shape: got %v, want %v", out[0].Shape, want)
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Run(context.Background(), page(32, 32)); !errors.Is(err, onnx.ErrClosed) {
		t.Errorf("Run after Close: got %v, want ErrClosed", err)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		path string
		opts onnx.SessionOptions
		want string
	}{
		{"missing file", filepath.Join(t.TempDir(), "nope.onnx"), onnx.SessionOptions{}, "no such file"},
		{"directory", t.TempDir(), onnx.SessionOptions{}, "is a directory"},
		{"negative threads", ocrDetector, onnx.SessionOptions{IntraOpThreads: -1}, "IntraOpThreads"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := onnx.Open(context.Background(), tt.path, tt.opts)
			if err == nil {
				s.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
