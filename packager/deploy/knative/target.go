package knative

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/cortexfn/cortex/packager"
	"github.com/cortexfn/cortex/packager/deploy"
	manifest "github.com/cortexfn/cortex/packager/knative"
	"github.com/cortexfn/cortex/packager/sign"
	"github.com/cortexfn/cortex/packager/spec"
)

// Name is the platform's name: --target knative, and cortex.yaml's
// targets.knative.
const Name = "knative"

// Platform is Knative as the CLI offers it: --kubeconfig, --context and
// --namespace on every command, --registry on deploy.
func Platform() deploy.Platform {
	return deploy.Platform{Name: Name, Doc: docs, Flags: flags}
}

var docs = map[deploy.Command]string{
	deploy.CommandDeploy: "--target knative pushes the image to --registry (or targets.knative.registry), checks the\n" +
		"cluster (Knative installed, namespace, your permissions, the config-features flags a GPU\n" +
		"function needs), creates or updates the Knative Service keeping what others set on it, and\n" +
		"waits until the new revision is Ready. --traffic 1..99 makes it a canary beside the revision\n" +
		"serving now, reachable on its own under --tag.",
	deploy.CommandGet: "--target knative (the default) reads the Knative Services in the namespace: readiness, URL,\n" +
		"revision, traffic, scale and GPU.",
	deploy.CommandDelete: "--target knative (the default) deletes the Knative Service; Knative deletes its revisions and\n" +
		"routes with it.",
	deploy.CommandRollback: "--target knative (the default) points 100% of the function's traffic at REVISION, or at the\n" +
		"newest Ready revision older than the one serving most traffic now.",
}

func flags(fs *pflag.FlagSet, c deploy.Command) func(io.Writer) deploy.Target {
	t := &target{}
	fs.StringVar(&t.kc.Path, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, else ~/.kube/config)")
	fs.StringVar(&t.kc.Context, "context", "", "kubeconfig context (default the current one)")
	fs.StringVarP(&t.kc.Namespace, "namespace", "n", "", "namespace (default: targets.knative.namespace for deploy, else the context's, else default)")
	if c == deploy.CommandDeploy {
		fs.StringVar(&t.registry, "registry", "", "repository to push the image to (default targets.knative.registry)")
	}
	return func(progress io.Writer) deploy.Target {
		t.progress = progress
		return t
	}
}

// target is Knative for one command. It loads the kubeconfig when a call
// first needs the cluster: a client dry run never does.
type target struct {
	kc       Kubeconfig
	registry string
	progress io.Writer
}

// connect returns a Client for the cluster, and the namespace to use when
// the command names none: the flag's, else the context's (explicit), else
// "default".
func (t *target) connect() (c *Client, ns string, explicit bool, err error) {
	cfg, ns, explicit, err := t.kc.Load()
	if err != nil {
		return nil, "", false, err
	}
	if c, err = New(cfg, WithProgress(t.progress)); err != nil {
		return nil, "", false, err
	}
	if ns == "" {
		ns = spec.DefaultNamespace
	}
	return c, ns, explicit, nil
}

