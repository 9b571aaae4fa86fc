package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cortexfn/cortex/internal/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"knative.dev/pkg/configmap"
	"knative.dev/pkg/controller"
	"knative.dev/pkg/injection"
	"knative.dev/pkg/injection/sharedmain"
	"knative.dev/pkg/leaderelection"
	"knative.dev/pkg/logging"
	"knative.dev/pkg/metrics"
	"knative.dev/pkg/system"
	"knative.dev/pkg/webhook"
	"knative.dev/pkg/webhook/certificates"
	"knative.dev/pkg/webhook/configmaps"
	"knative.dev/pkg/webhook/resourcesemantics"
	"knative.dev/pkg/webhook/resourcesemantics/defaulting"
	"knative.dev/pkg/webhook/resourcesemantics/validation"
	"sigs.k8s.io/yaml"

	secretinformer "knative.dev/pkg/injection/clients/namespacedkube/informers/core/v1/secret"

	network "knative.dev/networking/pkg"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	netcfg "knative.dev/networking/pkg/config"
	tracingconfig "knative.dev/pkg/tracing/config"
	autoscalingv1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	apisconfig "knative.dev/serving/pkg/apis/config"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	servingv1beta1 "knative.dev/serving/pkg/apis/serving/v1beta1"
	autoscalerconfig "knative.dev/serving/pkg/autoscaler/config"
	"knative.dev/serving/pkg/deployment"
	"knative.dev/serving/pkg/gc"
	certconfig "knative.dev/serving/pkg/reconciler/certificate/config"
	"knative.dev/serving/pkg/reconciler/configuration"
	gcreconciler "knative.dev/serving/pkg/reconciler/gc"
	"knative.dev/serving/pkg/reconciler/labeler"
	"knative.dev/serving/pkg/reconciler/revision"
	"knative.dev/serving/pkg/reconciler/route"
	domainconfig "knative.dev/serving/pkg/reconciler/route/config"
	"knative.dev/serving/pkg/reconciler/serverlessservice"
	servicereconciler "knative.dev/serving/pkg/reconciler/service"
	extravalidation "knative.dev/serving/pkg/webhook"
)

// Knative Serving runs in this process, from knative.dev/serving's own
// code, as its two Deployments would in a cluster:
//   - the controller: the reconcilers cmd/controller starts (service,
//     configuration, revision, route, labeler, serverlessservice, gc; not
//     nscert and domainmapping, which nothing here uses, nor cert-manager's);
//   - the webhook: cmd/webhook's admission controllers (defaulting,
//     validation with serving's extra Service and Configuration checks,
//     ConfigMap validation) and the certificates reconciler that makes its
//     serving certificate, registered with the API server through serving's
//     own webhook configurations, which Knative's reconcilers keep current.
//
// Both are wired with knative.dev/pkg's injection and sharedmain's pieces
// (ControllersAndWebhooksFromCtors, the ConfigMap watcher), not with
// sharedmain.MainWithConfig itself: that also serves profiling, metrics
// and health probes on fixed ports, which several API servers in one test
// binary (and tests run side by side) would fight over.

// controllerCtors is cmd/controller's list, less nscert (namespace
// wildcard certificates, off by default), domainmapping (cortex writes no
// DomainMappings) and the cert-manager certificate reconciler, which
// cmd/controller adds only when config-network asks for it (it does not).
var controllerCtors = []injection.ControllerConstructor{
	configuration.NewController,
	labeler.NewController,
	revision.NewController,
	route.NewController,
	serverlessservice.NewController,
	servicereconciler.NewController,
	gcreconciler.NewController,
}

