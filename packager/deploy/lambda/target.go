package lambda

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/pflag"

	"github.com/cortexfn/cortex/packager"
	"github.com/cortexfn/cortex/packager/deploy"
	"github.com/cortexfn/cortex/packager/lambdazip"
	"github.com/cortexfn/cortex/packager/spec"
)

// Name is the platform's name: --target lambda, and cortex.yaml's
// targets.lambda.
const Name = "lambda"

// Platform is AWS Lambda as the CLI offers it: --region and --profile on
// every command, --role on deploy.
func Platform() deploy.Platform {
	return deploy.Platform{Name: Name, Doc: docs, Flags: flags}
}

var docs = map[deploy.Command]string{
	deploy.CommandDeploy: "--target lambda creates or updates the function from the zip (provided.al2023) with the\n" +
		"standard AWS credential chain, publishes it as a new version, points the alias " + Alias + " at it\n" +
		"(cortex rollback goes back to an earlier one), and gives the alias a function URL\n" +
		"(targets.lambda.url_auth; NONE makes it public). Creating a function needs --role. A function\n" +
		"an earlier cortex deployed has its URL on the function itself: it moves to the alias, with a\n" +
		"new address. With targets.lambda.package image, or a zip over Lambda's limits, it pushes the\n" +
		"container image to --registry (or targets.lambda.registry: an Amazon ECR repository, with your\n" +
		"docker credentials) and deploys the function from it (PackageType Image).",
	deploy.CommandGet: "--target lambda reads the Lambda functions in the region, with the standard AWS credential\n" +
		"chain: URL and its auth type, the version the alias " + Alias + " serves, state, architecture,\n" +
		"memory and last change. The list holds the functions with the cortex.function tag; NAME may be\n" +
		"any function.",
	deploy.CommandDelete: "--target lambda deletes the function URL config of the alias " + Alias + ", then the Lambda function\n" +
		"(its versions, aliases and resource policies go with it). It refuses a function without the cortex.function tag, one cortex did not\n" +
		"deploy, unless --force. --dry-run prints the calls it would make and deletes nothing.",
	deploy.CommandRollback: "--target lambda points the function's alias " + Alias + ", which serves its function URL, at the\n" +
		"published VERSION, or at the newest published version older than the one it serves now. Each\n" +
		"cortex deploy publishes a version; a function deployed by an earlier cortex has none until it\n" +
		"is deployed again.",
}

func flags(fs *pflag.FlagSet, c deploy.Command) func(io.Writer) deploy.Target {
	t := &target{}
	fs.StringVar(&t.region, "region", "", "AWS region (default $AWS_REGION or the profile's)")
	fs.StringVar(&t.profile, "profile", "", "AWS shared config profile (default $AWS_PROFILE)")
	var registry *pflag.Flag
	if c == deploy.CommandDeploy {
		fs.StringVar(&t.role, "role", "", "Lambda execution role ARN (needed to create the function)")
		registry = registryFlag(fs)
	}
	return func(progress io.Writer) deploy.Target {
		t.progress = progress
		if registry != nil {
			t.registry = registry.Value.String()
		}
		return t
	}
}

// registryFlag is deploy's --registry, which Knative's image and
// Lambda's both go to: another platform's when it has added one, else
// Lambda's own.
func registryFlag(fs *pflag.FlagSet) *pflag.Flag {
	const usage = "; for --target lambda, the repository the container image goes to (default targets.lambda.registry)"
	if f := fs.Lookup("registry"); f != nil {
		if !strings.Contains(f.Usage, usage) {
			f.Usage += usage
		}
		return f
	}
	fs.String("registry", "", "repository the Lambda container image is pushed to (default targets.lambda.registry)")
	return fs.Lookup("registry")
}

// target is Lambda for one command. It loads the AWS configuration when a
// call first needs it, after the checks of its options.
type target struct {
	region, profile, role string
	// registry is --registry, for a container-image function.
	registry string
	progress io.Writer
	// remote are added to the registry calls of the push (tests).
	remote []remote.Option
}

