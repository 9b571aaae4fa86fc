package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"
	kubeapiservertesting "k8s.io/kubernetes/cmd/kube-apiserver/app/testing"
	"k8s.io/kubernetes/test/integration/framework"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"knative.dev/serving/pkg/apis/serving"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	servingclient "knative.dev/serving/pkg/client/clientset/versioned"
	"sigs.k8s.io/yaml"
)

// cluster is a real kube-apiserver (with etcd from TestMain) that serves
// Knative Serving's CRDs and its config-features ConfigMap. No Knative
// controller or webhook runs: the tests play the controller (see
// controller) and the preflight stands in for the webhook's feature checks.
type cluster struct {
	cfg     *rest.Config
	kube    kubernetes.Interface
	serving servingclient.Interface
}

// servingDir is the knative.dev/serving module's directory, whose config/
// holds the CRDs and ConfigMaps Knative installs.
var servingDir = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "knative.dev/serving").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m knative.dev/serving: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
})

// startCluster starts an API server with RBAC on (so a user without
// permissions is refused), installs Knative's CRDs and config-features,
// and creates the namespace "fn".
func startCluster(t *testing.T) *cluster {
	t.Helper()
	start := time.Now()
	s := kubeapiservertesting.StartTestServerOrDie(t, nil,
		[]string{"--disable-admission-plugins=ServiceAccount", "--authorization-mode=RBAC"},
		framework.SharedEtcd())
	t.Cleanup(s.TearDownFn)
	c := &cluster{cfg: rest.CopyConfig(s.ClientConfig)}
	// No client-side throttling: the tests and the controller share it.
	c.cfg.QPS, c.cfg.Burst = 1000, 1000
	c.kube = kubernetes.NewForConfigOrDie(c.cfg)
	scfg := rest.CopyConfig(c.cfg)
	scfg.ContentType = "application/json" // custom resources have no protobuf
	c.serving = servingclient.NewForConfigOrDie(scfg)
	ctx := context.Background()

	dir, err := servingDir()
	if err != nil {
		t.Fatal(err)
	}
	ext := apiextensionsclient.NewForConfigOrDie(c.cfg)
	files, err := filepath.Glob(filepath.Join(dir, "config", "core", "300-resources", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s/config/core/300-resources (%v)", dir, err)
	}
	var names []string
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
	// The CRDs are established; wait until discovery serves the group too.
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := c.kube.Discovery().ServerResourcesForGroupVersion("serving.knative.dev/v1")
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("serving.knative.dev/v1 not served: %v", err)
	}

	c.createNamespace(t, "knative-serving")
	b, err := os.ReadFile(filepath.Join(dir, "config", "core", "configmaps", "features.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	if _, err := c.kube.CoreV1().ConfigMaps("knative-serving").Create(ctx, &cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.createNamespace(t, "fn")
	t.Logf("API server with Knative CRDs ready in %s", time.Since(start).Round(time.Millisecond))
	return c
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
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := c.kube.CoreV1().ConfigMaps("knative-serving").Get(ctx, "config-features", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		for k, v := range flags {
			cm.Data[k] = v
		}
		_, err = c.kube.CoreV1().ConfigMaps("knative-serving").Update(ctx, cm, metav1.UpdateOptions{})
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

// controller plays Knative's Service controller for one namespace: for
// every new generation of a Service it creates the Revision
// NAME-0000GEN, makes it Ready (or failed, when outcome says so) and
// writes the Service status Knative would: observed generation, latest
// created and ready revisions, URL, traffic resolved to revision names,
// and the Ready and ConfigurationsReady conditions.
type controller struct {
	c  *cluster
	ns string
	// outcome decides a new revision's fate from its image: nil means
	// Ready; a condition means failed with that reason and message.
	mu      sync.Mutex
	outcome func(image string) *apis.Condition
	// paused stops the controller from reporting (a revision that takes
	// forever).
	paused bool
	// url, when set, gives a Service its URL (default
	// http://NAME.NAMESPACE.example.com).
	url  func(name string) *apis.URL
	done chan struct{}
}

// startController runs a controller until the test ends.
func startController(t *testing.T, c *cluster, ns string) *controller {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	k := &controller{c: c, ns: ns, done: make(chan struct{})}
	w, err := c.serving.ServingV1().Services(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(k.done)
		for ev := range w.ResultChan() {
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			svc, ok := ev.Object.(*servingv1.Service)
			if !ok || svc.Status.ObservedGeneration == svc.Generation {
				continue
			}
			if err := k.reconcile(ctx, svc.Name); err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) {
				t.Errorf("controller: %s: %v", svc.Name, err)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		w.Stop()
		<-k.done
	})
	return k
}

func (k *controller) set(outcome func(image string) *apis.Condition, paused bool) {
	k.mu.Lock()
	k.outcome, k.paused = outcome, paused
	k.mu.Unlock()
}

func (k *controller) reconcile(ctx context.Context, name string) error {
	k.mu.Lock()
	outcome, paused, urlFor := k.outcome, k.paused, k.url
	k.mu.Unlock()
	if paused {
		return nil
	}
	s := k.c.serving.ServingV1()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc, err := s.Services(k.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if svc.Status.ObservedGeneration == svc.Generation {
			return nil
		}
		gen := svc.Generation
		image := svc.Spec.Template.Spec.Containers[0].Image
		var failed *apis.Condition
		if outcome != nil {
			failed = outcome(image)
		}
		// A new revision when the template changed: a traffic-only change
		// makes none.
		tmpl, err := json.Marshal(svc.Spec.Template)
		if err != nil {
			return err
		}
		newRevision := true
		if last := svc.Status.LatestCreatedRevisionName; last != "" {
			rev, err := s.Revisions(k.ns).Get(ctx, last, metav1.GetOptions{})
			if err != nil {
				return err
			}
			newRevision = rev.Annotations[templateAnnotation] != string(tmpl)
		}
		if newRevision {
			revs, err := s.Revisions(k.ns).List(ctx, metav1.ListOptions{LabelSelector: serving.ServiceLabelKey + "=" + name})
			if err != nil {
				return err
			}
			n := len(revs.Items) + 1
			revName := fmt.Sprintf("%s-%05d", name, n)
			rev := &servingv1.Revision{
				ObjectMeta: metav1.ObjectMeta{Name: revName, Namespace: k.ns,
					Labels: map[string]string{
						serving.ServiceLabelKey:                 name,
						serving.ConfigurationLabelKey:           name,
						serving.ConfigurationGenerationLabelKey: strconv.Itoa(n),
					},
					Annotations: map[string]string{templateAnnotation: string(tmpl)},
				},
				Spec: svc.Spec.Template.Spec,
			}
			rev, err = s.Revisions(k.ns).Create(ctx, rev, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			rev.Status.ObservedGeneration = rev.Generation
			rev.Status.Conditions = duckv1.Conditions{readyCondition(failed)}
			if _, err := s.Revisions(k.ns).UpdateStatus(ctx, rev, metav1.UpdateOptions{}); err != nil {
				return err
			}
			svc.Status.LatestCreatedRevisionName = revName
			if failed == nil {
				svc.Status.LatestReadyRevisionName = revName
			}
		}
		svc.Status.ObservedGeneration = gen
		svc.Status.URL = &apis.URL{Scheme: "http", Host: name + "." + k.ns + ".example.com"}
		if urlFor != nil {
			svc.Status.URL = urlFor(name)
		}
		svc.Status.Address = nil
		svc.Status.Traffic = nil
		spec := svc.Spec.Traffic
		if len(spec) == 0 {
			spec = []servingv1.TrafficTarget{{LatestRevision: ptr(true), Percent: ptr(int64(100))}}
		}
		for _, tt := range spec {
			st := tt.DeepCopy()
			if tt.LatestRevision != nil && *tt.LatestRevision {
				st.RevisionName = svc.Status.LatestReadyRevisionName
			}
			if tt.Tag != "" {
				st.URL = &apis.URL{Scheme: "http", Host: tt.Tag + "-" + name + "." + k.ns + ".example.com"}
			}
			svc.Status.Traffic = append(svc.Status.Traffic, *st)
		}
		cr := readyCondition(failed)
		cr.Type = servingv1.ServiceConditionConfigurationsReady
		svc.Status.Conditions = duckv1.Conditions{readyCondition(failed), cr}
		_, err = s.Services(k.ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{})
		return err
	})
}

// templateAnnotation keeps, on a revision, the template it was made from.
const templateAnnotation = "e2e.cortex.dev/template"

func readyCondition(failed *apis.Condition) apis.Condition {
	now := apis.VolatileTime{Inner: metav1.Now()}
	if failed == nil {
		return apis.Condition{Type: apis.ConditionReady, Status: corev1.ConditionTrue, LastTransitionTime: now}
	}
	c := *failed
	c.Type, c.Status, c.LastTransitionTime = apis.ConditionReady, corev1.ConditionFalse, now
	return c
}

func ptr[T any](v T) *T { return &v }
