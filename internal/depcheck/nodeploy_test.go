package depcheck

import (
	"slices"
	"testing"
)

// deployClients are what the deploy commands bring into the CLI: the
// platforms' packages, Kubernetes' typed clientset and kubeconfig loading,
// the Lambda API's client. (Not client-go/dynamic: Knative's duck types,
// which the packager's Knative Service is written with, import it.)
var deployClients = []string{
	module + "/packager/deploy/knative",
	module + "/packager/deploy/lambda",
	"k8s.io/client-go/kubernetes",
	"k8s.io/client-go/tools/clientcmd",
	"github.com/aws/aws-sdk-go-v2/service/lambda",
}

// TestNodeployLeavesOutTheDeployClients: a CLI built with -tags nodeploy
// (make demo's) links none of them, so the quick start does not compile
// them; the whole CLI links each (so this test can fail).
func TestNodeployLeavesOutTheDeployClients(t *testing.T) {
	for _, c := range []struct {
		tags []string
		want bool
	}{{[]string{"-tags", "nodeploy"}, false}, {nil, true}} {
		p := list(t, nil, append(c.tags, "./cmd/cortex")...)[0]
		for _, d := range deployClients {
			if got := slices.Contains(p.Deps, d); got != c.want {
				t.Errorf("cortex built with %v: links %s = %v, want %v (a file of cmd/cortex without the !nodeploy constraint imports the deploy platforms)", c.tags, d, got, c.want)
			}
		}
	}
}
