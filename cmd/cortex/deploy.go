//go:build !nodeploy

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/cortexfn/cortex/packager"
	"github.com/cortexfn/cortex/packager/deploy"
	"github.com/cortexfn/cortex/packager/deploy/knative"
	"github.com/cortexfn/cortex/packager/deploy/lambda"
	"github.com/cortexfn/cortex/packager/sign"
	"github.com/cortexfn/cortex/packager/spec"
)

// platforms are where cortex deploys, in the order the help lists them;
// the first is the default. A new target is a package under
// packager/deploy and a line here.
var platforms = deploy.Platforms{
	knative.Platform(),
	lambda.Platform(),
}

// targetLocal is cortex serve on this machine (cortex predict only).
const targetLocal = "local"

// --dry-run's values, as kubectl's: client needs no cluster, server asks it.
const (
	dryRunNone   = "none"
	dryRunClient = "client"
	dryRunServer = "server"
)

// addTarget adds --target and every platform's flags for command c, for
// the commands that act on a deployed function, and returns what opens
// the target --target names.
func addTarget(cmd *cobra.Command, target *string, c deploy.Command) deploy.Openers {
	cmd.Flags().StringVar(target, "target", platforms.Default(), "where NAME is deployed: "+or(platforms.Names()))
	return platforms.Flags(cmd.Flags(), c)
}

// open opens the target name for one command; its progress goes to stderr.
func open(targets deploy.Openers, name string, stderr io.Writer) (deploy.Target, error) {
	t, ok := targets.Open(name, stderr)
	if !ok {
		return nil, fmt.Errorf("--target %q: use %s", name, or(platforms.Names()))
	}
	return t, nil
}

// start is how get, delete and rollback begin: check --output, open the
// target.
func start(cmd *cobra.Command, targets deploy.Openers, name, output string) (deploy.Target, error) {
	if err := checkFormat(output); err != nil {
		return nil, err
	}
	return open(targets, name, cmd.ErrOrStderr())
}

// or joins words as "a, b or c".
func or(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// long is a command's long help: intro, each platform's paragraph for c,
// outro.
func long(intro string, c deploy.Command, outro string) string {
	var parts []string
	for _, p := range []string{intro, platforms.Doc(c), outro} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "\n\n")
}

func checkFormat(format string) error {
	switch format {
	case "text", "json", "yaml":
		return nil
	}
	return fmt.Errorf("--output %q: use text, json or yaml", format)
}

