// Command demo is what `make demo` runs: it packages the iris
// sample, serves the samples with scale-to-zero through `cortex serve`,
// shows a cold start and a warm request with their latencies, the URLs of
// the front page and a function's page, waits for the
// function to scale back to zero, shows the next cold start, and stops
// cleanly.
//
//	go run ./internal/demo [-cortex bin/cortex] [-addr 127.0.0.1:18080]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const setosa = `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`

func main() {
	cortex := flag.String("cortex", "bin/cortex", "the cortex CLI")
	addr := flag.String("addr", "127.0.0.1:18080", "address for cortex serve")
	port := flag.Int("port", 18081, "iris's own port (cortex serve --ports)")
	idle := flag.Duration("scale-down-after", 3*time.Second, "idle time before a function scales to zero")
	flag.Parse()
	if err := run(*cortex, *addr, *port, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("\n== "+format+"\n", args...) }

func run(cortex, addr string, port int, idle time.Duration) error {
	step("cortex package samples/iris: an OCI image (no Docker daemon), a Lambda zip and a Knative Service")
	pkg := exec.Command(cortex, "package", "samples/iris")
	pkg.Stdout, pkg.Stderr = os.Stdout, io.Discard
	if err := pkg.Run(); err != nil {
		return fmt.Errorf("cortex package: %w", err)
	}

	ports := fmt.Sprintf("iris=%d", port)
	step("cortex serve samples/iris samples/iris-wasm --addr %s --ports %s: every function starts at zero processes", addr, ports)
	var logs bytes.Buffer
	serve := exec.Command(cortex, "serve", "samples/iris", "samples/iris-wasm", "--addr", addr, "--ports", ports,
		"--scale-down-after", idle.String(), "--status-every", "0")
	serve.Stdout, serve.Stderr = io.Discard, &logs
	if err := serve.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	stopped := false
	defer func() { // on an early return: stop serve, leave nothing behind
		if !stopped {
			_ = serve.Process.Signal(syscall.SIGTERM)
			<-exited
		}
	}()
	base := "http://" + addr
	if err := waitFor(3*time.Minute, exited, func() bool { _, err := status(base); return err == nil }); err != nil {
		return fmt.Errorf("cortex serve did not come up: %w\n%s", err, logs.String())
	}
	st, _ := status(base)
	fmt.Printf("iris: %d process(es)\n", len(st["iris"].Processes))

	step("first request to iris: a cold start (process start, model load, prediction)")
	if err := predict(base+"/iris/predict", setosa); err != nil {
		return err
	}
	step("second request: warm")
	if err := predict(base+"/iris/predict", setosa); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(addr)
	own := "http://" + net.JoinHostPort(host, strconv.Itoa(port))
	step("the same on iris's own port (--ports): the warm process answers itself, no proxy in between")
	if err := predict(own+"/predict", setosa); err != nil {
		return err
	}
	step("in a browser: cortex serve's front page shows every function live; each function has a page with a form to try it")
	if err := pages(base, own); err != nil {
		return err
	}
	lastIris := time.Now()
	step("iris-wasm: the same model with no Go code, its input and output shaped by a WebAssembly stage")
	if err := predict(base+"/iris-wasm/predict", `{"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}`); err != nil {
		return err
	}

	step("idle: iris scales back to zero after %s", idle)
	if err := waitFor(time.Minute, exited, func() bool {
		st, err := status(base)
		return err == nil && len(st["iris"].Processes) == 0
	}); err != nil {
		return fmt.Errorf("iris did not scale to zero: %w", err)
	}
	fmt.Printf("iris: 0 processes (%s after its last request)\n", time.Since(lastIris).Round(100*time.Millisecond))

	step("next request: a cold start again")
	if err := predict(base+"/iris/predict", setosa); err != nil {
		return err
	}
	st, err := status(base)
	if err != nil {
		return err
	}
	fmt.Printf("iris: %d cold starts, last %s\n", st["iris"].ColdStarts, time.Duration(st["iris"].LastColdStart*float64(time.Second)).Round(time.Millisecond))

	step("Ctrl-C: cortex serve drains every function and exits")
	_ = serve.Process.Signal(syscall.SIGTERM)
	stopped = true
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("cortex serve: %w\n%s", err, logs.String())
		}
	case <-time.After(time.Minute):
		return errors.New("cortex serve did not exit within a minute of SIGTERM")
	}
	fmt.Println("stopped: no function process is left")
	return nil
}

func predict(url, body string) error {
	start := time.Now()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	fmt.Printf("POST %s -> %d in %s\n%s\n", strings.TrimPrefix(url, "http://"), resp.StatusCode, took.Round(100*time.Microsecond), compact(b))
	return nil
}

// pages prints the URLs of the front page and iris's page, and what
// iris's OpenAPI document (the page is built from it) describes.
func pages(base, own string) error {
	fmt.Printf("front page   %s/\n", base)
	fmt.Printf("iris's page  %s/iris/   (on its own port: %s/)\n", base, own)
	url := base + "/iris/openapi.json"
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                     `json:"openapi"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	fmt.Printf("GET %s -> %d: OpenAPI %s, %d paths\n", strings.TrimPrefix(url, "http://"), resp.StatusCode, doc.OpenAPI, len(doc.Paths))
	return nil
}

func compact(b []byte) string {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return string(b)
	}
	return out.String()
}

// fnStatus is the part of runtime/host's status this demo prints.
type fnStatus struct {
	Name          string            `json:"name"`
	Processes     []json.RawMessage `json:"processes"`
	ColdStarts    int64             `json:"cold_starts"`
	LastColdStart float64           `json:"last_cold_start_seconds"`
}

func status(base string) (map[string]fnStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/-/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var all struct{ Functions []fnStatus }
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		return nil, err
	}
	m := make(map[string]fnStatus, len(all.Functions))
	for _, f := range all.Functions {
		m[f.Name] = f
	}
	return m, nil
}

// waitFor polls cond until it holds, the bound passes or serve exits.
func waitFor(bound time.Duration, exited <-chan error, cond func() bool) error {
	deadline := time.Now().Add(bound)
	for !cond() {
		select {
		case err := <-exited:
			return fmt.Errorf("cortex serve exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", bound)
		}
	}
	return nil
}
