package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller/deployment"
	"k8s.io/kubernetes/pkg/controller/replicaset"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	networkingclient "knative.dev/networking/pkg/client/clientset/versioned"
	netinformers "knative.dev/networking/pkg/client/informers/externalversions"
	"knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	"knative.dev/serving/pkg/apis/serving"
	servinginformers "knative.dev/serving/pkg/client/informers/externalversions"
)

// What a cluster has and this machine cannot run, simulated as narrowly as
// it can be, each where Knative reads it:
//
//   - pods: Kubernetes' own Deployment and ReplicaSet controllers (from
//     k8s.io/kubernetes) turn the Deployment Knative's revision reconciler
//     makes into pods; a kubelet stand-in (there is no node and no
//     container runtime) writes each pod's status: running and ready, or,
//     for an image a test says crashes, a container that exits, or, for
//     one that hangs, nothing (a pull that never ends).
//   - the autoscaler: Knative's KPA runs in its own process on request
//     metrics from the activator and queue-proxies, none of which runs
//     here; its PodAutoscaler status is written from the Deployment's
//     ready replicas, as the KPA reports a scale target it sees serving.
//   - the networking layer (Kourier, Istio, Contour): a KIngress is
//     marked ready with its load balancer's address, as the ingress
//     reports once it routes the rules Knative's route reconciler wrote.
//
// Everything else (revisions, readiness propagation, traffic, URLs, tags,
// defaults, rejections) is Knative's own code (serving_test.go).

// kubelet is the stand-in for the nodes' kubelets.
type kubelet struct {
	mu      sync.Mutex
	crashes map[string]string // image -> the message its container exits with
	hangs   map[string]bool   // images whose pods never start
}

// crash makes pods running image exit with message.
func (k *kubelet) crash(image, message string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.crashes[image] = message
}

// hang makes pods running image never start.
func (k *kubelet) hang(image string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.hangs[image] = true
}

// status is the status a kubelet would report for pod, and whether it
// reports any.
func (k *kubelet) status(pod *corev1.Pod, ip string) (corev1.PodStatus, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var crash string
	for _, c := range pod.Spec.Containers {
		if k.hangs[c.Image] {
			return corev1.PodStatus{}, false
		}
		if m, ok := k.crashes[c.Image]; ok {
			crash = m
		}
	}
	now := metav1.Now()
	cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
		s := corev1.ConditionTrue
		if !ok {
			s = corev1.ConditionFalse
		}
		return corev1.PodCondition{Type: t, Status: s, LastTransitionTime: now}
	}
	st := corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}, HostIP: "10.0.0.1", StartTime: &now,
		Conditions: []corev1.PodCondition{
			cond(corev1.PodScheduled, true), cond(corev1.PodInitialized, true),
			cond(corev1.ContainersReady, crash == ""), cond(corev1.PodReady, crash == ""),
		},
	}
	for _, c := range pod.Spec.Containers {
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: crash == "", Started: ptr(crash == ""),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}
		if crash != "" && c.Name != "queue-proxy" {
			cs.RestartCount = 1
			cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off 10s restarting failed container=%s pod=%s", c.Name, pod.Name)}}
			cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error", Message: crash, StartedAt: now, FinishedAt: now}}
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	return st, true
}

