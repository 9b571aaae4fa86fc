package lambda

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// ErrNotFound: no Lambda function of that name in the account and region.
var ErrNotFound = errors.New("lambda: function not found")

// ErrNotCortex: the function lacks the cortex.function tag (TagFunction),
// so cortex did not deploy it.
var ErrNotCortex = errors.New("lambda: function not deployed by cortex")

func notFound(api API, name string) error {
	return fmt.Errorf("%w: there is no Lambda function %q in %s: deploy it with cortex deploy --target lambda", ErrNotFound, name, where(api))
}

// where names the region api calls when it can tell (*lambda.Client can).
func where(api API) string {
	if c, ok := api.(interface{ Options() lambda.Options }); ok && c.Options().Region != "" {
		return "region " + c.Options().Region + " of this account"
	}
	return "this account and region"
}

// Info is what `cortex get --target lambda` shows about a function. It
// marshals to what `--output json` prints.
type Info struct {
	Name string `json:"name"`
	ARN  string `json:"arn"`
	// Version is the published version the alias Alias serves, empty
	// when the function has no such alias (an earlier cortex deployed it
	// without versions, or cortex did not deploy it).
	Version string `json:"version"`
	// URL is the alias's function URL, empty when it has none.
	URL string `json:"url"`
	// URLAuth is the URL's auth type: AWS_IAM (signed requests only) or
	// NONE (public).
	URLAuth string `json:"url_auth,omitempty"`
	// State is Pending, Active, Inactive or Failed; StateReason says why
	// when it is not Active ("code: message").
	State       string `json:"state"`
	StateReason string `json:"state_reason,omitempty"`
	// LastUpdateStatus is InProgress, Successful or Failed;
	// LastUpdateReason says why an update failed.
	LastUpdateStatus string `json:"last_update_status,omitempty"`
	LastUpdateReason string `json:"last_update_reason,omitempty"`
	// LastModified is as Lambda reports it (ISO 8601).
	LastModified string `json:"last_modified"`
	// Memory in MB, Timeout in seconds.
	Memory     int32  `json:"memory_mb"`
	Timeout    int32  `json:"timeout_s"`
	Arch       string `json:"arch"`
	Runtime    string `json:"runtime"`
	CodeSHA256 string `json:"code_sha256"`
	// PackageType is Zip or Image; Image is a container image function's
	// image (REPO@sha256:..., as Lambda resolved it).
	PackageType string `json:"package_type"`
	Image       string `json:"image,omitempty"`
	// DeployedByCortex: the function has the cortex.function tag.
	DeployedByCortex bool `json:"deployed_by_cortex"`
}

// info reads a function's configuration and tags, as an Info without its
// URL. When AWS would not show the tags, info returns the Info and an
// *AccessError for ListTags: GetFunction returns tags only to a caller
// allowed lambda:ListTags.
func (r *recorder) info(ctx context.Context, api API, name string) (*Info, error) {
	out, err := r.getFunction(ctx, api, name)
	if err != nil {
		return nil, err
	}
	c := out.Configuration
	if c == nil {
		c = &types.FunctionConfiguration{}
	}
	i := &Info{
		Name:             aws.ToString(c.FunctionName),
		ARN:              aws.ToString(c.FunctionArn),
		State:            string(c.State),
		LastUpdateStatus: string(c.LastUpdateStatus),
		LastModified:     aws.ToString(c.LastModified),
		Memory:           aws.ToInt32(c.MemorySize),
		Timeout:          aws.ToInt32(c.Timeout),
		Runtime:          string(c.Runtime),
		CodeSHA256:       aws.ToString(c.CodeSha256),
		PackageType:      string(cmp.Or(c.PackageType, types.PackageTypeZip)),
	}
	if out.Code != nil {
		i.Image = cmp.Or(aws.ToString(out.Code.ResolvedImageUri), aws.ToString(out.Code.ImageUri))
	}
	if i.Name == "" {
		i.Name = name
	}
	var arch []string
	for _, a := range c.Architectures {
		arch = append(arch, string(a))
	}
	i.Arch = strings.Join(arch, ",")
	if c.State != types.StateActive {
		i.StateReason = reason(string(c.StateReasonCode), c.StateReason)
	}
	if c.LastUpdateStatus == types.LastUpdateStatusFailed {
		i.LastUpdateReason = reason(string(c.LastUpdateStatusReasonCode), c.LastUpdateStatusReason)
	}
	if te := out.TagsError; te != nil {
		return i, &AccessError{Op: "ListTags", Code: aws.ToString(te.ErrorCode), Message: aws.ToString(te.Message)}
	}
	_, i.DeployedByCortex = out.Tags[TagFunction]
	return i, nil
}

func reason(code string, msg *string) string {
	switch {
	case code == "":
		return aws.ToString(msg)
	case aws.ToString(msg) == "":
		return code
	}
	return code + ": " + aws.ToString(msg)
}