// writeData prints v as JSON or YAML.
func writeData(w io.Writer, format string, v any) error {
	if format == "json" {
		return writeJSON(w, v)
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// report prints what a target call returned, as data for --output json or
// yaml, else as text, and returns the call's error: a call that failed
// after it changed something still says what it changed.
func report(cmd *cobra.Command, format string, r deploy.Report, err error) error {
	if r == nil {
		return err
	}
	var werr error
	if format == "text" {
		werr = r.WriteText(cmd.OutOrStdout(), cmd.ErrOrStderr())
	} else {
		werr = writeData(cmd.OutOrStdout(), format, r)
	}
	if werr != nil {
		return werr
	}
	return err
}

func deployCmd() *cobra.Command {
	var (
		target, output, tag, dryRun string
		verify                      string
		traffic                     int
		timeout                     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "deploy DIR",
		Short: "Package a function and deploy it to Knative or to an AWS Lambda function URL",
		Long: long("Deploy packages the function (as cortex package does; unchanged inputs reuse the build cache)\n"+
			"and deploys it. It writes only what its target deploys into DIR/dist, which it replaces as\n"+
			"cortex package does: what an earlier cortex package wrote there is not kept.", deploy.CommandDeploy,
			"The URL goes to stdout; progress to stderr. --dry-run prints what would be applied, as kubectl's\n"+
				"does: --dry-run (client) needs no cluster and no registry and prints the Service as cortex.yaml\n"+
				"makes it; --dry-run=server merges it with the Service the cluster has and runs the cluster's\n"+
				"checks, writing nothing. For Lambda, a dry run reads the function to print the calls it would make."),
		Example: "  cortex deploy samples/iris --registry ghcr.io/acme\n" +
			"  cortex deploy samples/iris --traffic 10 --tag canary\n" +
			"  cortex deploy samples/iris --dry-run -o yaml\n" +
			"  cortex deploy samples/iris --dry-run=server -o yaml\n" +
			"  cortex deploy samples/iris --target lambda --role arn:aws:iam::123456789012:role/cortex\n" +
			"  cortex deploy samples/iris --target lambda --registry 123456789012.dkr.ecr.eu-west-1.amazonaws.com/cortex  # a container image",
		Args: cobra.ExactArgs(1),
	}
	f := cmd.Flags()
	f.StringVarP(&target, "target", "t", "", or(platforms.Names())+" (default: lambda when cortex.yaml has only targets.lambda, else knative)")
	f.IntVar(&traffic, "traffic", 0, "percent of traffic for the new revision: 1..99 for a canary, 100 to take all traffic back from a pinned revision")
	f.StringVar(&tag, "tag", deploy.DefaultTag, "tag of the canary's traffic target (it gets its own URL)")
	f.DurationVar(&timeout, "timeout", 0, "how long to wait for the new revision (default: its progress deadline plus a minute; Lambda 5m)")
	f.StringVar(&dryRun, "dry-run", dryRunNone, "client or server: print the object (Knative) or the calls (Lambda) that would be applied; write nothing")
	f.Lookup("dry-run").NoOptDefVal = dryRunClient
	f.StringVarP(&output, "output", "o", "text", "text, json or yaml")
	f.StringVar(&verify, "verify", "", "PEM public key (ECDSA P-256, as cosign's): refuse an image not signed with its private key (cortex package --sign)")
	targets := platforms.Flags(f, deploy.CommandDeploy)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(output); err != nil {
			return err
		}
		o := deploy.DeployOptions{Timeout: timeout, Traffic: traffic, Tag: tag}
		if verify != "" {
			var err error
			if o.Verify, err = sign.LoadPublicKey(verify); err != nil {
				return fmt.Errorf("--verify: %w", err)
			}
		}
		switch dryRun {
		case dryRunNone:
		case dryRunClient, dryRunServer:
			o.DryRun = deploy.DryRun(dryRun)
		default:
			return fmt.Errorf("--dry-run=%q: use client (the default for a bare --dry-run) or server", dryRun)
		}
		dir := args[0]
		s, err := spec.Load(dir)
		if err != nil {
			return err
		}
		if target == "" {
			target = platforms.For(s)
		}
		stderr := cmd.ErrOrStderr()
		t, err := open(targets, target, stderr)
		if err != nil {
			return err
		}
		fn := &deploy.Function{Dir: dir, Spec: s, Build: packager.BuildOptions{Progress: stderr}}
		r, err := t.Deploy(cmd.Context(), fn, o)
		return report(cmd, output, r, err)
	}
	return cmd
}

func getCmd() *cobra.Command {
	var output, target string
	cmd := &cobra.Command{
		Use:   "get [NAME]",
		Short: "Show deployed functions on Knative or Lambda: URL, readiness or state, and how they run",
		Long: long("Get shows the function NAME, or with no NAME every function cortex deployed.", deploy.CommandGet,
			"A table goes to stdout; --output json or yaml prints every field."),
		Example: "  cortex get\n" +
			"  cortex get iris -o yaml\n" +
			"  cortex get --target lambda --region eu-west-1",
		Args: cobra.MaximumNArgs(1),
	}
	targets := addTarget(cmd, &target, deploy.CommandGet)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		t, err := start(cmd, targets, target, output)
		if err != nil {
			return err
		}
		var r deploy.Report
		if len(args) == 1 {
			r, err = t.Get(cmd.Context(), args[0])
		} else {
			r, err = t.List(cmd.Context())
		}
		return report(cmd, output, r, err)
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text, json or yaml")
	return cmd
}

func deleteCmd() *cobra.Command {
	var (
		yes, force, dryRun bool
		output, target     string
	)
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a deployed function: a Knative Service with its revisions, or a Lambda function with its URL",
		Long:  long("Delete asks for confirmation (--yes does not), then deletes the function.", deploy.CommandDelete, ""),
		Example: "  cortex delete iris\n" +
			"  cortex delete iris --target lambda --region eu-west-1 --yes\n" +
			"  cortex delete iris --target lambda --dry-run",
		Args: cobra.ExactArgs(1),
	}
	targets := addTarget(cmd, &target, deploy.CommandDelete)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		t, err := start(cmd, targets, target, output)
		if err != nil {
			return err
		}
		o := deploy.DeleteOptions{Force: force, DryRun: dryRun}
		if !yes {
			o.Confirm = func(what string) error { return confirmDelete(cmd, what) }
		}
		r, err := t.Delete(cmd.Context(), args[0], o)
		return report(cmd, output, r, err)
	}
	f := cmd.Flags()
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	f.BoolVar(&force, "force", false, "Lambda: delete a function cortex did not deploy (no cortex.function tag)")
	f.BoolVar(&dryRun, "dry-run", false, "Lambda: print the calls that would be made; delete nothing")
	f.StringVarP(&output, "output", "o", "text", "text, json or yaml")
	return cmd
}

