// Command cortex builds, runs, tests and packages Cortex functions.
//
// Output conventions: data a script reads goes to stdout (with --output json
// where it has structure); progress, logs and errors go to stderr. A failed
// command exits 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cortexfn/cortex"
	"github.com/cortexfn/cortex/cmd/cortex/internal/client"
	"github.com/cortexfn/cortex/cmd/cortex/internal/examples"
	"github.com/cortexfn/cortex/cmd/cortex/internal/local"
	"github.com/cortexfn/cortex/cmd/cortex/internal/scaffold"
	"github.com/cortexfn/cortex/packager/build"
	"github.com/cortexfn/cortex/packager/spec"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdin, os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		var silent exitError
		switch {
		case errors.Is(err, context.Canceled) && ctx.Err() != nil:
			// Ctrl-C or SIGTERM in the middle of a build or a request:
			// the command stopped because it was asked to, as a shell's
			// 130 says, not because something failed.
			fmt.Fprintln(os.Stderr, "cortex: interrupted")
			os.Exit(130)
		case !errors.As(err, &silent):
			fmt.Fprintln(os.Stderr, "cortex:", err)
		}
		os.Exit(1)
	}
}

// exitError ends the command with status 1 after it has printed what it
// had to say.
type exitError struct{ msg string }

func (e exitError) Error() string { return e.msg }

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "cortex",
		Short:         "Build, run, test and deploy inference functions",
		Version:       cortex.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("cortex {{.Version}}\n")
	root.Flags().BoolP("version", "v", false, "print the CLI's version")
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(versionCmd(), initCmd(), serveCmd(), predictCmd(), testCmd(), batchCmd(), packageCmd(), deployCmd(), getCmd(), deleteCmd(), rollbackCmd(), setupCmd(), explainCmd())
	return root
}

func checkOutput(format string) error {
	if format != "text" && format != "json" {
		return fmt.Errorf("--output %q: use text or json", format)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// VersionInfo is what `cortex version` reports.
type VersionInfo struct {
	// Version is cortex.Version: the CLI's, and the SDK's it builds
	// functions with.
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

func versionInfo() VersionInfo {
	v := VersionInfo{Version: cortex.Version, Go: goruntime.Version(), Platform: goruntime.GOOS + "/" + goruntime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.Revision = s.Value
			}
		}
	}
	return v
}

func versionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the CLI's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			v := versionInfo()
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), v)
			}
			rev := ""
			if v.Revision != "" {
				rev = " " + v.Revision[:min(12, len(v.Revision))]
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "cortex %s%s (%s, %s)\n", v.Version, rev, v.Go, v.Platform)
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// InitResult is what `cortex init -o json` reports.
type InitResult struct {
	Name  string   `json:"name"`
	Dir   string   `json:"dir"`
	Type  string   `json:"type"`
	Files []string `json:"files"`
}

