package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"
	kubeapiservertesting "k8s.io/kubernetes/cmd/kube-apiserver/app/testing"
	"k8s.io/kubernetes/test/integration/framework"
	servingclient "knative.dev/serving/pkg/client/clientset/versioned"
	"sigs.k8s.io/yaml"
)

// cluster is a real kube-apiserver (with etcd from TestMain) running
// Knative Serving: its CRDs and ConfigMaps, its controller and webhook
// (serving_test.go), and stand-ins for what this machine cannot run, nodes,
// autoscaler and ingress (simulate_test.go).
type cluster struct {
	cfg     *rest.Config
	kube    kubernetes.Interface
	serving servingclient.Interface
	// kubelet decides how the pods of an image fare.
	kubelet *kubelet
}

// startCluster starts an API server with RBAC on (so a user without
// permissions is refused), runs Knative Serving on it, and creates the
// namespace "fn".
func startCluster(t *testing.T) *cluster {
	t.Helper()
	start := time.Now()
	s := kubeapiservertesting.StartTestServerOrDie(t, nil,
		[]string{"--disable-admission-plugins=ServiceAccount", "--authorization-mode=RBAC"},
		framework.SharedEtcd())
	t.Cleanup(s.TearDownFn)
	c := &cluster{cfg: rest.CopyConfig(s.ClientConfig)}
	// No client-side throttling: the tests and the controllers share it.
	c.cfg.QPS, c.cfg.Burst = 1000, 1000
	c.kube = kubernetes.NewForConfigOrDie(c.cfg)
	c.serving = servingclient.NewForConfigOrDie(jsonConfig(c.cfg))
	c.startServing(t)
	c.startSimulated(t)
	c.createNamespace(t, "fn")
	t.Logf("API server with Knative Serving ready in %s", time.Since(start).Round(time.Millisecond))
	return c
}

// jsonConfig is cfg for custom resources, which have no protobuf.
func jsonConfig(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = "application/json"
	return cfg
}

// installCRDs installs the CustomResourceDefinitions in the files matching
// patterns and waits until the API server serves them.
func (c *cluster) installCRDs(t *testing.T, patterns ...string) {
	t.Helper()
	ctx := context.Background()
	ext := apiextensionsclient.NewForConfigOrDie(c.cfg)
	var names []string
	groups := map[string]bool{}
	for _, pattern := range patterns {
		files, err := filepath.Glob(pattern)
		if err != nil || len(files) == 0 {
			t.Fatalf("no CRDs in %s (%v)", pattern, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, doc := range bytes.Split(b, []byte("\n---")) {
				var crd apiextensionsv1.CustomResourceDefinition
				if err := yaml.Unmarshal(doc, &crd); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				if crd.Kind != "CustomResourceDefinition" {
					continue
				}
				if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, &crd, metav1.CreateOptions{}); err != nil {
					t.Fatalf("installing %s: %v", crd.Name, err)
				}
				names = append(names, crd.Name)
				for _, v := range crd.Spec.Versions {
					if v.Served {
						groups[crd.Spec.Group+"/"+v.Name] = true
					}
				}
			}
		}
	}
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CRD %s not established: %v", name, err)
		}
	}
	// The CRDs are established; wait until discovery serves their groups.
	for gv := range groups {
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := c.kube.Discovery().ServerResourcesForGroupVersion(gv)
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("%s not served: %v", gv, err)
		}
	}
}

func (c *cluster) createNamespace(t *testing.T, name string) {
	t.Helper()
	_, err := c.kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// setFeatures sets config-features flags ("enabled", "disabled").
func (c *cluster) setFeatures(t *testing.T, flags map[string]string) {
	t.Helper()
	c.setConfig(t, "config-features", flags)
}

// setConfig sets keys of one of Knative Serving's ConfigMaps, as an
// operator would with kubectl (Knative's webhook validates the change).
// Knative's controller and webhook watch them and act on the change within
// moments; a test that needs it to have landed waits for what follows.
func (c *cluster) setConfig(t *testing.T, name string, data map[string]string) {
	t.Helper()
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := c.kube.CoreV1().ConfigMaps(systemNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		for k, v := range data {
			cm.Data[k] = v
		}
		_, err = c.kube.CoreV1().ConfigMaps(systemNamespace).Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// kubeconfig writes a kubeconfig for the cluster's admin user, as a user
// would have one, and returns its path.
func (c *cluster) kubeconfig(t *testing.T) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{
		Server:                   c.cfg.Host,
		CertificateAuthorityData: c.cfg.TLSClientConfig.CAData,
		TLSServerName:            c.cfg.TLSClientConfig.ServerName,
	}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: c.cfg.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin", Namespace: "fn"}
	kc.CurrentContext = "test"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// as returns the cluster's config impersonating user (with no groups but
// system:authenticated, so RBAC grants it only what tests bind).
func (c *cluster) as(user string) *rest.Config {
	cfg := rest.CopyConfig(c.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	return cfg
}

// grant gives user a Role in ns for Knative Services and Revisions.
func (c *cluster) grant(t *testing.T, ns, user string, verbs ...string) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer-" + user, Namespace: ns},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"serving.knative.dev"}, Resources: []string{"services", "revisions"}, Verbs: verbs,
		}},
	}
	if _, err := c.kube.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer-" + user, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: "rbac.authorization.k8s.io", Name: user}},
	}
	if _, err := c.kube.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The authorizer learns of the binding through a watch: wait for it.
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		r, err := c.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: verbs[len(verbs)-1], Group: "serving.knative.dev", Resource: "services",
			}},
		}, metav1.CreateOptions{})
		return err == nil && r.Status.Allowed, err
	})
	if err != nil {
		t.Fatalf("RBAC did not grant %s %v: %v", user, verbs, err)
	}
}

func ptr[T any](v T) *T { return &v }
