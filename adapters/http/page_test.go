package http_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	httpadapter "github.com/cortexfn/cortex/adapters/http"
)

// The page is driven in a real browser by the browser tests; these check
// what the carrier serves.

func serveReq(h http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestPageRoutes(t *testing.T) {
	h := httpadapter.New(typedEngine())
	for _, c := range []struct {
		method, path string
		status       int
		contentType  string
		allow        string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", ""},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/docs", 200, "text/html; charset=utf-8", ""},
		{"GET", "/-/page.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/-/page.css", 200, "text/css; charset=utf-8", ""},
		{"POST", "/", 200, "application/json", ""}, // still the predict route
		{"PUT", "/", 405, "application/json", "POST, GET, HEAD"},
		{"POST", "/docs", 405, "application/json", "GET, HEAD"},
		{"POST", "/-/page.js", 405, "application/json", "GET, HEAD"},
		{"GET", "/predict", 405, "application/json", "POST"},
		{"GET", "/docs/", 404, "application/json", ""},
		{"GET", "/-/other.js", 404, "application/json", ""},
	} {
		w := serveReq(h, c.method, c.path)
		if w.Code != c.status || w.Header().Get("Content-Type") != c.contentType || w.Header().Get("Allow") != c.allow {
			t.Errorf("%s %s: %d %q Allow %q, want %d %q %q", c.method, c.path, w.Code,
				w.Header().Get("Content-Type"), w.Header().Get("Allow"), c.status, c.contentType, c.allow)
		}
		if c.status != 200 || c.method == "POST" {
			continue
		}
		csp := w.Header().Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s %s: Content-Security-Policy %q lacks %q", c.method, c.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-") {
			t.Errorf("%s %s: Content-Security-Policy allows %q", c.method, c.path, csp)
		}
		if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s: X-Content-Type-Options %q", c.method, c.path, got)
		}
		if c.method == "HEAD" && w.Body.Len() != 0 {
			t.Errorf("HEAD %s has a body", c.path)
		}
	}
	// / and /docs are the same page; it is revalidated, not refetched.
	page, docs := serveReq(h, "GET", "/"), serveReq(h, "GET", "/docs")
	if page.Body.String() != docs.Body.String() {
		t.Error("/ and /docs differ")
	}
	if w := serveReq(h, "GET", "/", "If-None-Match", page.Header().Get("ETag")); w.Code != http.StatusNotModified {
		t.Errorf("revalidating the page: %d, want 304", w.Code)
	}
}

// TestPageShellHoldsNothingOfTheFunction checks the shell is the same for
// every function and holds none of a function's data: it is served
// without a token.
func TestPageShellHoldsNothingOfTheFunction(t *testing.T) {
	a, b := httpadapter.New(typedEngine()), httpadapter.New(onnxEngine())
	for _, p := range []string{"/", "/-/page.js", "/-/page.css"} {
		wa, wb := serveReq(a, "GET", p), serveReq(b, "GET", p)
		if wa.Body.String() != wb.Body.String() {
			t.Errorf("%s differs between two functions", p)
		}
		for _, secret := range []string{"orders", "0123456789abcdef", "Who orders", "iris", "onnxruntime", "sku"} {
			if strings.Contains(wa.Body.String(), secret) {
				t.Errorf("%s holds %q, the function's", p, secret)
			}
		}
	}
}

