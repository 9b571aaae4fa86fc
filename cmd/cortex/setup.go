package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cortexfn/cortex"
	"github.com/cortexfn/cortex/packager/build"
	"github.com/cortexfn/cortex/packager/onnxruntime"
)

// SetupResult is what `cortex setup -o json` reports.
type SetupResult struct {
	Version     string            `json:"version"`
	SDK         string            `json:"sdk"`
	ONNXRuntime map[string]string `json:"onnxruntime"`
}

func setupCmd() *cobra.Command {
	var (
		output string
		arches []string
	)
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Fetch what building and running functions needs, so later builds work offline",
		Long: "Fetch what building and running functions needs into the cortex cache, so that later builds work offline:\n" +
			"the SDK this CLI builds functions with (written from the CLI itself) and the Go modules it needs\n" +
			"(from the Go module proxy into the module cache), and the ONNX Runtime library (from the npm package\n" +
			"onnxruntime-node, with npm). Every command fetches what it is missing by itself; setup does it up front.",
		Example: "  cortex setup\n  cortex setup --arch amd64,arm64 -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			sdk, err := build.ExtractSDK("")
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "SDK %s in %s\n", sdk.Version, sdk.Dir)
			fmt.Fprintln(stderr, "downloading the Go modules the SDK needs (go mod download)")
			dl := exec.CommandContext(cmd.Context(), "go", "mod", "download")
			dl.Dir = sdk.Dir
			dl.Env = append(os.Environ(), "GOWORK=off")
			var errb bytes.Buffer
			dl.Stdout, dl.Stderr = &errb, &errb
			if err := dl.Run(); err != nil {
				return fmt.Errorf("go mod download in %s: %w: %s", sdk.Dir, err, strings.TrimSpace(errb.String()))
			}
			root, err := build.CacheRoot("")
			if err != nil {
				return err
			}
			res := SetupResult{Version: cortex.Version, SDK: sdk.Dir, ONNXRuntime: map[string]string{}}
			for _, arch := range arches {
				p, err := onnxruntime.Ensure(cmd.Context(), root, arch, stderr)
				if err != nil {
					return err
				}
				fmt.Fprintf(stderr, "ONNX Runtime %s for linux/%s: %s\n", onnxruntime.Version, arch, p)
				res.ONNXRuntime["linux/"+arch] = p
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ready: functions now build and run without the network (their own third-party modules aside)")
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.Flags().StringSliceVar(&arches, "arch", []string{goruntime.GOARCH}, "architectures to fetch ONNX Runtime for (amd64, arm64)")
	return cmd
}