// connect loads the standard AWS configuration (environment, shared config
// and credentials files, SSO, web identity, instance roles) and returns
// the Lambda client for it.
func (t *target) connect(ctx context.Context) (*lambda.Client, aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if t.region != "" {
		opts = append(opts, config.WithRegion(t.region))
	}
	if t.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(t.profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, aws.Config{}, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, aws.Config{}, errors.New("no AWS region: pass --region or set AWS_REGION")
	}
	return lambda.NewFromConfig(cfg), cfg, nil
}

// Deploy loads the AWS configuration, packages the Lambda zip (and nothing
// else) and deploys it (see Deploy). A dry run of either kind makes the
// reads and lists the writes.
func (t *target) Deploy(ctx context.Context, fn *deploy.Function, o deploy.DeployOptions) (deploy.Report, error) {
	if o.Traffic != 0 {
		return nil, errors.New("--traffic is for Knative: Lambda function URLs have no traffic split")
	}
	if o.Verify != nil {
		return nil, errors.New("--verify is for Knative: a Lambda zip carries no signature, and a Lambda image is the one this deploy builds and pushes")
	}
	api, _, err := t.connect(ctx)
	if err != nil {
		return nil, err
	}
	// The secrets' values come from this command's environment; a missing
	// one fails the deploy before anything is built.
	f, err := FromSpecWithSecrets(fn.Spec, "", os.LookupEnv)
	if err != nil {
		return nil, err
	}
	registry := cmp.Or(t.registry, fn.Spec.Targets.Lambda.Registry)
	if registry == "" && fn.Spec.Targets.Lambda.Package == spec.LambdaPackageImage {
		return nil, ErrNoRegistry // before anything is built
	}
	r, err := fn.Package(ctx, registry, packager.OutputLambda)
	if err != nil {
		return nil, err
	}
	if r.Lambda == nil {
		return nil, fmt.Errorf("no Lambda package was written: %s", strings.Join(r.Warnings, "; "))
	}
	f.Zip = r.Lambda.Zip
	if im := r.Lambda.Image; im != nil {
		if r.Lambda.Reason != "" && t.progress != nil {
			fmt.Fprintf(t.progress, "deploying a container image: %s\n", r.Lambda.Reason)
		}
		if registry == "" {
			return nil, ErrNoRegistry
		}
		f.Zip, f.Env["CORTEX_CONFIG"] = "", lambdazip.ImageConfigPath
		if o.DryRun != deploy.DryRunNone {
			f.Image = im.Ref // not pushed: the calls name where it would be
		} else if f.Image, err = Push(ctx, im.Layout, strings.TrimSuffix(im.Ref, "@"+im.Digest), t.progress, t.remote...); err != nil {
			return nil, err
		}
	}
	res, err := Deploy(ctx, api, f, Options{
		Role: t.role, DryRun: o.DryRun != deploy.DryRunNone, Timeout: o.Timeout, Progress: t.progress,
	})
	if res == nil {
		return nil, err
	}
	return deploy.Data{V: res, Text: func(stdout, stderr io.Writer) error {
		switch {
		case res.DryRun:
			return writeCalls(stdout, res.Calls)
		case err == nil:
			fmt.Fprintf(stderr, "%s Lambda function %s: the alias %s serves version %s (URL auth %s)\n", res.Action, res.Name, Alias, res.Version, res.AuthType)
			_, err := fmt.Fprintln(stdout, res.URL)
			return err
		}
		return nil
	}}, err
}

// writeCalls prints the Lambda calls of a dry run, one a line.
func writeCalls(w io.Writer, calls []Call) error {
	for _, c := range calls {
		state := "call"
		if c.Planned {
			state = "would call"
		}
		if _, err := fmt.Fprintf(w, "%s %s %s\n", state, c.Op, c.Detail); err != nil {
			return err
		}
	}
	return nil
}

// infoTable is the Report of get: a row per function.
func infoTable(is []Info, one bool, none string) deploy.Report {
	return deploy.Table[Info]{
		Items: is, One: one, None: none,
		Columns: []string{"NAME", "URL", "AUTH", "VERSION", "STATE", "ARCH", "MEMORY", "LAST-MODIFIED"},
		Row: func(i Info) []string {
			state := i.State
			if i.LastUpdateStatus != "" && i.LastUpdateStatus != "Successful" {
				state += " (update " + i.LastUpdateStatus + ")"
			}
			return []string{i.Name, i.URL, i.URLAuth, i.Version, state, i.Arch, strconv.Itoa(int(i.Memory)) + " MB", i.LastModified}
		},
	}
}