func initCmd() *cobra.Command {
	var typ, output string
	cmd := &cobra.Command{
		Use:   "init NAME",
		Short: "Create a function directory NAME that builds, serves and tests as it is",
		Long: "Create a function directory NAME that builds, serves and tests as it is: cortex.yaml, an example\n" +
			"under examples/ for cortex test, a .gitignore, and for --type go a predictor package, a go.mod that\n" +
			"requires this CLI's cortex version and a go.work (ignored by git) that lets go vet, go test and\n" +
			"editors find the cortex SDK on this machine.",
		Example: "  cortex init greeter --type go\n" +
			"  cortex init classifier --type onnx",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			dir := args[0]
			name := filepath.Base(filepath.Clean(dir))
			o := scaffold.Options{Version: cortex.Version}
			if typ == spec.TypeGo {
				sdk, err := build.ExtractSDK("")
				if err != nil {
					return err
				}
				o.SDKDir = sdk.Dir
				if o.SDKSum, err = os.ReadFile(filepath.Join(sdk.Dir, "go.sum")); err != nil {
					return fmt.Errorf("reading the SDK's go.sum: %w", err)
				}
			}
			files, err := scaffold.Write(dir, name, typ, o)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), InitResult{Name: name, Dir: dir, Type: typ, Files: files})
			}
			for _, f := range files {
				fmt.Fprintln(cmd.ErrOrStderr(), "created", f)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "next: cortex test %s   or   cortex serve %s   (every cortex.yaml key: cortex explain)\n", dir, dir)
			return nil
		},
	}
	cmd.Flags().StringVarP(&typ, "type", "t", spec.TypeGo, "predictor type: go or onnx")
	// -t is --target in deploy; here it still works, with a notice.
	cmd.Flags().MarkShorthandDeprecated("type", "use --type (-t means --target in cortex deploy)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func predictCmd() *cobra.Command {
	var (
		url, path, data, method, output string
		headers, query                  []string
		stream                          bool
	)
	cmd := &cobra.Command{
		Use:   "predict [NAME]",
		Short: "Send one request to a running function and print the answer",
		Long: "Send one request to a running function and print the answer.\n\n" +
			"With NAME, the function is one cortex serve runs (when the cortex serve at --serve-addr serves\n" +
			"NAME, or with --target local) or one deployed with cortex deploy: its URL comes from the Knative\n" +
			"Service or the Lambda function URL, and a request to a Lambda URL with auth type AWS_IAM is\n" +
			"signed (Signature Version 4) with the standard AWS credentials. Without NAME, --url is the\n" +
			"function's base URL.\n\n" +
			"A 2xx answer's body goes to stdout; any other status prints the body to stderr and fails.\n" +
			"-o json prints the status, headers and body as one JSON object, whatever the status.\n\n" +
			"--stream asks for the prediction as a stream (Accept: text/event-stream). A streamed answer\n" +
			"(asked for so, or with \"stream\": true in the body) is printed as it arrives: each event's data\n" +
			"on a line of its own (with -o json, one {\"event\", \"data\"} object a line); an error event goes\n" +
			"to stderr and fails.",
		Example: `  cortex predict greeter -d '{"name": "Ada"}'          # cortex serve greeter is running
  cortex predict --url http://localhost:8080 -d @input.json --query shout=true
  cortex predict iris --path /v2/models/iris/infer -d @examples/oip.json
  cortex predict iris --target knative -d @examples/oip.json --path /v2/models/iris/infer
  cortex predict iris --target lambda --region eu-west-1 -d '{}' -o json
  cortex predict textgen --stream -d '{"prompt": "In the beginning", "max_tokens": 32}'`,
		Args: cobra.MaximumNArgs(1),
	}
	resolve := addResolveFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkOutput(output); err != nil {
			return err
		}
		if len(args) == 1 && cmd.Flags().Changed("url") {
			return errors.New("give either NAME or --url, not both")
		}
		req, err := predictRequest(cmd.InOrStdin(), method, path, data, headers, query)
		if err != nil {
			return err
		}
		if stream && req.Header.Get("Accept") == "" {
			req.Header.Set("Accept", "text/event-stream")
		}
		base, hc := url, http.DefaultClient
		if len(args) == 1 {
			if base, hc, err = resolve(cmd.Context(), args[0], cmd.ErrOrStderr()); err != nil {
				return err
			}
		}
		return predict(cmd.Context(), hc, strings.TrimSuffix(base, "/"), req, output, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	f := cmd.Flags()
	f.StringVar(&url, "url", "http://localhost:8080", "the function's base URL")
	f.StringVar(&path, "path", "/predict", "the route")
	f.StringVarP(&data, "data", "d", "", "request body; @file reads a file, @- standard input")
	f.StringVarP(&method, "request", "X", "", "HTTP method (default POST with a body, else GET)")
	f.StringArrayVarP(&headers, "header", "H", nil, "header Key:value (repeatable)")
	f.StringArrayVar(&query, "query", nil, "query parameter key=value (repeatable)")
	f.StringVarP(&output, "output", "o", "text", "text or json")
	f.BoolVar(&stream, "stream", false, "ask for a stream (Accept: text/event-stream) and print it as it arrives")
	return cmd
}

func predictRequest(stdin io.Reader, method, path, data string, headers, query []string) (client.Request, error) {
	r := client.Request{Method: method, Path: path}
	var err error
	if r.Header, err = client.ParseHeader(headers); err != nil {
		return r, err
	}
	if r.Query, err = client.ParseQuery(query); err != nil {
		return r, err
	}
	if data != "" {
		if r.Body, err = client.ReadData(data, stdin); err != nil {
			return r, err
		}
	}
	return r, nil
}

// PredictResult is what `cortex predict -o json` prints.
type PredictResult struct {
	Status    int                 `json:"status"`
	Header    map[string][]string `json:"headers"`
	Body      json.RawMessage     `json:"body,omitempty"`
	Text      string              `json:"text,omitempty"`
	LatencyMS float64             `json:"latency_ms"`
}

// predict prints a 2xx body to stdout; any other status prints the body to
// stderr and fails. With output json, the whole answer goes to stdout: the
// body as JSON when it is JSON, else as text.
func predict(ctx context.Context, hc *http.Client, base string, r client.Request, output string, stdout, stderr io.Writer) error {
	var streamErr string
	r.OnEvent = func(name, data string) error {
		if name == "error" {
			streamErr = data
		}
		if output == "json" {
			var v any = data
			if json.Valid([]byte(data)) {
				v = json.RawMessage(data)
			}
			return json.NewEncoder(stdout).Encode(struct { // one line an event
				Event string `json:"event,omitempty"`
				Data  any    `json:"data"`
			}{name, v})
		}
		switch name {
		case "error":
			fmt.Fprintln(stderr, "the stream failed:", data)
			return nil
		case "done":
			return nil
		}
		_, err := fmt.Fprintln(stdout, data)
		return err
	}
	resp, err := client.Do(ctx, hc, base, r)
	if err != nil {
		return err
	}
	if resp.Streamed {
		if streamErr != "" {
			return exitError{"the stream ended with an error"}
		}
		return nil // printed as it arrived
	}
	failed := resp.Status < 200 || resp.Status > 299
	if output == "json" {
		res := PredictResult{Status: resp.Status, Header: resp.Header, LatencyMS: float64(resp.Latency.Microseconds()) / 1000}
		if json.Valid(resp.Body) {
			res.Body = resp.Body
		} else {
			res.Text = string(resp.Body)
		}
		if err := writeJSON(stdout, res); err != nil {
			return err
		}
		if failed {
			return exitError{fmt.Sprintf("status %d", resp.Status)}
		}
		return nil
	}
	body := resp.Body
	if len(body) > 0 && body[len(body)-1] != '\n' {
		body = append(body, '\n')
	}
	if failed {
		fmt.Fprintf(stderr, "%d %s", resp.Status, body)
		return exitError{fmt.Sprintf("status %d", resp.Status)}
	}
	_, err = stdout.Write(body)
	return err
}

func testCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Build and start a function, run its examples/*.json and report",
		Long: "Test builds the function in DIR (default: the current directory), starts it on a free port,\n" +
			"sends every examples/*.json request and compares the answer with the example's response.",
		Example: "  cortex test\n  cortex test samples/iris -o json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runTests(cmd.Context(), dir, output, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// runTests starts the function on a free port, runs every example and
// prints the results; any failure makes it fail.
func runTests(ctx context.Context, dir, output string, stdout, stderr io.Writer) error {
	// The function first: a directory that is none gets the spec's own
	// answer (no cortex.yaml, and how to make one), not "no examples".
	if _, err := spec.Load(dir); err != nil {
		return err
	}
	exs, err := examples.Load(dir)
	if err != nil {
		return err
	}
	if len(exs) == 0 {
		return fmt.Errorf("no examples in %s: add examples/*.json (see cortex init)", filepath.Join(dir, "examples"))
	}
	f, err := local.Start(ctx, local.Options{Dir: dir, Progress: stderr, Logs: stderr})
	if err != nil {
		return err
	}
	results := make([]examples.Result, 0, len(exs))
	for _, ex := range exs {
		if ctx.Err() != nil {
			break
		}
		results = append(results, examples.Run(ctx, nil, f.URL, ex))
	}
	stopErr := f.Stop(10 * time.Second)
	sum := examples.Summarize(f.Name, results)
	if output == "json" {
		err = writeJSON(stdout, sum)
	} else {
		err = examples.WriteTable(stdout, results)
		fmt.Fprintf(stdout, "%s: %d passed, %d failed\n", f.Name, sum.Passed, sum.Failed)
	}
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if sum.Failed > 0 {
		return exitError{fmt.Sprintf("%d of %d examples failed", sum.Failed, len(results))}
	}
	if stopErr != nil {
		return fmt.Errorf("the examples passed but stopping the function failed: %w", stopErr)
	}
	return nil
}