// Deploy checks the registry and connects to the cluster (unless this is
// a client dry run) before anything is built, packages the Service (and
// pushes the image unless this is a dry run), and applies it. The
// Service's namespace is --namespace, else targets.knative.namespace,
// else the kubeconfig context's, else default.
func (t *target) Deploy(ctx context.Context, fn *deploy.Function, o deploy.DeployOptions) (deploy.Report, error) {
	s := fn.Spec
	dry := o.DryRun != deploy.DryRunNone
	registry := t.registry
	if registry == "" {
		registry = s.Targets.Knative.Registry
	}
	if registry == "" && !dry {
		return nil, errors.New("deploying to Knative needs a registry the cluster can pull from: pass --registry ghcr.io/acme or set targets.knative.registry")
	}
	var (
		c        *Client
		ns       string
		explicit bool
	)
	if o.DryRun != deploy.DryRunClient {
		var err error
		if c, ns, explicit, err = t.connect(); err != nil {
			return nil, err
		}
	}
	outs := []packager.Output{packager.OutputKnative, packager.OutputPush}
	if dry || o.Verify != nil {
		// Nothing pushed; the manifest still names REGISTRY/NAME@digest.
		// An image that must be signed is deployed only from the
		// registry that holds it and its signature (a reproducible build
		// gives the digest the signer pushed): pushing it here would put
		// an unsigned image there first.
		outs = outs[:1]
	}
	r, err := fn.Package(ctx, registry, outs...)
	if err != nil {
		return nil, err
	}
	if o.Verify != nil {
		if _, err := sign.Verify(ctx, r.Image.Ref, o.Verify); err != nil {
			return nil, fmt.Errorf("refusing to deploy %s: %w (sign the image with cortex package --sign KEY --registry %s, or deploy without --verify)", r.Image.Ref, err, registry)
		}
		fmt.Fprintf(t.progress, "%s: signature verified\n", r.Image.Ref)
	}
	svc := r.Knative.Service
	switch {
	case t.kc.Namespace != "":
		svc.Namespace = t.kc.Namespace
	case !s.Has("targets.knative.namespace") && explicit:
		svc.Namespace = ns
	}
	// targets.knative.trigger: the Trigger follows the Service into the
	// namespace it is deployed to.
	trigger := r.Knative.Trigger
	if trigger != nil {
		trigger = trigger.In(svc.Namespace)
	}
	if o.DryRun == deploy.DryRunClient {
		return deployed(&Result{Action: "create or update", Name: svc.Name, Namespace: svc.Namespace, DryRun: true, Object: svc, Visibility: visibility(svc)}, nil)
	}
	var warnings []string
	if trigger != nil {
		// Before anything is written: a cluster without Eventing, or a
		// user who may not write Triggers, leaves no Service behind.
		if warnings, err = c.PreflightTrigger(ctx, trigger); err != nil {
			return nil, err
		}
		for _, w := range warnings {
			fmt.Fprintf(t.progress, "warning: %s\n", w)
		}
	}
	res, err := c.Deploy(ctx, svc, DeployOptions{Traffic: o.Traffic, Tag: o.Tag, DryRun: dry, Timeout: o.Timeout})
	if res != nil {
		res.Visibility = visibility(svc)
		res.Warnings = append(res.Warnings, warnings...)
	}
	if err != nil || dry {
		return deployed(res, err)
	}
	// The Service is Ready: events may reach it now. A spec that no
	// longer has a Trigger loses the one cortex wrote before.
	if trigger != nil {
		res.Trigger, err = c.ApplyTrigger(ctx, trigger)
	} else {
		res.Trigger, err = c.DeleteTrigger(ctx, svc.Namespace, svc.Name)
	}
	return deployed(res, err)
}

// visibility says who can reach svc: cluster-local when it has Knative's
// visibility label, else public.
func visibility(svc *servingv1.Service) string {
	if svc.Labels[manifest.VisibilityLabel] == "cluster-local" {
		return spec.VisibilityClusterLocal
	}
	return spec.VisibilityPublic
}

// reported is the Report of a deploy or a rollback: as text, the Service
// a dry run would write, else, when it worked, what done prints.
func reported(res *Result, err error, done func(stdout, stderr io.Writer) error) (deploy.Report, error) {
	if res == nil {
		return nil, err
	}
	return deploy.Data{V: res, Text: func(stdout, stderr io.Writer) error {
		switch {
		case res.DryRun:
			return writeDryRun(res, stdout, stderr)
		case err == nil:
			return done(stdout, stderr)
		}
		return nil
	}}, err
}

// deployed is the Report of a deploy: the new revision and its URL.
func deployed(res *Result, err error) (deploy.Report, error) {
	return reported(res, err, func(stdout, stderr io.Writer) error {
		fmt.Fprintf(stderr, "%s %s/%s: revision %s is Ready\n", res.Action, res.Namespace, res.Name, res.Revision)
		if res.Visibility == spec.VisibilityPublic {
			fmt.Fprintf(stderr, "  visibility public: anyone who reaches the cluster's ingress can call it (targets.knative.visibility: cluster-local keeps it inside the cluster)\n")
		} else {
			fmt.Fprintf(stderr, "  visibility %s: reachable from inside the cluster only\n", res.Visibility)
		}
		for _, tr := range res.Traffic {
			if tr.Tag != "" && tr.URL != "" {
				fmt.Fprintf(stderr, "  %d%% to %s, tag %s: %s\n", tr.Percent, tr.Revision, tr.Tag, tr.URL)
			}
		}
		if tr := res.Trigger; tr != nil {
			fmt.Fprintf(stderr, "  trigger %s %s: events from broker %s%s reach it, and its replies go back to the broker\n", tr.Name, tr.Action, tr.Broker, filterText(tr.Filter))
		}
		_, err := fmt.Fprintln(stdout, res.URL)
		return err
	})
}

