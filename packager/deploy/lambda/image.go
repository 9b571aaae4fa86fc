package lambda

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/cortexfn/cortex/packager/lambdaimage"
)

// ImageTag is the tag Push gives the Lambda image beside its digest,
// which is what the function names: REPO/NAME:lambda, apart from the
// tags the Knative image takes in the same repository.
const ImageTag = lambdaimage.Tag

// ErrNoRegistry: a container-image function needs a registry to push to.
var ErrNoRegistry = errors.New("lambda: deploying a container image needs a registry: pass --registry ACCOUNT.dkr.ecr.REGION.amazonaws.com/PATH or set targets.lambda.registry (Lambda pulls only from Amazon ECR, in the function's region)")

// Push pushes the Lambda image in the OCI layout dir (dist/lambda-image,
// as cortex package writes it) to repo:ImageTag (repo is REGISTRY/NAME)
// and returns its digest reference, which Function.Image takes. The image
// is checked against Lambda's rules first (packager/lambdaimage), and a
// refusal by the registry comes with what to do. Blobs
// the registry has are not sent again, so a code change uploads the
// small layers only. Credentials come from the user's docker config and
// credential helpers (authn.DefaultKeychain): for Amazon ECR, `aws ecr
// get-login-password | docker login` or the docker-credential-ecr-login
// helper. opts are added to the registry calls (tests pass a transport).
func Push(ctx context.Context, dir, repo string, progress io.Writer, opts ...remote.Option) (string, error) {
	dig, err := lambdaimage.Push(ctx, dir, repo, progress, opts...)
	if err != nil {
		return "", pushHint(err, repo)
	}
	return dig.String(), nil
}

// pushHint adds what to do to a push the registry refused.
func pushHint(err error, repo string) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		return err
	}
	host, path := repo, ""
	if r, perr := name.NewRepository(repo); perr == nil {
		host, path = r.RegistryStr(), r.RepositoryStr()
	}
	for _, d := range te.Errors {
		if d.Code == transport.NameUnknownErrorCode {
			return fmt.Errorf("%w (the repository does not exist: create it, for Amazon ECR with aws ecr create-repository --repository-name %s)", err, path)
		}
	}
	switch te.StatusCode {
	case 401, 403:
		return fmt.Errorf("%w (log in to %s: for Amazon ECR, aws ecr get-login-password --region REGION | docker login --username AWS --password-stdin %s, or configure the docker-credential-ecr-login helper)", err, host, host)
	}
	return err
}