// startCluster's half that stands in for nodes, autoscaler and ingress,
// with Kubernetes' workload controllers; it runs until the test ends.
func (c *cluster) startSimulated(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	c.kubelet = &kubelet{crashes: map[string]string{}, hangs: map[string]bool{}}
	fail := func(what string, err error) {
		if err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) {
			t.Errorf("%s: %v", what, err)
		}
	}

	kf := informers.NewSharedInformerFactory(c.kube, 0)
	dc, err := deployment.NewDeploymentController(ctx, kf.Apps().V1().Deployments(), kf.Apps().V1().ReplicaSets(), kf.Core().V1().Pods(), c.kube)
	if err != nil {
		t.Fatal(err)
	}
	rsc := replicaset.NewReplicaSetController(klog.Background(), kf.Apps().V1().ReplicaSets(), kf.Core().V1().Pods(), c.kube, replicaset.BurstReplicas)

	// The kubelet: a pod that has no status yet gets one.
	var podIPs sync.Mutex
	nextIP := 0
	kf.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			pod := obj.(*corev1.Pod)
			if pod.Status.Phase != corev1.PodPending && pod.Status.Phase != "" {
				return
			}
			podIPs.Lock()
			nextIP++
			ip := fmt.Sprintf("10.244.%d.%d", nextIP/250, nextIP%250+1)
			podIPs.Unlock()
			st, ok := c.kubelet.status(pod, ip)
			if !ok {
				return
			}
			pod = pod.DeepCopy()
			pod.Status = st
			_, err := c.kube.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
			fail("kubelet: pod "+pod.Name, err)
		},
	})

	// The autoscaler: a PodAutoscaler's status follows its Deployment.
	sf := servinginformers.NewSharedInformerFactory(c.serving, 0)
	syncPA := func(ns, name string) {
		fail("autoscaler: "+name, c.syncPodAutoscaler(ctx, ns, name))
	}
	sf.Autoscaling().V1alpha1().PodAutoscalers().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { pa := obj.(*v1alpha1.PodAutoscaler); syncPA(pa.Namespace, pa.Name) },
		UpdateFunc: func(_, obj any) { pa := obj.(*v1alpha1.PodAutoscaler); syncPA(pa.Namespace, pa.Name) },
	})
	kf.Apps().V1().Deployments().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) {
			d := obj.(*appsv1.Deployment)
			if rev := d.Labels[serving.RevisionLabelKey]; rev != "" {
				syncPA(d.Namespace, rev)
			}
		},
	})

	// The ingress: a KIngress is ready at its load balancer.
	net := networkingclient.NewForConfigOrDie(jsonConfig(c.cfg))
	nf := netinformers.NewSharedInformerFactory(net, 0)
	markIngress := func(obj any) {
		ing := obj.(*netv1alpha1.Ingress)
		if ing.Status.ObservedGeneration == ing.Generation && ing.IsReady() {
			return
		}
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			ing, err := net.NetworkingV1alpha1().Ingresses(ing.Namespace).Get(ctx, ing.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			lb := []netv1alpha1.LoadBalancerIngressStatus{{DomainInternal: "ingress.ingress-system.svc.cluster.local"}}
			ing.Status.InitializeConditions()
			ing.Status.MarkNetworkConfigured()
			ing.Status.MarkLoadBalancerReady(lb, lb)
			ing.Status.ObservedGeneration = ing.Generation
			_, err = net.NetworkingV1alpha1().Ingresses(ing.Namespace).UpdateStatus(ctx, ing, metav1.UpdateOptions{})
			return err
		})
		fail("ingress: "+ing.Name, err)
	}
	nf.Networking().V1alpha1().Ingresses().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    markIngress,
		UpdateFunc: func(_, obj any) { markIngress(obj) },
	})

	kf.Start(ctx.Done())
	sf.Start(ctx.Done())
	nf.Start(ctx.Done())
	wg.Add(2)
	go func() { defer wg.Done(); dc.Run(ctx, 2) }()
	go func() { defer wg.Done(); rsc.Run(ctx, 2) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		kf.Shutdown()
		sf.Shutdown()
		nf.Shutdown()
	})
}

// scaleToZero does what the KPA does to a revision with no traffic: its
// Deployment goes to zero replicas. It returns once the revision says so
// (status.actualReplicas 0, from the PodAutoscaler's status above).
func (c *cluster) scaleToZero(t *testing.T, ns, revision string) {
	t.Helper()
	ctx := context.Background()
	deployments := c.kube.AppsV1().Deployments(ns)
	scale, err := deployments.GetScale(ctx, revision+"-deployment", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 0
	if _, err := deployments.UpdateScale(ctx, revision+"-deployment", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		r, err := c.serving.ServingV1().Revisions(ns).Get(ctx, revision, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		n := r.Status.ActualReplicas
		return n != nil && *n == 0, nil
	})
	if err != nil {
		t.Fatalf("revision %s/%s did not reach zero replicas: %v", ns, revision, err)
	}
}

// syncPodAutoscaler writes the PodAutoscaler's status the KPA would for its
// Deployment's ready replicas: once one serves, the scale target is
// initialized and the revision active behind its public Service (named
// for the revision, as the KPA's ServerlessService makes it).
func (c *cluster) syncPodAutoscaler(ctx context.Context, ns, name string) error {
	pas := c.serving.AutoscalingV1alpha1().PodAutoscalers(ns)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pa, err := pas.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var ready, want int32
		d, err := c.kube.AppsV1().Deployments(ns).Get(ctx, pa.Spec.ScaleTargetRef.Name, metav1.GetOptions{})
		switch {
		case err == nil:
			ready = d.Status.ReadyReplicas
			if d.Spec.Replicas != nil {
				want = *d.Spec.Replicas
			}
		case !apierrors.IsNotFound(err):
			return err
		}
		st := pa.Status.DeepCopy()
		st.InitializeConditions()
		st.ServiceName = pa.Name
		st.MetricsServiceName = pa.Name + "-private"
		st.DesiredScale, st.ActualScale = ptr(want), ptr(ready)
		if ready > 0 {
			st.MarkSKSReady()
			st.MarkScaleTargetInitialized()
			st.MarkActive()
		} else if !st.IsScaleTargetInitialized() {
			st.MarkSKSNotReady("K8s Service is not ready")
			st.MarkActivating("Queued", "Requests to the target are being buffered as resources are provisioned.")
		}
		st.ObservedGeneration = pa.Generation
		if equality.Semantic.DeepEqual(st, &pa.Status) {
			return nil
		}
		pa.Status = *st
		_, err = pas.UpdateStatus(ctx, pa, metav1.UpdateOptions{})
		return err
	})
}