// filterText is a Trigger's filter as the deploy's summary says it.
func filterText(f map[string]string) string {
	if len(f) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(f)) {
		parts = append(parts, k+"="+f[k])
	}
	return " (where " + strings.Join(parts, ", ") + ")"
}

// writeDryRun prints the Service a dry run would write, as YAML.
func writeDryRun(res *Result, stdout, stderr io.Writer) error {
	b, err := manifest.YAML(res.Object)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "dry run: would %s Service %s/%s\n", res.Action, res.Namespace, res.Name)
	_, err = stdout.Write(b)
	return err
}

// functionTable is the Report of get: a row per Service.
func functionTable(fs []Function, one bool, none string) deploy.Report {
	return deploy.Table[Function]{
		Items: fs, One: one, None: none,
		Columns: []string{"NAME", "READY", "URL", "REVISION", "TRAFFIC", "SCALE", "GPU"},
		Row: func(f Function) []string {
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
			return []string{f.Name, ready, f.URL, f.Revision, strings.Join(tr, ","), f.MinScale + "-" + f.MaxScale, strconv.FormatInt(f.GPU, 10)}
		},
	}
}

func (t *target) Get(ctx context.Context, name string) (deploy.Report, error) {
	c, ns, _, err := t.connect()
	if err != nil {
		return nil, err
	}
	f, err := c.Get(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	if c.Running(ctx, f) {
		withColdStart(ctx, f)
	} else {
		f.atZero = true
	}
	return oneFunction(*f), nil
}

func (t *target) List(ctx context.Context) (deploy.Report, error) {
	c, ns, _, err := t.connect()
	if err != nil {
		return nil, err
	}
	fs, err := c.List(ctx, ns)
	if err != nil {
		return nil, err
	}
	return functionTable(fs, false, "no functions in namespace "+ns), nil
}

// Deleted is what `cortex delete -o json` prints for Knative.
type Deleted struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Deleted   bool   `json:"deleted"`
}

// Delete deletes the Service. Knative has no dry run of a delete, and
// deletes only what cortex deployed (the Service is named for it).
func (t *target) Delete(ctx context.Context, name string, o deploy.DeleteOptions) (deploy.Report, error) {
	if o.Force || o.DryRun {
		return nil, errors.New("--force and --dry-run are for --target lambda")
	}
	c, ns, _, err := t.connect()
	if err != nil {
		return nil, err
	}
	if o.Confirm != nil {
		if err := o.Confirm(fmt.Sprintf("function %s in namespace %s, with all its revisions", name, ns)); err != nil {
			return nil, err
		}
	}
	if err := c.Delete(ctx, ns, name); err != nil {
		return nil, err
	}
	return deploy.Data{V: Deleted{Name: name, Namespace: ns, Deleted: true}}, nil
}

// Rollback sends all traffic to the revision to (see Client.Rollback).
func (t *target) Rollback(ctx context.Context, name, to string, o deploy.RollbackOptions) (deploy.Report, error) {
	c, ns, _, err := t.connect()
	if err != nil {
		return nil, err
	}
	res, err := c.Rollback(ctx, ns, name, RollbackOptions{Revision: to, DryRun: o.DryRun, Timeout: o.Timeout})
	return reported(res, err, func(stdout, stderr io.Writer) error {
		fmt.Fprintf(stderr, "%s/%s: all traffic to %s\n", ns, name, res.Revision)
		_, err := fmt.Fprintln(stdout, res.URL)
		return err
	})
}

func (t *target) URL(ctx context.Context, name string) (deploy.Endpoint, error) {
	c, ns, _, err := t.connect()
	if err != nil {
		return deploy.Endpoint{}, err
	}
	u, err := c.URL(ctx, ns, name)
	return deploy.Endpoint{URL: u}, err
}

var _ deploy.Target = (*target)(nil)