// webhookTypes, webhookCallbacks and the three constructors below are
// serving's cmd/webhook/main.go (package main, so not importable), copied
// as they are.
var webhookTypes = map[schema.GroupVersionKind]resourcesemantics.GenericCRD{
	servingv1.SchemeGroupVersion.WithKind("Revision"):      &servingv1.Revision{},
	servingv1.SchemeGroupVersion.WithKind("Configuration"): &servingv1.Configuration{},
	servingv1.SchemeGroupVersion.WithKind("Route"):         &servingv1.Route{},
	servingv1.SchemeGroupVersion.WithKind("Service"):       &servingv1.Service{},

	autoscalingv1alpha1.SchemeGroupVersion.WithKind("PodAutoscaler"): &autoscalingv1alpha1.PodAutoscaler{},
	autoscalingv1alpha1.SchemeGroupVersion.WithKind("Metric"):        &autoscalingv1alpha1.Metric{},

	netv1alpha1.SchemeGroupVersion.WithKind("Certificate"):       &netv1alpha1.Certificate{},
	netv1alpha1.SchemeGroupVersion.WithKind("Ingress"):           &netv1alpha1.Ingress{},
	netv1alpha1.SchemeGroupVersion.WithKind("ServerlessService"): &netv1alpha1.ServerlessService{},

	servingv1beta1.SchemeGroupVersion.WithKind("DomainMapping"): &servingv1beta1.DomainMapping{},
}

var webhookCallbacks = map[schema.GroupVersionKind]validation.Callback{
	servingv1.SchemeGroupVersion.WithKind("Service"):       validation.NewCallback(extravalidation.ValidateService, webhook.Create, webhook.Update),
	servingv1.SchemeGroupVersion.WithKind("Configuration"): validation.NewCallback(extravalidation.ValidateConfiguration, webhook.Create, webhook.Update),
}

func newDefaultingAdmissionController(ctx context.Context, cmw configmap.Watcher) *controller.Impl {
	store := apisconfig.NewStore(logging.FromContext(ctx).Named("config-store"))
	store.WatchConfigs(cmw)
	return defaulting.NewAdmissionController(ctx, "webhook.serving.knative.dev", "/defaulting", webhookTypes, store.ToContext, false)
}

func newValidationAdmissionController(ctx context.Context, cmw configmap.Watcher) *controller.Impl {
	store := apisconfig.NewStore(logging.FromContext(ctx).Named("config-store"))
	store.WatchConfigs(cmw)
	return validation.NewAdmissionController(ctx, "validation.webhook.serving.knative.dev", "/resource-validation", webhookTypes, store.ToContext, false, webhookCallbacks)
}

func newConfigValidationController(ctx context.Context, cmw configmap.Watcher) *controller.Impl {
	return configmaps.NewAdmissionController(ctx, "config.webhook.serving.knative.dev", "/config-validation",
		configmap.Constructors{
			tracingconfig.ConfigName:         tracingconfig.NewTracingConfigFromConfigMap,
			autoscalerconfig.ConfigName:      autoscalerconfig.NewConfigFromConfigMap,
			gc.ConfigName:                    gc.NewConfigFromConfigMapFunc(ctx),
			netcfg.ConfigMapName:             network.NewConfigFromConfigMap,
			deployment.ConfigName:            deployment.NewConfigFromConfigMap,
			apisconfig.FeaturesConfigName:    apisconfig.NewFeaturesConfigFromConfigMap,
			metrics.ConfigMapName():          metrics.NewObservabilityConfigFromConfigMap,
			logging.ConfigMapName():          logging.NewConfigFromConfigMap,
			leaderelection.ConfigMapName():   leaderelection.NewConfigFromConfigMap,
			domainconfig.DomainConfigName:    domainconfig.NewDomainFromConfigMap,
			apisconfig.DefaultsConfigName:    apisconfig.NewDefaultsConfigFromConfigMap,
			certconfig.CertManagerConfigName: certconfig.NewCertManagerConfigFromConfigMap,
		})
}

// webhookService is the Service serving's webhook configurations name
// (config/core/webhooks), in knative-serving.
const webhookService = "webhook"

// systemNamespace is where Knative Serving lives; knative.dev/pkg/system
// reads it from SYSTEM_NAMESPACE, as Knative's Deployments set it.
const systemNamespace = "knative-serving"

// knativeLogs keeps what Knative logs for one cluster, for a failing test
// (zap's WriteSyncer over a buffer several goroutines write to).
type knativeLogs struct{ testutil.SyncBuffer }

func (l *knativeLogs) Sync() error { return nil }

