//go:build wasip1

// Command stages is the OCR function's pre stage, built for WebAssembly
// (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared; cortex does it).
//
// It turns the caller's image (PNG or JPEG bytes as the body, or base64 in
// {"image": "..."}) into the frame the predictor reads (package raster): the
// untrusted decoding of outside input runs in the sandbox, under its memory
// cap, and the image's size is checked from its header before any pixel is
// decoded.
//
// Errors: 400 empty body or malformed JSON, 415 not a PNG or JPEG, 413 more
// pixels (or a longer side) than the limits allow, 422 a corrupt or
// truncated image.
package main

import (
	"errors"

	"github.com/cortexfn/cortex/functions/wasmguest"
	"github.com/cortexfn/cortex/samples/ocr/raster"
)

func init() {
	wasmguest.Preprocess(preprocess)
}

func preprocess(in []byte) ([]byte, error) {
	f, err := raster.Prepare(in, raster.Limits{})
	if err != nil {
		return nil, wasmguest.Errorf(status(err), "%s", err)
	}
	return f.Marshal(), nil
}

// status is the HTTP status for an error from raster.Prepare.
func status(err error) int {
	switch {
	case errors.Is(err, raster.ErrBadRequest):
		return 400
	case errors.Is(err, raster.ErrNotImage):
		return 415
	case errors.Is(err, raster.ErrTooLarge):
		return 413
	case errors.Is(err, raster.ErrCorrupt):
		return 422
	}
	return 500
}

func main() {}