// TestPageScript checks what the page's script may not do: build HTML
// from strings (a model output holding <script> must be shown, not run),
// run strings as code, or reach past the function with an absolute path.
func TestPageScript(t *testing.T) {
	h := httpadapter.New(typedEngine())
	js := serveReq(h, "GET", "/-/page.js").Body.String()
	for _, banned := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('on", "srcdoc"} {
		if strings.Contains(js, banned) {
			t.Errorf("page.js uses %s", banned)
		}
	}
	// URLs are relative to the page, so it works under cortex serve's
	// /{function}/ prefix too.
	if m := regexp.MustCompile(`(?:call|abs|fetch)\(\s*['"]/`).FindString(js); m != "" {
		t.Errorf("page.js fetches an absolute path: %s", m)
	}
	html := serveReq(h, "GET", "/").Body.String()
	if m := regexp.MustCompile(`(?:src|href)="(?:/|https?:)`).FindString(html); m != "" {
		t.Errorf("index.html refers to an absolute URL: %s", m)
	}
	if strings.Contains(html, "<script>") || strings.Contains(html, " style=") || strings.Contains(html, "<style") {
		t.Error("index.html has inline script or style, which its Content-Security-Policy refuses")
	}
	// The ids the browser tests drive.
	for _, id := range []string{"name", "status", "form", "fields", "body", "submit", "result", "error", "token", "curl", "cli", "copy-curl", "copy-cli", "in-file", "route", "stream"} {
		if !strings.Contains(html, `id="`+id+`"`) {
			t.Errorf("index.html has no element with id %q", id)
		}
	}
	// Every input in the shell has a label.
	for _, m := range regexp.MustCompile(`<(?:input|select|textarea)[^>]*id="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		id := m[1]
		if !strings.Contains(html, `for="`+id+`"`) && !regexp.MustCompile(`<label><input[^>]*id="`+regexp.QuoteMeta(id)+`"`).MatchString(html) {
			t.Errorf("input %q has no label", id)
		}
	}
}

// TestPageSize keeps the page small: it is sent to every person who opens
// a function, on an edge box's link too. docs/pages.md states the sizes.
func TestPageSize(t *testing.T) {
	h := httpadapter.New(typedEngine())
	var raw, zipped int
	for _, p := range []string{"/", "/-/page.js", "/-/page.css"} {
		body := serveReq(h, "GET", p).Body.Bytes()
		raw += len(body)
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(body)
		zw.Close()
		zipped += buf.Len()
	}
	t.Logf("page: %d bytes, %d gzipped", raw, zipped)
	if raw > 32<<10 || zipped > 12<<10 {
		t.Errorf("the page is %d bytes (%d gzipped): over its budget of 32 KiB (12 KiB gzipped)", raw, zipped)
	}
	// Compressed on the wire for a browser that asks.
	w := serveReq(h, "GET", "/-/page.js", "Accept-Encoding", "gzip")
	if w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("page.js is not compressed: %v", w.Header())
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); !strings.Contains(string(b), "openapi.json") {
		t.Error("the compressed script does not read back")
	}
}

func TestWithoutPages(t *testing.T) {
	h := httpadapter.New(typedEngine(), httpadapter.WithoutPages())
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/", 405, "POST"},
		{"GET", "/docs", 404, ""},
		{"GET", "/-/page.js", 404, ""},
		{"GET", "/-/page.css", 404, ""},
		{"POST", "/", 200, ""},
		{"GET", "/openapi.json", 200, ""}, // the document stays
	} {
		w := serveReq(h, c.method, c.path)
		if w.Code != c.status || w.Header().Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q, want %d %q", c.method, c.path, w.Code, w.Header().Get("Allow"), c.status, c.allow)
		}
	}
	doc := document(t, h)
	if at(doc, "paths", "/", "get") != nil || at(doc, "paths", "/docs") != nil {
		t.Error("the document lists the page, which is off")
	}
	if at(doc, "paths", "/", "post") == nil {
		t.Error("the document lost POST /")
	}
}

// TestPageBehindToken checks the shell is served bare and everything with
// the function's data needs the token, with RequireToken opened by
// Probe and PageShell as the runtime opens it.
func TestPageBehindToken(t *testing.T) {
	open := func(r *http.Request) bool { return httpadapter.Probe(r) || httpadapter.PageShell(r) }
	h := httpadapter.RequireToken(httpadapter.New(typedEngine()), "s3cret", "orders", open)
	for _, c := range []struct {
		method, path, auth string
		status             int
	}{
		{"GET", "/", "", 200},
		{"HEAD", "/docs", "", 200},
		{"GET", "/-/page.js", "", 200},
		{"GET", "/-/page.css", "", 200},
		{"GET", "/readyz", "", 200},
		{"GET", "/openapi.json", "", 401},
		{"GET", "/openapi.json", "Bearer s3cret", 200},
		{"POST", "/", "", 401},
		{"POST", "/", "Bearer s3cret", 200},
		{"POST", "/docs", "", 401},
		{"GET", "/v2/models", "", 401},
	} {
		w := serveReq(h, c.method, c.path, "Authorization", c.auth)
		if w.Code != c.status {
			t.Errorf("%s %s (%q): %d, want %d", c.method, c.path, c.auth, w.Code, c.status)
		}
		if w.Code == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("%s %s: 401 without a Bearer challenge", c.method, c.path)
		}
	}
	for _, c := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/", true}, {"HEAD", "/", true}, {"GET", "/docs", true}, {"GET", "/-/page.js", true},
		{"POST", "/", false}, {"GET", "/predict", false}, {"GET", "/openapi.json", false}, {"GET", "/-/status", false},
	} {
		if got := httpadapter.PageShell(httptest.NewRequest(c.method, c.path, nil)); got != c.want {
			t.Errorf("PageShell(%s %s) = %v, want %v", c.method, c.path, got, c.want)
		}
	}
}
