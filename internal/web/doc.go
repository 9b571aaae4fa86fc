// Package web holds the browser tests of the pages a person opens: a
// function's own page (adapters/http: its schema, a try-it form, the
// answer) and cortex serve's front page (runtime/host: every function's
// live state). They run the CLI as a user would, `cortex serve` on the
// samples, and drive Debian's chromium headless through the DevTools
// protocol (chromedp): a real browser runs the pages' JavaScript, so what
// they check — a form that sends the prediction and shows the answer, a
// model output that is displayed and never run, a token asked for and
// sent — is what a person gets.
//
// `make tools` installs chromium. Screenshots of every page a test opens
// are written to $CORTEX_ARTIFACTS/web (default: artifacts/web at the
// repository's root, which git ignores).
//
// The package has tests only; it is on the tool side and no function
// imports it.
package web