// confirmDelete asks whether to delete what; a no ends the command.
func confirmDelete(cmd *cobra.Command, what string) error {
	fmt.Fprintf(cmd.ErrOrStderr(), "delete %s? [y/N] ", what)
	ok, err := confirm(cmd.InOrStdin())
	if err != nil {
		return err
	}
	if !ok {
		return exitError{"not deleted"}
	}
	return nil
}

// confirm reads one line and reports whether it says yes. End of input is
// a no.
func confirm(r io.Reader) (bool, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

func rollbackCmd() *cobra.Command {
	var (
		output, target string
		timeout        time.Duration
		dryRun         bool
	)
	cmd := &cobra.Command{
		Use:   "rollback NAME [REVISION|VERSION]",
		Short: "Serve an earlier release of a function: a Knative revision or a Lambda version (default: the previous one)",
		Long: long("", deploy.CommandRollback,
			"A later cortex deploy serves its new release again. The URL goes to stdout; what was done to\n"+
				"stderr. --dry-run prints the Service (Knative) or the calls (Lambda) that would be applied."),
		Example: "  cortex rollback iris\n" +
			"  cortex rollback iris iris-00003\n" +
			"  cortex rollback iris --target lambda --region eu-west-1\n" +
			"  cortex rollback iris 4 --target lambda --dry-run",
		Args: cobra.RangeArgs(1, 2),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text, json or yaml")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "Knative: how long to wait for Knative to report the route Ready")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the Service (Knative) or the calls (Lambda) that would be applied; write nothing")
	targets := addTarget(cmd, &target, deploy.CommandRollback)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		t, err := start(cmd, targets, target, output)
		if err != nil {
			return err
		}
		o := deploy.RollbackOptions{DryRun: dryRun}
		if cmd.Flags().Changed("timeout") {
			o.Timeout = timeout // else the target's own default
		}
		to := ""
		if len(args) == 2 {
			to = args[1]
		}
		r, err := t.Rollback(cmd.Context(), args[0], to, o)
		return report(cmd, output, r, err)
	}
	return cmd
}

// addResolveFlags adds the flags that say where a deployed function lives
// (--target, every platform's flags) and returns what finds its base URL,
// and the HTTP client to call it with, from its name. The local target,
// cortex serve on this machine, is predict's alone: it is found by asking
// cortex serve, not a platform, and the demo build (-tags nodeploy) keeps
// it without the platforms.
func addResolveFlags(cmd *cobra.Command) func(ctx context.Context, name string, stderr io.Writer) (string, *http.Client, error) {
	var target, local string
	targets := platforms.Flags(cmd.Flags(), deploy.CommandPredict)
	names := append([]string{targetLocal}, platforms.Names()...)
	cmd.Flags().StringVar(&target, "target", platforms.Default(), "where NAME runs: "+or(append([]string{"local (cortex serve)"}, platforms.Names()...))+
		" (default: local when cortex serve at --serve-addr serves NAME, else "+platforms.Default()+")")
	cmd.Flags().StringVar(&local, "serve-addr", "127.0.0.1:8080", "the address of cortex serve, for --target local")
	return func(ctx context.Context, name string, stderr io.Writer) (string, *http.Client, error) {
		t := target
		if !cmd.Flags().Changed("target") && servesLocally(ctx, local, name, stderr) {
			t = targetLocal
			fmt.Fprintf(stderr, "%s: cortex serve at %s (--target %s for a deployed one)\n", name, local, or(platforms.Names()))
		}
		if t == targetLocal {
			return "http://" + local + "/" + name, serveClient(local), nil
		}
		d, ok := targets.Open(t, stderr)
		if !ok {
			return "", nil, fmt.Errorf("--target %q: use %s", t, or(names))
		}
		ep, err := d.URL(ctx, name)
		if err != nil {
			return "", nil, err
		}
		if ep.Client == nil {
			ep.Client = http.DefaultClient
		}
		return ep.URL, ep.Client, nil
	}
}
