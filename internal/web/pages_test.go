package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// readme rewrites docs/page.png, the README's picture of a function's
// page, from the iris page these tests open.
var readme = flag.Bool("readme", false, "write docs/page.png from the iris page")

// do runs steps in the browser, failing the test with what was being done.
// A step that does not finish within a minute fails with the page's
// text, which says what the page showed instead.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : "(no document)"`))
		url, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s: %v\nthe page at %s shows:\n%s", what, err, url, body)
	}
}

// text returns the text content of the element sel names.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.TextContent(sel))
	if err != nil {
		t.Fatalf("reading %s: %v", sel, err)
	}
	return s
}

// id is the selector of the element with id v (ids with dots, as the
// page's form inputs have, are not CSS #selectors).
func id(v string) string { return `[id="` + v + `"]` }

// post sends body to url as curl would, returning the status and the
// error body's message.
func post(t *testing.T, url, contentType, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error
}

// TestFunctionPages opens the pages of three samples in chromium through
// cortex serve, as a person trying them would: iris (an ONNX model: a form
// per input tensor), echo-go (a typed Go function: a form from its Go
// types) and ocr (a PNG upload).
func TestFunctionPages(t *testing.T) {
	fns, _ := serve(t, nil, "../../samples/iris", "../../samples/echo-go", "../../samples/ocr", "--ports", "iris=0")
	ctx, dialogs := browser(t)

	t.Run("iris", func(t *testing.T) {
		// Its own port: the page at the root.
		do(t, ctx, "opening iris's page", chromedp.Navigate(fns["iris"].URL), chromedp.WaitVisible("#submit"))
		for i, v := range []string{"5.1", "3.5", "1.4", "0.2"} { // a setosa
			do(t, ctx, "filling the form", chromedp.SendKeys(id("in-input."+string(rune('0'+i))), v))
		}
		do(t, ctx, "predicting", chromedp.Click("#submit"), chromedp.WaitVisible("#out-label"))
		if got := text(t, ctx, "#out-label"); !strings.Contains(got, "0") || strings.ContainsAny(got, "12") {
			t.Errorf("iris's page shows label %q for a setosa, want class 0", got)
		}
		if got := text(t, ctx, "#name"); got != "iris" {
			t.Errorf("the page's heading is %q, want the function's name", got)
		}
		// Its stylesheet arrived too (a connection dropped at the cold
		// start's handover once left the page unstyled).
		if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.styleSheets].reduce((n, s) => n + s.cssRules.length, 0)`)); err != nil || n == 0 {
			t.Errorf("the page has %d CSS rules (%v): its stylesheet did not load", n, err)
		}
		screenshot(t, ctx, "iris")
		if *readme {
			// The page from its top to the answer's tensors: its name, the
			// form, the answer.
			bottom, err := chromedp.Run(ctx, chromedp.Evaluate[float64](
				`document.getElementById('out-probabilities').getBoundingClientRect().bottom + window.scrollY + 24`))
			if err != nil {
				t.Fatal(err)
			}
			beyond := true
			shot, err := chromedp.Call(ctx, page.CaptureScreenshot, page.CaptureScreenshotParams{
				Format: page.CaptureScreenshotFormatPng, CaptureBeyondViewport: &beyond,
				Clip: &page.Viewport{Width: 1000, Height: bottom, Scale: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile("../../docs/page.png", shot.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}

		// Bad input through the page gets what curl gets, in words.
		do(t, ctx, "sending malformed JSON", chromedp.SetValue("#body", `{"inputs": [`), chromedp.Click("#submit"), chromedp.WaitVisible("#error"))
		status, msg := post(t, fns["iris"].URL+"predict", "application/json", `{"inputs": [`)
		if got := text(t, ctx, "#error"); status != http.StatusBadRequest || !strings.Contains(got, "400") || !strings.Contains(got, msg) {
			t.Errorf("malformed JSON: the page shows %q; curl gets %d %q", got, status, msg)
		}
	})

	t.Run("echo-go", func(t *testing.T) {
		// Behind the front, at /echo-go/: the page's URLs are relative.
		do(t, ctx, "opening echo-go's page", chromedp.Navigate(fns["echo-go"].FrontURL), chromedp.WaitVisible(id("in-name")))
		do(t, ctx, "predicting", chromedp.SendKeys(id("in-name"), "Ada"), chromedp.Click("#submit"), chromedp.WaitVisible("#result-body"))
		if got := text(t, ctx, "#result-body"); !strings.Contains(got, `"Hello, Ada`) {
			t.Errorf("echo-go's page shows %q, want the greeting", got)
		}
		screenshot(t, ctx, "echo-go")

		// A model's output is shown as text: markup in it is displayed,
		// never run.
		for _, name := range []string{"<script>alert(1)</script>", "<img src=x onerror=alert(2)>"} {
			do(t, ctx, "predicting with markup", chromedp.Navigate(fns["echo-go"].FrontURL+"docs"), chromedp.WaitVisible(id("in-name")),
				chromedp.SendKeys(id("in-name"), name), chromedp.Click("#submit"), chromedp.WaitVisible("#result-body"))
			if got := text(t, ctx, "#result-body"); !strings.Contains(got, name) {
				t.Errorf("the page shows %q, want the output's %q as text", got, name)
			}
			n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#result script, #result img').length`))
			if err != nil || n != 0 {
				t.Errorf("the result holds %d script or img elements (%v): the output was injected as HTML", n, err)
			}
		}
		time.Sleep(300 * time.Millisecond) // an onerror handler would have run by now
		if d := dialogs(); len(d) != 0 {
			t.Errorf("the page opened dialogs %q: a model output ran as script", d)
		}
		screenshot(t, ctx, "echo-go-markup")

		// A body that fails the input schema: the page shows each failing
		// field next to its input, with curl's status and message.
		const bad = `{"name": 7, "nmae": "x"}`
		do(t, ctx, "sending a body that fails the schema", chromedp.SetValue("#body", bad), chromedp.Click("#submit"), chromedp.WaitVisible("#error"))
		status, msg := post(t, fns["echo-go"].FrontURL+"predict", "application/json", bad)
		if got := text(t, ctx, "#error"); status != http.StatusUnprocessableEntity || !strings.Contains(got, "422") || !strings.Contains(got, msg) {
			t.Errorf("schema failure: the page shows %q; curl gets %d %q", got, status, msg)
		}
		if got := text(t, ctx, id("err-name")); got == "" {
			t.Error("the page shows no message beside the name field, which failed the schema")
		}
		screenshot(t, ctx, "echo-go-422")
	})

	t.Run("ocr", func(t *testing.T) {
		png, want := ocrExample(t, "page-letter.json")
		do(t, ctx, "opening ocr's page", chromedp.Navigate(fns["ocr"].FrontURL), chromedp.WaitVisible("#in-file"))
		do(t, ctx, "uploading a PNG", chromedp.SetUploadFiles("#in-file", []string{png}), chromedp.Click("#submit"), chromedp.WaitVisible("#result-body"))
		got := text(t, ctx, "#result-body")
		if !strings.Contains(got, want) {
			t.Errorf("ocr's page shows %q, want the recognised line %q", got, want)
		}
		screenshot(t, ctx, "ocr")
	})
}

// ocrExample writes the PNG of one of the OCR sample's examples to a file
// and returns its path and the first line the example expects.
func ocrExample(t *testing.T, name string) (string, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../samples/ocr/examples", name))
	if err != nil {
		t.Fatal(err)
	}
	var ex struct {
		Request struct {
			Body struct {
				Image string `json:"image"`
			} `json:"body"`
		} `json:"request"`
		Response struct {
			Body struct {
				Lines []struct {
					Text string `json:"text"`
				} `json:"lines"`
			} `json:"body"`
		} `json:"response"`
	}
	if err := json.Unmarshal(b, &ex); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(ex.Request.Body.Image)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) || len(ex.Response.Body.Lines) == 0 {
		t.Fatalf("%s: no PNG and expected line in it (%v)", name, err)
	}
	p := filepath.Join(t.TempDir(), "page.png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, ex.Response.Body.Lines[0].Text
}