// addAlias fills i's version from the alias Alias and its URL and auth
// type from the alias's URL config, if it has them.
func (r *recorder) addAlias(ctx context.Context, api API, i *Info) error {
	a, err := r.alias(ctx, api, i.Name)
	if err != nil || a == nil {
		return err
	}
	i.Version = aws.ToString(a.FunctionVersion)
	u, err := r.urlConfig(ctx, api, i.Name, Alias)
	if err != nil || u == nil {
		return err
	}
	i.URL, i.URLAuth = aws.ToString(u.FunctionUrl), string(u.AuthType)
	return nil
}

// Get returns the Lambda function called name, from GetFunction
// (configuration and tags), GetAlias and the alias's
// GetFunctionUrlConfig. It shows a function
// cortex did not deploy too, with DeployedByCortex false.
func Get(ctx context.Context, api API, name string) (*Info, error) {
	r := &recorder{}
	i, err := r.info(ctx, api, name)
	if err != nil {
		return nil, err
	}
	if err := r.addAlias(ctx, api, i); err != nil {
		return nil, err
	}
	return i, nil
}

// List returns the functions cortex deployed in the account and region,
// sorted by name. ListFunctions finds the candidates (runtime
// provided.al2023, or a container image, with CORTEX_CONFIG in their
// environment); a GetFunction
// per candidate confirms the cortex.function tag, so a function made by
// hand is left out, and gives the state, which ListFunctions does not
// report; then GetAlias and GetFunctionUrlConfig as Get does.
func List(ctx context.Context, api API) ([]Info, error) {
	r := &recorder{}
	out := []Info{}
	pages := lambda.NewListFunctionsPaginator(api, &lambda.ListFunctionsInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, classify("ListFunctions", err)
		}
		for _, c := range page.Functions {
			if !candidate(c) {
				continue
			}
			i, err := r.info(ctx, api, aws.ToString(c.FunctionName))
			switch {
			case errors.Is(err, ErrNotFound):
				continue // deleted since the listing
			case err != nil:
				return nil, err
			case !i.DeployedByCortex:
				continue
			}
			if err := r.addAlias(ctx, api, i); err != nil {
				return nil, err
			}
			out = append(out, *i)
		}
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// candidate reports whether c looks like a function cortex deployed.
func candidate(c types.FunctionConfiguration) bool {
	if (c.Runtime != Runtime && c.PackageType != types.PackageTypeImage) || c.Environment == nil {
		return false
	}
	_, ok := c.Environment.Variables["CORTEX_CONFIG"]
	return ok
}

// DeleteOptions says how Delete works. The zero value deletes a function
// cortex deployed.
type DeleteOptions struct {
	// Force deletes a function without the cortex.function tag, or whose
	// tags cannot be read.
	Force bool
	// DryRun makes the read calls and lists the deletes it would make.
	DryRun bool
	// Progress receives a line per call.
	Progress io.Writer
}

// DeleteResult is what Delete did.
type DeleteResult struct {
	Name string `json:"name"`
	ARN  string `json:"arn,omitempty"`
	// DryRun: nothing was deleted; Calls lists what would be.
	DryRun bool   `json:"dry_run,omitempty"`
	Calls  []Call `json:"calls"`
}

// Delete deletes the Lambda function called name: the function URL config
// of its alias Alias (DeleteFunctionUrlConfig), if it has one, so the URL
// stops answering first, then the function (DeleteFunction), which takes
// its versions, aliases, other URL configs and resource policies with it.
// It refuses a function cortex did not deploy (ErrNotCortex) unless
// o.Force. A missing
// function is an error wrapping ErrNotFound; a URL config deleted by
// someone else meanwhile is not an error. On a failed delete the result
// says what was done.
func Delete(ctx context.Context, api API, name string, o DeleteOptions) (*DeleteResult, error) {
	res := &DeleteResult{Name: name, DryRun: o.DryRun}
	r := &recorder{dryRun: o.DryRun, progress: o.Progress, calls: &res.Calls}
	i, err := r.info(ctx, api, name)
	switch {
	case i == nil:
		return nil, err
	case err != nil && !o.Force:
		return nil, fmt.Errorf("cannot tell whether cortex deployed the Lambda function %q, so it is not deleted: %w; pass --force to delete it anyway", name, err)
	case err == nil && !i.DeployedByCortex && !o.Force:
		return nil, fmt.Errorf("%w: the Lambda function %q has no %s tag, so it is not deleted; pass --force to delete it anyway", ErrNotCortex, name, TagFunction)
	}
	res.ARN = i.ARN
	u, err := r.urlConfig(ctx, api, name, Alias)
	if err != nil {
		return nil, err
	}
	fn := aws.String(name)
	if u != nil {
		err := r.write("DeleteFunctionUrlConfig", qualified(name, Alias)+" ("+aws.ToString(u.FunctionUrl)+")", func() error {
			_, err := api.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: fn, Qualifier: aws.String(Alias)})
			if isNotFound(err) {
				return nil
			}
			return err
		})
		if err != nil {
			return res, err
		}
	}
	err = r.write("DeleteFunction", name+" ("+i.ARN+", with its versions, aliases and resource policies)", func() error {
		_, err := api.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: fn})
		return err
	})
	if isNotFound(err) {
		return res, notFound(api, name)
	}
	if err == nil && !o.DryRun {
		r.say("deleted Lambda function %s", name)
	}
	return res, err
}
