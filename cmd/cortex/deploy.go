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
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/spf13/cobra"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"

	"github.com/cortexfn/cortex/packager"
	kdeploy "github.com/cortexfn/cortex/packager/deploy/knative"
	ldeploy "github.com/cortexfn/cortex/packager/deploy/lambda"
	"github.com/cortexfn/cortex/packager/knative"
	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime/host"
)

// Deploy targets.
const (
	targetKnative = "knative"
	targetLambda  = "lambda"
	// targetLocal is cortex serve on this machine (cortex predict only).
	targetLocal = "local"
)

// --dry-run's values, as kubectl's: client needs no cluster, server asks it.
const (
	dryRunNone   = "none"
	dryRunClient = "client"
	dryRunServer = "server"
)

// addTarget adds --target, for the commands that act on a deployed
// function, and returns where its value goes.
func addTarget(cmd *cobra.Command) *string {
	var target string
	cmd.Flags().StringVar(&target, "target", targetKnative, "where NAME is deployed: knative or lambda")
	return &target
}

func badTarget(target string) error {
	return fmt.Errorf("--target %q: use knative or lambda", target)
}

// clusterFlags are the kubectl-style flags of every command that talks to
// a Kubernetes cluster.
type clusterFlags struct {
	kc kdeploy.Kubeconfig
}

func (f *clusterFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.kc.Path, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, else ~/.kube/config)")
	fl.StringVar(&f.kc.Context, "context", "", "kubeconfig context (default the current one)")
	fl.StringVarP(&f.kc.Namespace, "namespace", "n", "", "namespace (default: targets.knative.namespace for deploy, else the context's, else default)")
}

// client connects to the cluster and returns the namespace to use when the
// command names none: the flag's, else the context's, else "default".
func (f *clusterFlags) client(stderr io.Writer) (*kdeploy.Client, string, bool, error) {
	cfg, ns, explicit, err := f.kc.Load()
	if err != nil {
		return nil, "", false, err
	}
	c, err := kdeploy.New(cfg, kdeploy.WithProgress(stderr))
	if err != nil {
		return nil, "", false, err
	}
	if ns == "" {
		ns = spec.DefaultNamespace
	}
	return c, ns, explicit, nil
}

// awsFlags are the flags of every command that talks to AWS.
type awsFlags struct {
	region, profile string
}

func (f *awsFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.region, "region", "", "AWS region (default $AWS_REGION or the profile's)")
	cmd.Flags().StringVar(&f.profile, "profile", "", "AWS shared config profile (default $AWS_PROFILE)")
}

// client is the Lambda client for the standard AWS configuration.
func (f *awsFlags) client(ctx context.Context) (*awslambda.Client, error) {
	cfg, err := f.config(ctx)
	if err != nil {
		return nil, err
	}
	return awslambda.NewFromConfig(cfg), nil
}

// config loads the standard AWS configuration: environment, shared config
// and credentials files, SSO, web identity, instance roles.
func (f *awsFlags) config(ctx context.Context) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if f.region != "" {
		opts = append(opts, config.WithRegion(f.region))
	}
	if f.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(f.profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no AWS region: pass --region or set AWS_REGION")
	}
	return cfg, nil
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

// defaultTarget is where a function goes when --target is not given:
// lambda when cortex.yaml configures only targets.lambda, else knative.
func defaultTarget(s *spec.Spec) string {
	if s.Has("targets.lambda") && !s.Has("targets.knative") {
		return targetLambda
	}
	return targetKnative
}

