//go:build nodeploy

// A CLI built with -tags nodeploy leaves out cortex deploy, get, delete and
// rollback, and predict's lookup of deployed functions: they bring the
// Kubernetes and Knative clients and the AWS SDK, a third of the CLI's cold
// compile, which the quick start's demo (make demo) does not need. make
// build makes the whole CLI.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"
)

func errNoDeploy(name string) error {
	return fmt.Errorf("this cortex was built without its deploy commands (-tags nodeploy, as make demo builds it): cortex %s needs the whole CLI: make build, or go install ./cmd/cortex", name)
}

func deployStub(name, short string) *cobra.Command {
	return &cobra.Command{
		Use:                name,
		Short:              short + " (not in this build)",
		DisableFlagParsing: true,
		RunE:               func(*cobra.Command, []string) error { return errNoDeploy(name) },
	}
}

func deployCmd() *cobra.Command   { return deployStub("deploy", "Deploy a function") }
func getCmd() *cobra.Command      { return deployStub("get", "Show deployed functions") }
func deleteCmd() *cobra.Command   { return deployStub("delete", "Delete a deployed function") }
func rollbackCmd() *cobra.Command { return deployStub("rollback", "Roll a deployed function back") }

// addResolveFlags resolves NAME to cortex serve's /NAME/ only.
func addResolveFlags(cmd *cobra.Command) func(ctx context.Context, name string, stderr io.Writer) (string, *http.Client, error) {
	var local, target string
	cmd.Flags().StringVar(&target, "target", "local", "where NAME runs: local (cortex serve) in this build")
	cmd.Flags().StringVar(&local, "serve-addr", "127.0.0.1:8080", "the address of cortex serve")
	return func(ctx context.Context, name string, stderr io.Writer) (string, *http.Client, error) {
		if target != "local" {
			return "", nil, errNoDeploy("predict --target " + target)
		}
		return "http://" + local + "/" + name, serveClient(local), nil
	}
}