// Get shows any function, saying so on the progress writer when cortex
// did not deploy it.
func (t *target) Get(ctx context.Context, name string) (deploy.Report, error) {
	api, _, err := t.connect(ctx)
	if err != nil {
		return nil, err
	}
	i, err := Get(ctx, api, name)
	if err != nil {
		return nil, err
	}
	if !i.DeployedByCortex && t.progress != nil {
		fmt.Fprintf(t.progress, "%s was not deployed by cortex (it has no %s tag)\n", name, TagFunction)
	}
	return infoTable([]Info{*i}, true, ""), nil
}

func (t *target) List(ctx context.Context) (deploy.Report, error) {
	api, cfg, err := t.connect(ctx)
	if err != nil {
		return nil, err
	}
	is, err := List(ctx, api)
	if err != nil {
		return nil, err
	}
	return infoTable(is, false, "no cortex functions on Lambda in region "+cfg.Region), nil
}

// Delete asks for confirmation unless this is a dry run, which deletes
// nothing and prints the calls it would make.
func (t *target) Delete(ctx context.Context, name string, o deploy.DeleteOptions) (deploy.Report, error) {
	api, cfg, err := t.connect(ctx)
	if err != nil {
		return nil, err
	}
	if o.Confirm != nil && !o.DryRun {
		if err := o.Confirm(fmt.Sprintf("Lambda function %s in region %s, with its function URL", name, cfg.Region)); err != nil {
			return nil, err
		}
	}
	res, err := Delete(ctx, api, name, DeleteOptions{Force: o.Force, DryRun: o.DryRun, Progress: t.progress})
	if res == nil {
		return nil, err
	}
	return deploy.Data{V: res, Text: func(stdout, _ io.Writer) error {
		if res.DryRun {
			return writeCalls(stdout, res.Calls)
		}
		return nil
	}}, err
}

// Rollback points the alias at the version to (see Rollback). Moving an
// alias takes effect at once: there is nothing to wait for.
func (t *target) Rollback(ctx context.Context, name, to string, o deploy.RollbackOptions) (deploy.Report, error) {
	if o.Timeout != 0 {
		return nil, errors.New("--timeout is for Knative: moving a Lambda alias takes effect at once")
	}
	api, _, err := t.connect(ctx)
	if err != nil {
		return nil, err
	}
	res, err := Rollback(ctx, api, name, RollbackOptions{Version: to, DryRun: o.DryRun, Progress: t.progress})
	if res == nil {
		return nil, err
	}
	return deploy.Data{V: res, Text: func(stdout, stderr io.Writer) error {
		switch {
		case res.DryRun:
			fmt.Fprintf(stderr, "dry run: the alias %s of %s would serve version %s (now %s)\n", Alias, name, res.Version, res.From)
			return writeCalls(stdout, res.Calls)
		case err != nil:
			return nil
		case res.Action == "unchanged":
			fmt.Fprintf(stderr, "%s: the alias %s already serves version %s\n", name, Alias, res.Version)
		default:
			fmt.Fprintf(stderr, "%s: the alias %s serves version %s (was %s)\n", name, Alias, res.Version, res.From)
		}
		_, err := fmt.Fprintln(stdout, res.URL)
		return err
	}}, err
}

// URL finds the alias's function URL; one whose auth type is AWS_IAM
// comes with a client that signs each request with the caller's
// credentials.
func (t *target) URL(ctx context.Context, name string) (deploy.Endpoint, error) {
	api, cfg, err := t.connect(ctx)
	if err != nil {
		return deploy.Endpoint{}, err
	}
	ep, err := URL(ctx, api, name)
	if err != nil {
		return deploy.Endpoint{}, err
	}
	if !ep.IAM {
		return deploy.Endpoint{URL: ep.URL}, nil
	}
	return deploy.Endpoint{URL: ep.URL, Client: &http.Client{Transport: SigningTransport(cfg, nil)}}, nil
}

var _ deploy.Target = (*target)(nil)
