package functions

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Response is what a predictor answers: any status, headers and body.
type Response struct {
	// Status is the HTTP status code; 0 means 200.
	Status int
	// Header holds response headers; Content-Type is taken from here.
	Header http.Header
	// Body is the response payload.
	Body []byte
}

// StatusCode returns Status, or 200 when it is unset.
func (r *Response) StatusCode() int {
	if r == nil || r.Status == 0 {
		return http.StatusOK
	}
	return r.Status
}

// ContentType returns the response's Content-Type header.
func (r *Response) ContentType() string {
	if r == nil || r.Header == nil {
		return ""
	}
	return r.Header.Get("Content-Type")
}

// JSON returns a response with status and v encoded as JSON. It fails only
// when v cannot be encoded.
func JSON(status int, v any) (*Response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("functions: encoding response: %w", err)
	}
	return Bytes(status, "application/json", b), nil
}

// Bytes returns a response with status, content type and body.
func Bytes(status int, contentType string, body []byte) *Response {
	h := make(http.Header, 1)
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return &Response{Status: status, Header: h, Body: body}
}

// Text returns a plain-text response.
func Text(status int, s string) *Response {
	return Bytes(status, "text/plain; charset=utf-8", []byte(s))
}
