package deploy

import (
	"context"
	"crypto"
	"io"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/cortexfn/cortex/packager"
	"github.com/cortexfn/cortex/packager/spec"
)

// Target is a platform that runs functions, opened for one command: it
// has read its flags and connects when a call first needs to. Each call
// returns a Report of what it did or found; a call that fails after it
// changed something returns both, so the Report says what was changed.
type Target interface {
	// Deploy packages fn with the outputs the platform needs and deploys
	// it.
	Deploy(ctx context.Context, fn *Function, o DeployOptions) (Report, error)
	// Get reports the deployed function name.
	Get(ctx context.Context, name string) (Report, error)
	// List reports the functions cortex deployed there.
	List(ctx context.Context) (Report, error)
	// Delete deletes the function name.
	Delete(ctx context.Context, name string, o DeleteOptions) (Report, error)
	// Rollback serves the earlier release to of the function name, or
	// with to "", the one before the release serving now.
	Rollback(ctx context.Context, name, to string, o RollbackOptions) (Report, error)
	// URL finds where the function name answers.
	URL(ctx context.Context, name string) (Endpoint, error)
}

// Function is a function to deploy.
type Function struct {
	// Dir is the function directory; Spec its cortex.yaml.
	Dir  string
	Spec *spec.Spec
	// Build says how to build it: progress, cache.
	Build packager.BuildOptions
}

// Package builds fn from its loaded Spec (cortex.yaml is read once per
// deploy) and writes the outputs outs into its dist/, and
// nothing else (see packager.Options): a target packages only what it
// deploys. registry is the repository OutputPush pushes to and the
// manifests name the image in.
func (fn *Function) Package(ctx context.Context, registry string, outs ...packager.Output) (*packager.Result, error) {
	return packager.PackageSpec(ctx, fn.Spec, packager.Options{BuildOptions: fn.Build, Registry: registry, Outputs: outs})
}

// DryRun says whether, and how, a deploy only shows what it would do.
type DryRun string

// The dry runs, as kubectl's --dry-run: a client dry run needs no cluster
// (a target that cannot tell them apart treats both as server).
const (
	// DryRunNone writes.
	DryRunNone DryRun = ""
	// DryRunClient shows the object cortex.yaml makes, asking nobody.
	DryRunClient DryRun = "client"
	// DryRunServer asks the platform what would change, and changes
	// nothing.
	DryRunServer DryRun = "server"
)

// DeployOptions says how Deploy works. The zero value deploys with every
// target's defaults. A target refuses an option it cannot honour: a field
// that is not zero is an option given.
type DeployOptions struct {
	DryRun DryRun
	// Timeout bounds the wait for the new release. 0: the target's
	// default.
	Timeout time.Duration
	// Traffic is the new release's share of traffic in percent: 1..99 is
	// a canary, 100 takes all traffic. 0: the target's default.
	Traffic int
	// Tag names a canary's own URL. Default DefaultTag.
	Tag string
	// Verify, when set, is the public key the image must be signed with
	// (cortex package --sign, or cosign): an image without a valid
	// signature by it is refused and nothing is deployed. A target that
	// deploys no image refuses the option.
	Verify crypto.PublicKey
}

// DefaultTag names a canary when DeployOptions.Tag does not.
const DefaultTag = "candidate"

// DeleteOptions says how Delete works. The zero value deletes a function
// cortex deployed, without asking.
type DeleteOptions struct {
	// Force deletes a function cortex did not deploy.
	Force bool
	// DryRun shows what would be deleted and deletes nothing.
	DryRun bool
	// Confirm, when set, is asked before anything is deleted, with what
	// would be; its error ends the delete.
	Confirm func(what string) error
}

// RollbackOptions says how Rollback works. The zero value rolls back with
// the target's defaults.
type RollbackOptions struct {
	// DryRun shows what would change and changes nothing.
	DryRun bool
	// Timeout bounds the wait for the rollback to take effect. 0: the
	// target's default.
	Timeout time.Duration
}

// Endpoint is where a deployed function answers.
type Endpoint struct {
	// URL is the function's base URL.
	URL string
	// Client calls it, when the platform needs more than a plain client
	// (requests signed for it). Nil: http.DefaultClient.
	Client *http.Client
}

// Command names the cortex command a target's flags and help are for.
type Command string

// The commands that act on deployed functions.
const (
	CommandDeploy   Command = "deploy"
	CommandGet      Command = "get"
	CommandDelete   Command = "delete"
	CommandRollback Command = "rollback"
	// CommandPredict only looks a function's URL up.
	CommandPredict Command = "predict"
)

// Platform is a kind of Target, as the CLI offers it: its name, its part
// of the help, and its flags.
type Platform struct {
	// Name is what --target calls it, and what cortex.yaml's targets
	// calls its section.
	Name string
	// Doc is the paragraph each command's long help gives the platform.
	Doc map[Command]string
	// Flags adds the platform's flags for command c to fs and returns what
	// opens the Target once fs is parsed, with progress receiving the
	// lines the target prints as it works.
	Flags func(fs *pflag.FlagSet, c Command) func(progress io.Writer) Target
}

// Platforms are the targets a CLI offers, in the order its help lists
// them; the first is the default.
type Platforms []Platform

// Names lists the platforms' names, in order.
func (ps Platforms) Names() []string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return names
}

// Default is the platform a command uses when none is named.
func (ps Platforms) Default() string { return ps[0].Name }

// For is where a function goes when no target is named: the only platform
// cortex.yaml configures (a targets section of its name), else Default.
func (ps Platforms) For(s *spec.Spec) string {
	var configured []string
	for _, p := range ps {
		if s.Has("targets." + p.Name) {
			configured = append(configured, p.Name)
		}
	}
	if len(configured) == 1 {
		return configured[0]
	}
	return ps.Default()
}

// Doc is every platform's paragraph for command c, in order, with a blank
// line between them.
func (ps Platforms) Doc(c Command) string {
	var out string
	for _, p := range ps {
		if d := p.Doc[c]; d != "" {
			if out != "" {
				out += "\n\n"
			}
			out += d
		}
	}
	return out
}

// Flags adds every platform's flags for command c to fs, and returns what
// opens the one a command names once fs is parsed.
func (ps Platforms) Flags(fs *pflag.FlagSet, c Command) Openers {
	open := Openers{}
	for _, p := range ps {
		open[p.Name] = p.Flags(fs, c)
	}
	return open
}

// Openers open a command's target by its name, from the flags that
// Platforms.Flags added.
type Openers map[string]func(progress io.Writer) Target

// Open opens the target name, false when there is none of that name.
func (o Openers) Open(name string, progress io.Writer) (Target, bool) {
	open, ok := o[name]
	if !ok {
		return nil, false
	}
	return open(progress), true
}