func deployCmd() *cobra.Command {
	var (
		target, registry, output, tag, role string
		traffic                             int
		timeout                             time.Duration
		dryRun                              string
		cf                                  clusterFlags
		af                                  awsFlags
	)
	cmd := &cobra.Command{
		Use:   "deploy DIR",
		Short: "Package a function and deploy it to Knative or to an AWS Lambda function URL",
		Long: "Deploy packages the function (as cortex package does; unchanged inputs reuse the build cache)\n" +
			"and deploys it.\n\n" +
			"--target knative pushes the image to --registry (or targets.knative.registry), checks the\n" +
			"cluster (Knative installed, namespace, your permissions, the config-features flags a GPU\n" +
			"function needs), creates or updates the Knative Service keeping what others set on it, and\n" +
			"waits until the new revision is Ready. --traffic 1..99 makes it a canary beside the revision\n" +
			"serving now, reachable on its own under --tag.\n\n" +
			"--target lambda creates or updates the function from the zip (provided.al2023) with the\n" +
			"standard AWS credential chain, publishes it as a new version, points the alias " + ldeploy.Alias + " at it\n" +
			"(cortex rollback goes back to an earlier one), and gives the alias a function URL\n" +
			"(targets.lambda.url_auth; NONE makes it public). Creating a function needs --role. A function\n" +
			"an earlier cortex deployed has its URL on the function itself: it moves to the alias, with a\n" +
			"new address.\n\n" +
			"The URL goes to stdout; progress to stderr. --dry-run prints what would be applied, as kubectl's\n" +
			"does: --dry-run (client) needs no cluster and no registry and prints the Service as cortex.yaml\n" +
			"makes it; --dry-run=server merges it with the Service the cluster has and runs the cluster's\n" +
			"checks, writing nothing. For Lambda, a dry run reads the function to print the calls it would make.",
		Example: "  cortex deploy samples/iris --registry ghcr.io/acme\n" +
			"  cortex deploy samples/iris --traffic 10 --tag canary\n" +
			"  cortex deploy samples/iris --dry-run -o yaml\n" +
			"  cortex deploy samples/iris --dry-run=server -o yaml\n" +
			"  cortex deploy samples/iris --target lambda --role arn:aws:iam::123456789012:role/cortex",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			if dryRun != dryRunNone && dryRun != dryRunClient && dryRun != dryRunServer {
				return fmt.Errorf("--dry-run=%q: use client (the default for a bare --dry-run) or server", dryRun)
			}
			dry := dryRun != dryRunNone
			dir := args[0]
			s, err := spec.Load(dir)
			if err != nil {
				return err
			}
			if target == "" {
				target = defaultTarget(s)
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			ctx := cmd.Context()
			switch target {
			case targetKnative:
				if registry == "" {
					registry = s.Targets.Knative.Registry
				}
				if registry == "" && !dry {
					return errors.New("deploying to Knative needs a registry the cluster can pull from: pass --registry ghcr.io/acme or set targets.knative.registry")
				}
				// The cluster first: a deploy that cannot reach it fails
				// before packaging. A client dry run needs none.
				var (
					d        *kdeploy.Client
					ns       string
					explicit bool
				)
				if dryRun != dryRunClient {
					if d, ns, explicit, err = cf.client(stderr); err != nil {
						return err
					}
				}
				svc, err := packageForKnative(ctx, dir, registry, dry, stderr)
				if err != nil {
					return err
				}
				switch {
				case cf.kc.Namespace != "":
					svc.Namespace = cf.kc.Namespace
				case !s.Has("targets.knative.namespace") && explicit:
					svc.Namespace = ns
				}
				if dryRun == dryRunClient {
					return printKnative(stdout, stderr, output, &kdeploy.Result{
						Action: "create or update", Name: svc.Name, Namespace: svc.Namespace, DryRun: true, Object: svc,
					}, nil)
				}
				res, err := d.Deploy(ctx, svc, kdeploy.DeployOptions{Traffic: traffic, Tag: tag, DryRun: dry, Timeout: timeout})
				return printKnative(stdout, stderr, output, res, err)
			case targetLambda:
				if cmd.Flags().Changed("traffic") {
					return errors.New("--traffic is for Knative: Lambda function URLs have no traffic split")
				}
				r, err := packager.Package(ctx, dir, packager.Options{BuildOptions: packager.BuildOptions{Progress: stderr}, Outputs: []packager.Output{packager.OutputLambda}})
				if err != nil {
					return err
				}
				if r.Lambda == nil {
					return fmt.Errorf("no Lambda zip was written: %s", strings.Join(r.Warnings, "; "))
				}
				api, err := af.client(ctx)
				if err != nil {
					return err
				}
				res, err := ldeploy.Deploy(ctx, api, ldeploy.FromSpec(s, r.Lambda.Zip), ldeploy.Options{
					Role: role, DryRun: dry, Timeout: timeout, Progress: stderr,
				})
				if res == nil {
					return err
				}
				return printLambda(stdout, output, res, res.DryRun, res.Calls, err, func() {
					fmt.Fprintf(stderr, "%s Lambda function %s: the alias %s serves version %s (URL auth %s)\n", res.Action, res.Name, ldeploy.Alias, res.Version, res.AuthType)
					fmt.Fprintln(stdout, res.URL)
				})
			}
			return badTarget(target)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&target, "target", "t", "", "knative or lambda (default: lambda when cortex.yaml has only targets.lambda, else knative)")
	f.StringVar(&registry, "registry", "", "repository to push the image to (default targets.knative.registry)")
	f.IntVar(&traffic, "traffic", 0, "percent of traffic for the new revision: 1..99 for a canary, 100 to take all traffic back from a pinned revision")
	f.StringVar(&tag, "tag", kdeploy.DefaultTag, "tag of the canary's traffic target (it gets its own URL)")
	f.DurationVar(&timeout, "timeout", 0, "how long to wait for the new revision (default: its progress deadline plus a minute; Lambda 5m)")
	f.StringVar(&dryRun, "dry-run", dryRunNone, "client or server: print the object (Knative) or the calls (Lambda) that would be applied; write nothing")
	f.Lookup("dry-run").NoOptDefVal = dryRunClient
	f.StringVarP(&output, "output", "o", "text", "text, json or yaml")
	f.StringVar(&role, "role", "", "Lambda execution role ARN (needed to create the function)")
	cf.add(cmd)
	af.add(cmd)
	return cmd
}

// packageForKnative packages the function, pushing it to registry unless
// this is a dry run, and returns its Knative Service.
func packageForKnative(ctx context.Context, dir, registry string, dryRun bool, stderr io.Writer) (*servingv1.Service, error) {
	o := packager.Options{BuildOptions: packager.BuildOptions{Progress: stderr}, Registry: registry, Outputs: []packager.Output{packager.OutputKnative, packager.OutputPush}}
	if dryRun {
		o.Outputs = []packager.Output{packager.OutputKnative} // no push
	}
	r, err := packager.Package(ctx, dir, o)
	if err != nil {
		return nil, err
	}
	return r.Knative.Service, nil
}

func printKnative(stdout, stderr io.Writer, output string, res *kdeploy.Result, err error) error {
	if res == nil {
		return err
	}
	switch dry := res.DryRun; {
	case output != "text":
		if werr := writeData(stdout, output, res); werr != nil {
			return werr
		}
	case dry:
		b, yerr := knative.YAML(res.Object)
		if yerr != nil {
			return yerr
		}
		fmt.Fprintf(stderr, "dry run: would %s Service %s/%s\n", res.Action, res.Namespace, res.Name)
		stdout.Write(b)
	case err == nil:
		fmt.Fprintf(stderr, "%s %s/%s: revision %s is Ready\n", res.Action, res.Namespace, res.Name, res.Revision)
		for _, t := range res.Traffic {
			if t.Tag != "" && t.URL != "" {
				fmt.Fprintf(stderr, "  %d%% to %s, tag %s: %s\n", t.Percent, t.Revision, t.Tag, t.URL)
			}
		}
		fmt.Fprintln(stdout, res.URL)
	}
	return err
}

// printLambda prints what a Lambda deploy or rollback did: res as data
// for --output json or yaml, else the calls of a dry run, else (when it
// worked) what text prints.
func printLambda(stdout io.Writer, output string, res any, dryRun bool, calls []ldeploy.Call, err error, text func()) error {
	switch {
	case output != "text":
		if werr := writeData(stdout, output, res); werr != nil {
			return werr
		}
	case dryRun:
		writeCalls(stdout, calls)
	case err == nil:
		text()
	}
	return err
}

// writeCalls prints the Lambda calls of a dry run, one a line.
func writeCalls(w io.Writer, calls []ldeploy.Call) {
	for _, c := range calls {
		state := "call"
		if c.Planned {
			state = "would call"
		}
		fmt.Fprintf(w, "%s %s %s\n", state, c.Op, c.Detail)
	}
}

func getCmd() *cobra.Command {
	var (
		output string
		cf     clusterFlags
		af     awsFlags
	)
	cmd := &cobra.Command{
		Use:   "get [NAME]",
		Short: "Show deployed functions on Knative or Lambda: URL, readiness or state, and how they run",
		Long: "Get shows the function NAME, or with no NAME every function cortex deployed.\n\n" +
			"--target knative (the default) reads the Knative Services in the namespace: readiness, URL,\n" +
			"revision, traffic, scale and GPU.\n\n" +
			"--target lambda reads the Lambda functions in the region, with the standard AWS credential\n" +
			"chain: URL and its auth type, the version the alias " + ldeploy.Alias + " serves, state, architecture,\n" +
			"memory and last change. The list holds the functions with the cortex.function tag; NAME may be\n" +
			"any function.\n\n" +
			"A table goes to stdout; --output json or yaml prints every field.",
		Example: "  cortex get\n" +
			"  cortex get iris -o yaml\n" +
			"  cortex get --target lambda --region eu-west-1",
		Args: cobra.MaximumNArgs(1),
	}
	target := addTarget(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(output); err != nil {
			return err
		}
		switch *target {
		case targetKnative:
			d, ns, _, err := cf.client(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return show(cmd, output, args, "no functions in namespace "+ns, writeFunctions,
				func(ctx context.Context, name string) (*kdeploy.Function, error) { return d.Get(ctx, ns, name) },
				func(ctx context.Context) ([]kdeploy.Function, error) { return d.List(ctx, ns) })
		case targetLambda:
			api, err := af.client(cmd.Context())
			if err != nil {
				return err
			}
			get := func(ctx context.Context, name string) (*ldeploy.Info, error) {
				i, err := ldeploy.Get(ctx, api, name)
				if err == nil && !i.DeployedByCortex {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s was not deployed by cortex (it has no %s tag)\n", name, ldeploy.TagFunction)
				}
				return i, err
			}
			return show(cmd, output, args, "no cortex functions on Lambda in region "+api.Options().Region, writeLambdaFunctions,
				get, func(ctx context.Context) ([]ldeploy.Info, error) { return ldeploy.List(ctx, api) })
		}
		return badTarget(*target)
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text, json or yaml")
	cf.add(cmd)
	af.add(cmd)
	return cmd
}

// show is `cortex get` on one target: the function args names, or all of
// them, as data or as a table; none is what stderr says when there are
// none.
func show[F any](cmd *cobra.Command, output string, args []string, none string, table func(io.Writer, []F) error,
	get func(context.Context, string) (*F, error), list func(context.Context) ([]F, error)) error {
	stdout := cmd.OutOrStdout()
	var fs []F
	if len(args) == 1 {
		f, err := get(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if output != "text" {
			return writeData(stdout, output, f)
		}
		fs = []F{*f}
	} else {
		var err error
		if fs, err = list(cmd.Context()); err != nil {
			return err
		}
		if output != "text" {
			return writeData(stdout, output, fs)
		}
		if len(fs) == 0 {
			fmt.Fprintln(cmd.ErrOrStderr(), none)
			return nil
		}
	}
	return table(stdout, fs)
}

func writeFunctions(w io.Writer, fs []kdeploy.Function) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tREADY\tURL\tREVISION\tTRAFFIC\tSCALE\tGPU")
	for _, f := range fs {
		var tr []string
		for _, t := range f.Traffic {
			s := fmt.Sprintf("%s=%d%%", t.Revision, t.Percent)
			if t.Tag != "" {
				s += "(" + t.Tag + ")"
			}
			tr = append(tr, s)
		}
		ready := f.Ready
		if f.Ready != "True" && f.Reason != "" {
			ready += " (" + f.Reason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s-%s\t%d\n", f.Name, ready, dash(f.URL), dash(f.Revision), dash(strings.Join(tr, ",")), f.MinScale, f.MaxScale, f.GPU)
	}
	return tw.Flush()
}

func writeLambdaFunctions(w io.Writer, fs []ldeploy.Info) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tURL\tAUTH\tVERSION\tSTATE\tARCH\tMEMORY\tLAST-MODIFIED")
	for _, f := range fs {
		state := f.State
		if f.LastUpdateStatus != "" && f.LastUpdateStatus != "Successful" {
			state += " (update " + f.LastUpdateStatus + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d MB\t%s\n", f.Name, dash(f.URL), dash(f.URLAuth), dash(f.Version), dash(state), dash(f.Arch), f.Memory, dash(f.LastModified))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// DeleteResult is what `cortex delete -o json` prints for Knative.
type DeleteResult struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Deleted   bool   `json:"deleted"`
}

func deleteCmd() *cobra.Command {
	var (
		yes, force, dryRun bool
		output             string
		cf                 clusterFlags
		af                 awsFlags
	)
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a deployed function: a Knative Service with its revisions, or a Lambda function with its URL",
		Long: "Delete asks for confirmation (--yes does not), then deletes the function.\n\n" +
			"--target knative (the default) deletes the Knative Service; Knative deletes its revisions and\n" +
			"routes with it.\n\n" +
			"--target lambda deletes the function URL config of the alias " + ldeploy.Alias + ", then the Lambda function\n" +
			"(its versions, aliases and resource policies go with it). It refuses a function without the cortex.function tag, one cortex did not\n" +
			"deploy, unless --force. --dry-run prints the calls it would make and deletes nothing.",
		Example: "  cortex delete iris\n" +
			"  cortex delete iris --target lambda --region eu-west-1 --yes\n" +
			"  cortex delete iris --target lambda --dry-run",
		Args: cobra.ExactArgs(1),
	}
	target := addTarget(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkFormat(output); err != nil {
			return err
		}
		name, ctx, stderr := args[0], cmd.Context(), cmd.ErrOrStderr()
		switch *target {
		case targetKnative:
			if cmd.Flags().Changed("force") || cmd.Flags().Changed("dry-run") {
				return errors.New("--force and --dry-run are for --target lambda")
			}
			d, ns, _, err := cf.client(stderr)
			if err != nil {
				return err
			}
			if err := confirmDelete(cmd, yes, fmt.Sprintf("function %s in namespace %s, with all its revisions", name, ns)); err != nil {
				return err
			}
			if err := d.Delete(ctx, ns, name); err != nil {
				return err
			}
			if output != "text" {
				return writeData(cmd.OutOrStdout(), output, DeleteResult{Name: name, Namespace: ns, Deleted: true})
			}
			return nil
		case targetLambda:
			api, err := af.client(ctx)
			if err != nil {
				return err
			}
			if err := confirmDelete(cmd, yes || dryRun, fmt.Sprintf("Lambda function %s in region %s, with its function URL", name, api.Options().Region)); err != nil {
				return err
			}
			res, err := ldeploy.Delete(ctx, api, name, ldeploy.DeleteOptions{Force: force, DryRun: dryRun, Progress: stderr})
			if res == nil {
				return err
			}
			return printLambda(cmd.OutOrStdout(), output, res, res.DryRun, res.Calls, err, func() {})
		}
		return badTarget(*target)
	}
	f := cmd.Flags()
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	f.BoolVar(&force, "force", false, "Lambda: delete a function cortex did not deploy (no cortex.function tag)")
	f.BoolVar(&dryRun, "dry-run", false, "Lambda: print the calls that would be made; delete nothing")
	f.StringVarP(&output, "output", "o", "text", "text, json or yaml")
	cf.add(cmd)
	af.add(cmd)
	return cmd
}

// confirmDelete asks whether to delete what, unless yes; a no ends the
// command.
func confirmDelete(cmd *cobra.Command, yes bool, what string) error {
	if yes {
		return nil
	}
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
		output  string
		timeout time.Duration
		dryRun  bool
		target  *string
		cf      clusterFlags
		af      awsFlags
	)
	cmd := &cobra.Command{
		Use:   "rollback NAME [REVISION|VERSION]",
		Short: "Serve an earlier release of a function: a Knative revision or a Lambda version (default: the previous one)",
		Long: "--target knative (the default) points 100% of the function's traffic at REVISION, or at the\n" +
			"newest Ready revision older than the one serving most traffic now.\n\n" +
			"--target lambda points the function's alias " + ldeploy.Alias + ", which serves its function URL, at the\n" +
			"published VERSION, or at the newest published version older than the one it serves now. Each\n" +
			"cortex deploy publishes a version; a function deployed by an earlier cortex has none until it\n" +
			"is deployed again.\n\n" +
			"A later cortex deploy serves its new release again. The URL goes to stdout; what was done to\n" +
			"stderr. --dry-run prints the Service (Knative) or the calls (Lambda) that would be applied.",
		Example: "  cortex rollback iris\n" +
			"  cortex rollback iris iris-00003\n" +
			"  cortex rollback iris --target lambda --region eu-west-1\n" +
			"  cortex rollback iris 4 --target lambda --dry-run",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			name, stdout, stderr := args[0], cmd.OutOrStdout(), cmd.ErrOrStderr()
			switch *target {
			case targetKnative:
			case targetLambda:
				if cmd.Flags().Changed("timeout") {
					return errors.New("--timeout is for Knative: moving a Lambda alias takes effect at once")
				}
				api, err := af.client(cmd.Context())
				if err != nil {
					return err
				}
				o := ldeploy.RollbackOptions{DryRun: dryRun, Progress: stderr}
				if len(args) == 2 {
					o.Version = args[1]
				}
				res, err := ldeploy.Rollback(cmd.Context(), api, name, o)
				if res == nil {
					return err
				}
				if res.DryRun && output == "text" {
					fmt.Fprintf(stderr, "dry run: the alias %s of %s would serve version %s (now %s)\n", ldeploy.Alias, name, res.Version, res.From)
				}
				return printLambda(stdout, output, res, res.DryRun, res.Calls, err, func() {
					if res.Action == "unchanged" {
						fmt.Fprintf(stderr, "%s: the alias %s already serves version %s\n", name, ldeploy.Alias, res.Version)
					} else {
						fmt.Fprintf(stderr, "%s: the alias %s serves version %s (was %s)\n", name, ldeploy.Alias, res.Version, res.From)
					}
					fmt.Fprintln(stdout, res.URL)
				})
			default:
				return badTarget(*target)
			}
			d, ns, _, err := cf.client(stderr)
			if err != nil {
				return err
			}
			o := kdeploy.RollbackOptions{DryRun: dryRun, Timeout: timeout}
			if len(args) == 2 {
				o.Revision = args[1]
			}
			res, err := d.Rollback(cmd.Context(), ns, name, o)
			if res != nil && err == nil && output == "text" && !dryRun {
				fmt.Fprintf(stderr, "%s/%s: all traffic to %s\n", ns, name, res.Revision)
				fmt.Fprintln(stdout, res.URL)
				return nil
			}
			return printKnative(stdout, stderr, output, res, err)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text, json or yaml")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "Knative: how long to wait for Knative to report the route Ready")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the Service (Knative) or the calls (Lambda) that would be applied; write nothing")
	target = addTarget(cmd)
	cf.add(cmd)
	af.add(cmd)
	return cmd
}

// addResolveFlags adds the flags that say where a deployed function lives
// (--target, the cluster flags, the AWS flags) and returns what finds its
// base URL, and the HTTP client to call it with, from its name.
func addResolveFlags(cmd *cobra.Command) func(ctx context.Context, name string, stderr io.Writer) (string, *http.Client, error) {
	var (
		cf    clusterFlags
		af    awsFlags
		local string
	)
	cf.add(cmd)
	af.add(cmd)
	var target string
	cmd.Flags().StringVar(&target, "target", targetKnative, "where NAME runs: local (cortex serve), knative or lambda (default: local when cortex serve at --serve-addr serves NAME, else knative)")
	cmd.Flags().StringVar(&local, "serve-addr", "127.0.0.1:8080", "the address of cortex serve, for --target local")
	return func(ctx context.Context, name string, stderr io.Writer) (string, *http.Client, error) {
		t := target
		if !cmd.Flags().Changed("target") && servesLocally(ctx, local, name) {
			t = targetLocal
			fmt.Fprintf(stderr, "%s: cortex serve at %s (--target knative or lambda for a deployed one)\n", name, local)
		}
		switch t {
		case targetLocal:
			return "http://" + local + "/" + name, http.DefaultClient, nil
		case targetKnative:
			d, ns, _, err := cf.client(nil)
			if err != nil {
				return "", nil, err
			}
			u, err := d.URL(ctx, ns, name)
			return u, http.DefaultClient, err
		case targetLambda:
			cfg, err := af.config(ctx)
			if err != nil {
				return "", nil, err
			}
			ep, err := ldeploy.URL(ctx, awslambda.NewFromConfig(cfg), name)
			if err != nil {
				return "", nil, err
			}
			if !ep.IAM {
				return ep.URL, http.DefaultClient, nil
			}
			return ep.URL, &http.Client{Transport: ldeploy.SigningTransport(cfg, nil)}, nil
		}
		return "", nil, fmt.Errorf("--target %q: use local, knative or lambda", t)
	}
}

// servesLocally reports whether a cortex serve at addr lists the function
// name in its status.
func servesLocally(ctx context.Context, addr, name string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	all, err := host.FetchStatus(ctx, nil, "http://"+addr)
	_, ok := all[name]
	return err == nil && ok
}
