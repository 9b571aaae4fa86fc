package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cortexfn/cortex/cmd/cortex/internal/batch"
)

const irisDir = "../../samples/iris"

// irisRows writes n one-row OIP requests for iris, and a line that is not
// JSON at each index in bad.
func irisRows(t *testing.T, n int, bad ...int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rows.jsonl")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		if len(bad) > 0 && bad[0] == i {
			bad = bad[1:]
			fmt.Fprintf(w, "{\"inputs\": [{\"name\": \"input\", \"shape\": [1, 4]\n")
			continue
		}
		fmt.Fprintf(w, `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[%.1f,%.1f,%.1f,%.1f]}]}`+"\n",
			4.3+r.Float64()*3.6, 2+r.Float64()*2.4, 1+r.Float64()*5.9, 0.1+r.Float64()*2.4)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func jsonLines(t *testing.T, p string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("%s: a line that is not JSON: %s", p, l)
		}
		out = append(out, m)
	}
	return out
}

// TestBatchIrisDirectory runs cortex batch on the iris function's
// directory (batch serves it itself): a setosa row, a row of the wrong
// shape (422) and a line that is not JSON.
func TestBatchIrisDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a function")
	}
	in := filepath.Join(t.TempDir(), "in.jsonl")
	os.WriteFile(in, []byte(`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}
{"inputs":[{"name":"input","shape":[1,5],"datatype":"FP32","data":[5.1,3.5,1.4,0.2,1]}]}
{"inputs":[{"name":"input","shape":[1,4],
{"id":"v","inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[6.3,3.3,6.0,2.5]}]}
`), 0o644)
	out := filepath.Join(t.TempDir(), "job")
	stdout, stderr, err := run(t, "", "batch", irisDir, "--input", in, "--output", out, "-o", "json", "--batch", "64")
	var silent exitError
	if !errors.As(err, &silent) || !strings.Contains(err.Error(), "2 of 4 inputs failed") {
		t.Fatalf("cortex batch: %v, want it to fail for the 2 inputs that failed\n%s", err, stderr)
	}
	var tot batch.Totals
	if err := json.Unmarshal([]byte(stdout), &tot); err != nil {
		t.Fatalf("-o json: %v\n%s", err, stdout)
	}
	if tot.Total != 4 || tot.Succeeded != 2 || tot.Failed != 2 || tot.Output != filepath.Join(out, "outputs.jsonl") {
		t.Errorf("totals %+v, want 4 = 2 + 2 failed", tot)
	}
	outs := jsonLines(t, tot.Output)
	if len(outs) != 2 {
		t.Fatalf("outputs: %v", outs)
	}
	label := func(o map[string]any) any {
		return o["output"].(map[string]any)["outputs"].([]any)[0].(map[string]any)["data"].([]any)[0]
	}
	if outs[0]["index"] != 0.0 || label(outs[0]) != 0.0 || outs[1]["index"] != 3.0 || label(outs[1]) != 2.0 || outs[1]["output"].(map[string]any)["id"] != "v" {
		t.Errorf("outputs %v, want setosa (0) for index 0, virginica (2) for index 3 with its id", outs)
	}
	fails := jsonLines(t, tot.Failures)
	if len(fails) != 2 || fails[0]["line"] != 2.0 || fails[0]["status"] != 422.0 || !strings.Contains(fails[0]["error"].(string), "shape") ||
		fails[1]["line"] != 3.0 || fails[1]["status"] != 0.0 || !strings.Contains(fails[1]["error"].(string), "not valid JSON") {
		t.Errorf("failures %v, want line 2's 422 (shape) and line 3 not JSON", fails)
	}
}

