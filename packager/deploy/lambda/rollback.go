package lambda

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// ErrNoAlias: the function has no alias Alias, so it has no versions
// cortex published: an earlier cortex deployed it, or cortex did not.
var ErrNoAlias = errors.New("lambda: function has no alias " + Alias)

// ErrNoOlderVersion: the alias serves the oldest published version.
var ErrNoOlderVersion = errors.New("lambda: nothing to roll back to")

// RollbackOptions says how Rollback works. The zero value points the
// alias at the previous version.
type RollbackOptions struct {
	// Version to point the alias at. Default: the newest published
	// version older than the one the alias points at now.
	Version string
	// DryRun makes the read calls and lists the write it would make.
	DryRun bool
	// Progress receives a line per write.
	Progress io.Writer
}

// RollbackResult is what Rollback did. It marshals to what `--output
// json` prints.
type RollbackResult struct {
	Name string `json:"name"`
	// From is the version the alias pointed at; Version the one it points
	// at now (with DryRun: would point at).
	From    string `json:"from"`
	Version string `json:"version"`
	// Action is "updated" ("update" with DryRun), or "unchanged" when
	// the alias already pointed at Version.
	Action string `json:"action"`
	URL    string `json:"url,omitempty"`
	// DryRun: nothing was written; Calls lists what would be.
	DryRun bool   `json:"dry_run,omitempty"`
	Calls  []Call `json:"calls"`
}

// Rollback points the alias Alias of the Lambda function called name at
// an earlier published version (see RollbackOptions.Version): GetAlias,
// ListVersionsByFunction (every page), UpdateAlias, then the alias's
// GetFunctionUrlConfig for the URL. The URL stays the same; it serves
// the version the alias points at. A later Deploy publishes a new version
// and points the alias at it again.
//
// A missing function is an error wrapping ErrNotFound, one without the
// alias ErrNoAlias, and one whose alias serves its oldest version
// ErrNoOlderVersion.
func Rollback(ctx context.Context, api API, name string, o RollbackOptions) (*RollbackResult, error) {
	res := &RollbackResult{Name: name, DryRun: o.DryRun}
	r := &recorder{dryRun: o.DryRun, progress: o.Progress, calls: &res.Calls}
	a, err := r.alias(ctx, api, name)
	if err != nil {
		return nil, err
	}
	if a == nil {
		if _, err := r.getFunction(ctx, api, name); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: the Lambda function %q has no published versions cortex serves (an earlier cortex deployed it): "+
			"deploy it again with cortex deploy --target lambda; later deploys can be rolled back", ErrNoAlias, name)
	}
	res.From = aws.ToString(a.FunctionVersion)
	versions, err := r.versions(ctx, api, name)
	if err != nil {
		return nil, err
	}
	target := o.Version
	if target != "" {
		if !slices.Contains(versions, target) {
			return nil, fmt.Errorf("the Lambda function %q has no published version %q; its versions: %s", name, target, strings.Join(versions, ", "))
		}
	} else {
		from, _ := strconv.Atoi(res.From)
		for _, v := range slices.Backward(versions) {
			if n, _ := strconv.Atoi(v); n < from {
				target = v
				break
			}
		}
		if target == "" {
			return nil, fmt.Errorf("%w: the alias %s of the Lambda function %q serves version %s, and no published version is older (versions: %s)",
				ErrNoOlderVersion, Alias, name, res.From, strings.Join(versions, ", "))
		}
	}
	res.Version = target
	if target == res.From {
		res.Action = "unchanged"
		r.say("the alias %s of %s already serves version %s", Alias, name, target)
	} else {
		res.Action = action(o.DryRun, "update")
		err := r.write("UpdateAlias", fmt.Sprintf("%s (version %s -> %s)", qualified(name, Alias), res.From, target), func() error {
			_, err := api.UpdateAlias(ctx, &lambda.UpdateAliasInput{
				FunctionName: aws.String(name), Name: aws.String(Alias), FunctionVersion: aws.String(target), RevisionId: a.RevisionId,
			})
			return err
		})
		if err != nil {
			return res, err
		}
	}
	u, err := r.urlConfig(ctx, api, name, Alias)
	if err != nil {
		return res, err
	}
	if u != nil {
		res.URL = aws.ToString(u.FunctionUrl)
	}
	return res, nil
}

// versions lists the function's published versions, oldest first:
// $LATEST is not one.
func (r *recorder) versions(ctx context.Context, api API, name string) ([]string, error) {
	var out []string
	pages := lambda.NewListVersionsByFunctionPaginator(api, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String(name)})
	for pages.HasMorePages() {
		var page *lambda.ListVersionsByFunctionOutput
		err := r.read("ListVersionsByFunction", name, func() (err error) {
			page, err = pages.NextPage(ctx)
			return err
		})
		if isNotFound(err) {
			return nil, notFound(api, name)
		}
		if err != nil {
			return nil, err
		}
		for _, c := range page.Versions {
			if v := aws.ToString(c.Version); v != "$LATEST" {
				out = append(out, v)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		n, _ := strconv.Atoi(a)
		m, _ := strconv.Atoi(b)
		return n - m
	})
	return out, nil
}
