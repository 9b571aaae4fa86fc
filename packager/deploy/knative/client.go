package knative

import (
	"errors"
	"fmt"
	"io"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	servingclient "knative.dev/serving/pkg/client/clientset/versioned"
)

// Kubeconfig says which cluster, user and namespace to use, with kubectl's
// rules (client-go clientcmd): an explicit file, else $KUBECONFIG (a list of
// files merged), else ~/.kube/config, else the in-cluster service account.
type Kubeconfig struct {
	// Path is a kubeconfig file (--kubeconfig). Empty: the rules above.
	Path string
	// Context is the context to use (--context). Empty: current-context.
	Context string
	// Namespace overrides the context's namespace (--namespace).
	Namespace string
}

// Load returns the REST config for k and the namespace it names: Namespace
// when set, else the context's. Explicit is false, and namespace "", when
// neither names one, leaving the choice to the caller.
func (k Kubeconfig) Load() (cfg *rest.Config, namespace string, explicit bool, err error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.Path
	overrides := &clientcmd.ConfigOverrides{CurrentContext: k.Context}
	overrides.Context.Namespace = k.Namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err = cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, "", false, errors.New("no Kubernetes cluster configured: set KUBECONFIG, pass --kubeconfig, or run `kubectl config use-context NAME`")
		}
		return nil, "", false, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	if k.Namespace != "" {
		return cfg, k.Namespace, true, nil
	}
	// clientcmd answers "default" for a context that names no namespace;
	// tell that apart from a context that says "default".
	if raw, err := cc.RawConfig(); err == nil {
		name := k.Context
		if name == "" {
			name = raw.CurrentContext
		}
		if c := raw.Contexts[name]; c != nil && c.Namespace != "" {
			return cfg, c.Namespace, true, nil
		}
	}
	return cfg, "", false, nil
}

// Client deploys and manages functions in one cluster. It is safe for
// concurrent use.
type Client struct {
	serving servingclient.Interface
	kube    kubernetes.Interface
	// dynamic writes Eventing's Triggers, whose Go types the main module
	// does not import (trigger.go).
	dynamic  dynamic.Interface
	progress io.Writer
}

// Option configures a Client.
type Option func(*Client) error

// WithProgress sends a line per step and per condition change to w.
func WithProgress(w io.Writer) Option {
	return func(c *Client) error { c.progress = w; return nil }
}

// New returns a Client talking to the API server cfg names.
func New(cfg *rest.Config, opts ...Option) (*Client, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "cortex-deploy"
	}
	// Custom resources speak JSON only; a config made for built-in types
	// may ask for protobuf.
	scfg := rest.CopyConfig(cfg)
	scfg.ContentType, scfg.AcceptContentTypes = "application/json", "application/json"
	s, err := servingclient.NewForConfig(scfg)
	if err != nil {
		return nil, fmt.Errorf("knative serving client: %w", err)
	}
	k, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	d, err := dynamic.NewForConfig(scfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	c, err := NewFromClients(s, k, opts...)
	if err != nil {
		return nil, err
	}
	c.dynamic = d
	return c, nil
}

// NewFromClients returns a Client using the given clientsets.
func NewFromClients(s servingclient.Interface, k kubernetes.Interface, opts ...Option) (*Client, error) {
	c := &Client{serving: s, kube: k}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Client) say(format string, args ...any) {
	if c.progress != nil {
		fmt.Fprintf(c.progress, format+"\n", args...)
	}
}

// DefaultTimeout bounds the wait for a revision whose template names no
// progress deadline: Knative's own default deadline (10m) plus a minute, so
// Knative's failure reason arrives before cortex gives up.
const DefaultTimeout = 11 * time.Minute