// TestBatchEchoDirectoryInput runs echo-go over a directory of inputs,
// served by a cortex serve and found by its name.
func TestBatchEchoDirectoryInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a function")
	}
	s := startServe(t, []string{echoDir}, serveOptions{}, 1)
	in := t.TempDir()
	for name, body := range map[string]string{"1-ada.json": `{"name":"Ada"}`, "2-empty.json": `{"name":""}`, "3-teapot.json": `{"name":"teapot"}`, "4-grace.json": `{"name":"Grace"}`} {
		os.WriteFile(filepath.Join(in, name), []byte(body), 0o644)
	}
	out := t.TempDir()
	_, stderr, err := run(t, "", "batch", "echo-go", "--serve-addr", strings.TrimPrefix(s.base, "http://"), "--target", "local", "-i", in, "--output", out)
	if err == nil || !strings.Contains(err.Error(), "2 of 4 inputs failed") {
		t.Fatalf("cortex batch: %v, want 2 of 4 failed\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "4 inputs: 2 succeeded, 2 failed") {
		t.Errorf("stderr has no summary:\n%s", stderr)
	}
	outs := jsonLines(t, filepath.Join(out, "outputs.jsonl"))
	if len(outs) != 2 || outs[0]["file"] != "1-ada.json" || outs[1]["file"] != "4-grace.json" ||
		outs[0]["output"].(map[string]any)["message"] != "Hello, Ada!" {
		t.Errorf("outputs %v, want Ada's and Grace's greetings, by file", outs)
	}
	fails := jsonLines(t, filepath.Join(out, "failures.jsonl"))
	if len(fails) != 2 || fails[0]["file"] != "2-empty.json" || fails[0]["status"] != 422.0 || fails[1]["file"] != "3-teapot.json" || fails[1]["status"] != 418.0 {
		t.Errorf("failures %v, want the empty name's 422 and the teapot's 418", fails)
	}
}

func TestBatchFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no input", []string{"batch", "http://127.0.0.1:1", "--output", "x"}, "--input is required"},
		{"no output", []string{"batch", "http://127.0.0.1:1", "--input", "x"}, "--output is required"},
		{"zero concurrency", []string{"batch", "http://127.0.0.1:1", "-i", "x", "--output", "y", "-c", "0"}, "--concurrency 0"},
		{"not a function", []string{"batch", t.TempDir(), "-i", "x", "--output", "y"}, "no cortex.yaml there"},
		{"format", []string{"batch", "http://127.0.0.1:1", "-i", "x", "--output", "y", "-o", "yaml"}, `--output "yaml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := run(t, "", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// A missing input is refused before the function is built.
	_, stderr, err := run(t, "", "batch", echoDir, "-i", filepath.Join(t.TempDir(), "nope.jsonl"), "--output", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "--input") || strings.Contains(stderr, "building") {
		t.Errorf("a missing input: %v, stderr %q; want the --input error before any build", err, stderr)
	}
}

func TestRouteURL(t *testing.T) {
	tests := []struct {
		url, path string
		given     bool
		want      string
	}{
		{"http://h:1", "/predict", false, "http://h:1/predict"},
		{"http://h:1/iris/", "/predict", false, "http://h:1/iris/predict"},
		{"http://h:1/iris/predict", "/predict", false, "http://h:1/iris/predict"},
		{"http://h:1/v2/models/iris/infer", "/predict", false, "http://h:1/v2/models/iris/infer"},
		{"https://h/v1/models/iris:predict", "/predict", false, "https://h/v1/models/iris:predict"},
		{"http://h:1/iris", "/v2/models/iris/infer", true, "http://h:1/iris/v2/models/iris/infer"},
	}
	for _, tt := range tests {
		got, err := routeURL(tt.url, tt.path, tt.given)
		if err != nil || got != tt.want {
			t.Errorf("routeURL(%q, %q, %v) = %q, %v; want %q", tt.url, tt.path, tt.given, got, err, tt.want)
		}
	}
}

// TestBatchKillAndResume runs the CLI (built here, -tags nodeploy as the
// demo builds it) over iris rows through a cortex serve: once through,
// then killed with SIGKILL, resumed and stopped with SIGTERM, resumed
// again to the end. Both runs' outputs.jsonl and failures.jsonl must be
// the same bytes. BATCH_ROWS sets the rows (default 100000: about 3 s a
// run on 2 cores at --batch 16 -c 2, small enough batches that the kills
// land midway).
func TestBatchKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and runs a function")
	}
	rows := 100000
	if v := os.Getenv("BATCH_ROWS"); v != "" {
		fmt.Sscan(v, &rows)
	}
	// The CLI links while cortex serve starts iris: seconds of the test
	// that need not follow each other.
	bin := filepath.Join(t.TempDir(), "cortex")
	build := exec.Command("go", "build", "-tags", "nodeploy", "-o", bin, ".")
	var buildOut bytes.Buffer
	build.Stdout, build.Stderr = &buildOut, &buildOut
	if err := build.Start(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	built := false
	t.Cleanup(func() {
		if !built { // the test stopped before it waited for the build
			build.Process.Kill()
			build.Wait()
		}
	})
	s := startServe(t, []string{irisDir}, serveOptions{scaleDownAfter: time.Hour}, 1)
	addr := strings.TrimPrefix(s.base, "http://")
	input := irisRows(t, rows, 7, rows/2, rows-1)
	err := build.Wait()
	built = true
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, buildOut.String())
	}
	args := func(out string) []string {
		return []string{"batch", "iris", "--serve-addr", addr, "-i", input, "--output", out, "--batch", "16", "-c", "2", "-o", "json"}
	}
	totals := func(stdout []byte) batch.Totals {
		var tot batch.Totals
		if err := json.Unmarshal(stdout, &tot); err != nil {
			t.Fatalf("-o json: %v: %s", err, stdout)
		}
		return tot
	}

	whole := t.TempDir()
	start := time.Now()
	cmd := exec.Command(bin, args(whole)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("the uninterrupted run: %v, want exit status 1 (3 lines are not JSON)\n%s", err, stderr.String())
	}
	if tot := totals(stdout); tot.Succeeded != rows-3 || tot.Failed != 3 {
		t.Fatalf("the uninterrupted run: %+v", tot)
	}
	t.Logf("uninterrupted: %d rows in %v", rows, time.Since(start).Round(time.Millisecond))

	resumed := t.TempDir()
	// stopAt runs the job until its checkpoint passes frac of the rows,
	// then sends sig, and returns how the process ended.
	stopAt := func(frac float64, sig syscall.Signal) (*os.ProcessState, []byte) {
		cmd := exec.Command(bin, args(resumed)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		for {
			select {
			case <-done:
				t.Fatalf("the run ended before %.0f%% of the rows: make the job longer (BATCH_ROWS)\n%s", frac*100, stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
			if n := committed(t, resumed); n >= int(frac*float64(rows)) {
				cmd.Process.Signal(sig)
				<-done
				t.Logf("%v at %d of %d rows", sig, n, rows)
				return cmd.ProcessState, out.Bytes()
			}
		}
	}
	if st, _ := stopAt(0.2, syscall.SIGKILL); st.Success() {
		t.Fatal("the killed run succeeded")
	}
	st, out := stopAt(0.6, syscall.SIGTERM)
	if st.ExitCode() != 130 {
		t.Errorf("a run stopped by SIGTERM exited %d, want 130", st.ExitCode())
	}
	if tot := totals(out); tot.SkippedDone == 0 || tot.Succeeded+tot.Failed >= rows {
		t.Errorf("the stopped run's totals %+v, want what the killed run did skipped and the job unfinished", tot)
	}
	cmd = exec.Command(bin, args(resumed)...)
	cmd.Stderr = &stderr
	stdout, _ = cmd.Output()
	if tot := totals(stdout); tot.SkippedDone < rows/2 || tot.Succeeded != rows-3 || tot.Failed != 3 {
		t.Errorf("the last run's totals %+v, want more than half skipped and the whole job's counts", tot)
	}
	for _, f := range []string{"outputs.jsonl", "failures.jsonl"} {
		a, b := fileSHA(t, filepath.Join(whole, f)), fileSHA(t, filepath.Join(resumed, f))
		if a != b {
			t.Errorf("%s: sha256 %s after a kill and a stop, %s uninterrupted", f, b, a)
		}
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", stderr.String())
	}
}

// committed is the job's last checkpointed index, from its state.
func committed(t *testing.T, out string) int {
	b, _ := os.ReadFile(filepath.Join(out, batch.StateDir, "checkpoints"))
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	n := 0
	fmt.Sscan(string(lines[len(lines)-1]), &n)
	return n
}

func fileSHA(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}
