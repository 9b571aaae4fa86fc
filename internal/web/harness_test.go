package web

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/cortexfn/cortex/internal/testutil"
)

// cortexBin is the CLI the tests run, built once by TestMain as a user
// builds it (go build ./cmd/cortex), so that the tests serve the samples
// through the CLI's own front, not the packages' insides.
var cortexBin string

func TestMain(m *testing.M) {
	// No flags: those of `make build`, so the compiled packages are shared
	// with it.
	testutil.MainWithBuild(m, &cortexBin, "../../cmd/cortex")
}

// served is one function that `cortex serve` printed: its URL (its own
// port when given one, else its place on the front) and its place on the
// front.
type served struct {
	Name     string `json:"name"`
	URL      string `json:"url"`
	FrontURL string `json:"front_url"`
}

// serve runs `cortex serve -o json ARGS...` until the test ends and
// returns the functions it printed, by name, and the front's base URL
// (http://127.0.0.1:PORT, no trailing slash). env is added to the
// command's environment.
func serve(t *testing.T, env []string, args ...string) (map[string]served, string) {
	t.Helper()
	cmd := exec.Command(cortexBin, append([]string{"serve", "-o", "json", "--addr", "127.0.0.1:0", "--status-every", "0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cortex serve's log:\n%s", stderr.String())
		}
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("cortex serve did not stop within 30s of SIGINT; its log:\n%s", stderr.String())
		}
	})
	fns := map[string]served{}
	lines := make(chan served)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var s served
			if json.Unmarshal(sc.Bytes(), &s) == nil && s.Name != "" {
				lines <- s
			}
		}
		close(lines)
	}()
	want := 0
	for _, a := range args {
		if !strings.HasPrefix(a, "-") && strings.Contains(a, "/") {
			want++ // a function directory
		}
	}
	timeout := time.After(4 * time.Minute) // the first build of a Go function compiles it
	for len(fns) < want {
		select {
		case s, ok := <-lines:
			if !ok {
				t.Fatalf("cortex serve ended before printing its functions; its log:\n%s", stderr.String())
			}
			fns[s.Name] = s
		case <-timeout:
			t.Fatalf("cortex serve printed %d of %d functions in 4 minutes; its log:\n%s", len(fns), want, stderr.String())
		}
	}
	go func() {
		for range lines { // the status lines, not read
		}
	}()
	var front string
	for _, s := range fns {
		front = strings.TrimSuffix(s.FrontURL, "/"+s.Name+"/")
	}
	return fns, front
}

// browser starts a headless chromium for the test and returns its
// context (every chromedp.Run of the test uses it) and the JavaScript
// dialogs the pages opened (alert, confirm, prompt), which the tests
// expect to stay none: a dialog is a model's output run as code.
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	exe, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: `make tools` installs Debian's chromium, which the page tests drive")
	}
	// The flags of a headless chromium that must not reach the network:
	// without the background-networking ones it keeps trying hosts a
	// closed network refuses.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		// Its scratch directories (org.chromium.Chromium.*) in the
		// test's, which the test removes: in TMPDIR, each run left some.
		chromedp.Env("TMPDIR="+t.TempDir()),
		chromedp.WindowSize(1000, 760),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting chromium: %v", err)
	}
	var mu sync.Mutex
	var dialogs []string
	opened := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range opened {
			if err != nil {
				return
			}
			mu.Lock()
			dialogs = append(dialogs, ev.Message)
			mu.Unlock()
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), dialogs...)
	}
}

// screenshot saves the page as $CORTEX_ARTIFACTS/web/NAME.png.
func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG, lossless
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	dir := os.Getenv("CORTEX_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts")
	}
	dir = filepath.Join(dir, "web")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
	return p
}
