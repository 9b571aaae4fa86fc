package http

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"time"
)

// The function's page (GET / and GET /docs) is a static shell: page/index.html,
// page/page.css and page/page.js, embedded in the binary and served as they
// are, with nothing of the function's in them. The script reads the
// function's OpenAPI document (./openapi.json, whose x-cortex extension adds
// the digest and the models' tensor metadata) and its readiness (./readyz),
// and builds the page from them: so the shell can be served without a token,
// and everything with the function's data goes through the same checks as
// any other caller's request. It fetches nothing from elsewhere: the page
// works offline, on an edge box. See docs/pages.md.
//
// Sizes: index.html, page.css and page.js are 2,693, 2,731 and 25,639
// bytes, 31,063 together and 10,978 gzipped; TestPageSize keeps them under
// 32 KiB (12 KiB gzipped).

//go:embed page/index.html page/page.css page/page.js
var pageFS embed.FS

// pageCSP is the page's Content-Security-Policy: its own script and style
// files only (no inline script or style, no eval), calls to the function
// only, images from the function or from the blob: URLs an image output is
// shown through; no plugins, no frames, no form posting elsewhere.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// pageAsset is one file of the page's shell.
type pageAsset struct {
	body        []byte
	contentType string
	etag        string
}

var pageAssets = func() map[string]pageAsset {
	assets := map[string]pageAsset{}
	for path, f := range map[string]struct{ file, ct string }{
		"/":           {"page/index.html", "text/html; charset=utf-8"},
		"/-/page.css": {"page/page.css", "text/css; charset=utf-8"},
		"/-/page.js":  {"page/page.js", "text/javascript; charset=utf-8"},
	} {
		b, err := pageFS.ReadFile(f.file)
		if err != nil {
			panic(err) // embedded above: a programmer error
		}
		sum := sha256.Sum256(b)
		assets[path] = pageAsset{body: b, contentType: f.ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	assets["/docs"] = assets["/"]
	return assets
}()

// WithoutPages turns off the function's page: GET / and GET /docs and the
// page's script and style. /openapi.json stays. The Lambda carrier's
// handler is given it unless pages are asked for there: a Lambda function
// URL is seldom meant for people.
func WithoutPages() Option { return func(x *Handler) { x.pages = false } }

// PagePath reports whether path is one of the page's shell: the page (/,
// /docs) and its script and style (/-/page.js, /-/page.css).
func PagePath(path string) bool {
	_, ok := pageAssets[path]
	return ok
}

// PageShell reports whether r asks for the page's static shell (GET or
// HEAD of a PagePath), which holds nothing of the function's: RequireToken
// serves it without a token, so that the page can ask for one. Combine it
// with Probe: func(r *http.Request) bool { return Probe(r) || PageShell(r) }.
func PageShell(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && PagePath(r.URL.Path)
}

// ServePage answers a GET or HEAD of one of the page's files (PageShell):
// the same for every function built with this SDK, so a front that
// serves many (cortex serve) answers it itself, waking none of them.
func ServePage(w http.ResponseWriter, r *http.Request) { servePage(w, r) }

// servePage answers a GET or HEAD of one of the page's files.
func servePage(w http.ResponseWriter, r *http.Request) {
	a, ok := pageAssets[r.URL.Path]
	if !ok {
		writeError(w, http.StatusNotFound, "no such file of the page")
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Revalidated every time (a 304 while the binary is the same): a new
	// build's page and script are never mixed with an old one's.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
