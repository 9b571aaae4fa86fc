package web

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestFrontPage opens cortex serve's front page, sends a request to a
// function at zero processes, and watches its cold start arrive on the
// page, live.
func TestFrontPage(t *testing.T) {
	fns, front := serve(t, nil, "../../samples/iris", "--scale-down-after", "2s")
	ctx, _ := browser(t)
	row := "#fn-iris"
	cell := func(field string) string { return text(t, ctx, row+` [data-field="`+field+`"]`) }
	do(t, ctx, "opening the front page", chromedp.Navigate(front+"/"), chromedp.WaitVisible(row))
	if got := cell("cold_starts"); strings.TrimSpace(got) != "0" {
		t.Fatalf("cold starts before any request: %q, want 0", got)
	}
	if status, msg := post(t, fns["iris"].FrontURL+"predict", "application/json",
		`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`); status != http.StatusOK {
		t.Fatalf("predict: %d %s", status, msg)
	}
	waitText(t, ctx, row+` [data-field="cold_starts"]`, "1", 10*time.Second)
	// The cold start phase by phase, under its time: the process's ready
	// line brings fetch, load and init.
	phases := row + ` [data-field="cold_start_phases"]`
	const d = `\d+(\.\d+)? m?s` // 12 ms, 1.25 s
	waitMatch(t, ctx, phases, `^fetch `+d+` · load `+d+` · init `+d, 10*time.Second)
	screenshot(t, ctx, "front")
	// Scaled back to zero, the count stays, and the phases with it, the
	// first prediction's too.
	waitText(t, ctx, row+` [data-field="processes"]`, "0", 30*time.Second)
	if got := cell("cold_starts"); strings.TrimSpace(got) != "1" {
		t.Errorf("cold starts at zero processes: %q, want 1 kept", got)
	}
	waitMatch(t, ctx, phases, ` · init `+d+` · first prediction `+d+`$`, 10*time.Second)
	if got := cell("last_cold_start"); !strings.Contains(got, "(") || strings.Contains(got, "fetch") {
		t.Errorf("the last cold start's time reads %q: want its time and total, the phases apart", got)
	}
	// The row links to the function's own page.
	do(t, ctx, "following the link to iris's page", chromedp.Click(row+" a.page"), chromedp.WaitVisible("#submit"))
	if got := text(t, ctx, "#name"); got != "iris" {
		t.Errorf("the front page's link led to a page named %q", got)
	}
}

// TestToken serves a function that requires a token of its own (auth: in
// its cortex.yaml, from a directory outside the repository) behind a
// cortex serve that requires the same token: its page and the front page
// ask for the token, and everything with data is refused without it.
func TestToken(t *testing.T) {
	const token = "demo-token-0123456789abcdef"
	dir := filepath.Join(t.TempDir(), "greeter")
	copyDir(t, "../../samples/echo-go", dir)
	spec, err := os.ReadFile(filepath.Join(dir, "cortex.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec = append(spec, []byte("auth: {token_env: GREETER_TOKEN, secret: greeter, key: token}\n")...)
	if err := os.WriteFile(filepath.Join(dir, "cortex.yaml"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
	fns, front := serve(t, []string{"GREETER_TOKEN=" + token, "CORTEX_SERVE_TOKEN=" + token}, dir, "--ports", "echo-go=0")
	own := fns["echo-go"].URL

	// curl: refused without the token, on the front and on the
	// function's own port; served with it.
	for _, url := range []string{fns["echo-go"].FrontURL + "predict", own + "predict"} {
		status, _ := post(t, url, "application/json", `{"name": "Ada"}`)
		if status != http.StatusUnauthorized {
			t.Errorf("POST %s without the token: %d, want 401", url, status)
		}
		if status, msg := post(t, url, "application/json", `{"name": "Ada"}`, "Authorization", "Bearer "+token); status != http.StatusOK {
			t.Errorf("POST %s with the token: %d %s", url, status, msg)
		}
	}
	resp, err := http.Get(own + "openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("GET openapi.json without the token: %d %q, want 401 with a Bearer challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	ctx, _ := browser(t)
	// The function's page on its own port: its calls get 401, it asks.
	do(t, ctx, "opening the page", chromedp.Navigate(own), chromedp.WaitVisible("#token"))
	if got := text(t, ctx, "#name"); strings.Contains(got, "echo-go") {
		t.Errorf("the page shows the function's name %q before the token was given", got)
	}
	screenshot(t, ctx, "token-asked")
	do(t, ctx, "giving the token", chromedp.SendKeys("#token", token), chromedp.Click("#token-save"), chromedp.WaitVisible(id("in-name")),
		chromedp.SendKeys(id("in-name"), "Ada"), chromedp.Click("#submit"), chromedp.WaitVisible("#result-body"))
	if got := text(t, ctx, "#result-body"); !strings.Contains(got, "Ada") {
		t.Errorf("with the token the page shows %q, want the greeting", got)
	}
	if got := text(t, ctx, "#curl"); strings.Contains(got, token) {
		t.Error("the page's curl command shows the token itself")
	}

	// The front page asks too, then lists the function.
	do(t, ctx, "opening the front page", chromedp.Navigate(front+"/"), chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", token), chromedp.Click(`#auth button[type="submit"]`), chromedp.WaitVisible("#fn-echo-go"))
	screenshot(t, ctx, "front-token")
}

// waitText waits until the text of the element sel is want (trimmed),
// as the page's live updates change it.
func waitText(t *testing.T, ctx context.Context, sel, want string, within time.Duration) {
	t.Helper()
	js := fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? "").trim() === %q`, sel, want)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(within))); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q)?.textContent ?? "(no such element)"`, sel)))
		t.Fatalf("%s shows %q after %s, want %q (%v)", sel, got, within, want, err)
	}
}

// waitMatch waits until the text of the element sel matches the regular
// expression re (JavaScript's), as the page's live updates change it.
func waitMatch(t *testing.T, ctx context.Context, sel, re string, within time.Duration) {
	t.Helper()
	js := fmt.Sprintf(`new RegExp(%q).test(document.querySelector(%q)?.textContent ?? "")`, re, sel)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(within))); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q)?.textContent ?? "(no such element)"`, sel)))
		t.Fatalf("%s shows %q after %s, want it to match %s (%v)", sel, got, within, re, err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			if d.Name() == "dist" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