// tail is the last n lines logged.
func (l *knativeLogs) tail(n int) string {
	lines := strings.Split(strings.TrimRight(l.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// installServing installs what Knative Serving's release installs before
// its Deployments start: the CRDs (serving's, networking's and caching's
// Image), the ConfigMaps (serving's config/core/configmaps and
// networking's config-network), the webhook's Secret and webhook
// configurations, and the Service the configurations call.
func (c *cluster) installServing(t *testing.T, webhookPort int) {
	t.Helper()
	ctx := context.Background()
	serving, networking, caching := moduleDir(t, "knative.dev/serving"), moduleDir(t, "knative.dev/networking"), moduleDir(t, "knative.dev/caching")
	c.installCRDs(t,
		filepath.Join(serving, "config", "core", "300-resources", "*.yaml"),
		filepath.Join(networking, "config", "*.yaml"),
		filepath.Join(caching, "config", "image.yaml"))

	c.createNamespace(t, systemNamespace)
	var cms []string
	for _, pattern := range []string{
		filepath.Join(serving, "config", "core", "configmaps", "*.yaml"),
		filepath.Join(networking, "config", "config-network.yaml"),
	} {
		files, _ := filepath.Glob(pattern)
		cms = append(cms, files...)
	}
	for _, f := range cms {
		var cm corev1.ConfigMap
		decodeFile(t, f, &cm)
		if cm.Kind != "ConfigMap" {
			continue
		}
		switch cm.Name {
		case "config-domain":
			// The cluster's operator names its domain (Knative's install
			// guide, "Configure DNS"); the tests expect example.com.
			cm.Data = map[string]string{"example.com": ""}
		}
		if _, err := c.kube.CoreV1().ConfigMaps(systemNamespace).Create(ctx, &cm, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}

	webhooks := filepath.Join(serving, "config", "core", "webhooks")
	var secret corev1.Secret
	decodeFile(t, filepath.Join(webhooks, "secret.yaml"), &secret)
	if _, err := c.kube.CoreV1().Secrets(systemNamespace).Create(ctx, &secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Simulated: the cluster network. In a cluster the webhook
	// configurations' Service (knative-serving/webhook, port 443) routes to
	// the webhook's pod; here the webhook listens in this process on
	// 127.0.0.1:webhookPort. An ExternalName Service is what the API
	// server's resolver follows to a host outside the cluster (it dials
	// ExternalName:port, the port from the configuration's service
	// reference, which Knative's reconcilers leave as they find it), while
	// TLS still checks webhook.knative-serving.svc, the name Knative's
	// certificate is made for.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: webhookService, Namespace: systemNamespace},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "127.0.0.1"},
	}
	if _, err := c.kube.CoreV1().Services(systemNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	port := int32(webhookPort)
	ar := c.kube.AdmissionregistrationV1()
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	decodeFile(t, filepath.Join(webhooks, "defaulting.yaml"), &mwc)
	for i := range mwc.Webhooks {
		mwc.Webhooks[i].ClientConfig.Service.Port = &port
	}
	if _, err := ar.MutatingWebhookConfigurations().Create(ctx, &mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"resource-validation.yaml", "configmap-validation.yaml"} {
		var vwc admissionregistrationv1.ValidatingWebhookConfiguration
		decodeFile(t, filepath.Join(webhooks, f), &vwc)
		for i := range vwc.Webhooks {
			vwc.Webhooks[i].ClientConfig.Service.Port = &port
		}
		if _, err := ar.ValidatingWebhookConfigurations().Create(ctx, &vwc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The API server learns of the configurations through a watch; the
	// webhook is waited for in startServing.
}

// startServing installs Knative Serving and runs its controller and webhook
// until the test ends. It returns when the webhook admits requests.
func (c *cluster) startServing(t *testing.T) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.installServing(t, lis.Addr().(*net.TCPAddr).Port)

	logs := &knativeLogs{}
	logger := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), logs, zap.InfoLevel),
		// A fatal error ends the goroutine that logs it, not the test binary.
		zap.WithFatalHook(zapcore.WriteThenGoexit)).Sugar()
	ctx, cancel := context.WithCancel(logging.WithLogger(context.Background(), logger))
	// One event recorder for all of Knative's reconcilers, shut down with
	// them: without it each makes its own broadcaster and, on stopping,
	// leaves its goroutine running (which the test binary's leak check,
	// framework.EtcdMain, reports).
	events := record.NewBroadcaster()
	events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.kube.CoreV1().Events("")})
	ctx = controller.WithEventRecorder(ctx, events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "controller"}))
	ctx = webhook.WithOptions(ctx, webhook.Options{ServiceName: webhookService, Port: lis.Addr().(*net.TCPAddr).Port, SecretName: "webhook-certs"})
	// JSON: Knative's clients share one config, and its custom resources
	// have no protobuf.
	ctx, startInformers := injection.EnableInjectionOrDie(ctx, jsonConfig(c.cfg))
	cmw := sharedmain.SetupConfigMapWatchOrDie(ctx, logger)
	ctors := append([]injection.ControllerConstructor{
		certificates.NewController,
		newDefaultingAdmissionController,
		newValidationAdmissionController,
		newConfigValidationController,
	}, controllerCtors...)
	controllers, admission := sharedmain.ControllersAndWebhooksFromCtors(ctx, cmw, ctors...)
	if err := cmw.Start(ctx.Done()); err != nil {
		t.Fatalf("Knative's ConfigMap watcher: %v", err)
	}
	wh, err := webhook.New(ctx, admission)
	if err != nil {
		t.Fatal(err)
	}
	// Knative's webhook serves on its own listener (Webhook.Run binds
	// :Port); it is served here on the free port already taken, with the
	// certificate Knative's certificates reconciler writes to its Secret,
	// read as Webhook.Run's TLS config reads it.
	secrets := secretinformer.Get(ctx).Lister()
	srv := &http.Server{
		Handler:           wh,
		ReadHeaderTimeout: time.Minute,
		ErrorLog:          zap.NewStdLog(logger.Desugar()),
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS13,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				s, err := secrets.Secrets(system.Namespace()).Get("webhook-certs")
				if err != nil {
					return nil, err
				}
				cert, err := tls.X509KeyPair(s.Data["server-cert.pem"], s.Data["server-key.pem"])
				return &cert, err
			},
		},
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(lis, "", "") }()
	startInformers()
	wh.InformersHaveSynced()
	running := make(chan error, 1)
	go func() { running <- controller.StartAll(ctx, controllers...) }()
	t.Cleanup(func() {
		cancel()
		srv.Shutdown(context.Background())
		<-served
		<-running
		events.Shutdown()
		if t.Failed() {
			t.Logf("Knative's log (last lines):\n%s", logs.tail(150))
		}
	})

	// The webhook is live once the API server calls it: a Service Knative
	// refuses (a negative containerConcurrency) is refused.
	var last error
	err = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		probe := &servingv1.Service{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}
		probe.Spec.Template.Spec.Containers = []corev1.Container{{Image: "registry.example/probe"}}
		probe.Spec.Template.Spec.ContainerConcurrency = ptr(int64(-1))
		_, last = c.serving.ServingV1().Services(systemNamespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return last != nil && strings.Contains(last.Error(), "denied the request"), nil
	})
	if err != nil {
		t.Fatalf("Knative's webhook does not refuse an invalid Service: %v (last: %v)", err, last)
	}
}

// moduleDir is the directory of a module in the e2e module's build list.
func moduleDir(t *testing.T, path string) string {
	t.Helper()
	dir, err := modDirs(path)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

var modDirCache sync.Map

func modDirs(path string) (string, error) {
	if d, ok := modDirCache.Load(path); ok {
		return d.(string), nil
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", path, err)
	}
	d := strings.TrimSpace(string(out))
	if d == "" {
		return "", errors.New("go list -m " + path + ": not downloaded (go mod download " + path + ")")
	}
	modDirCache.Store(path, d)
	return d, nil
}

// decodeFile reads one YAML object from f into v.
func decodeFile(t *testing.T, f string, v any) {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", f, err)
	}
}
