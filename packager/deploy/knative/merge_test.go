package knative

// The merge and traffic rules, without a cluster. The deployer's behaviour
// against a real API server is tested in the e2e module (../../../e2e).

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

func svc(image string, labels, ann, tmplAnn map[string]string) *servingv1.Service {
	s := &servingv1.Service{ObjectMeta: metav1.ObjectMeta{Name: "iris", Namespace: "fn", Labels: labels, Annotations: ann}}
	s.Spec.Template.Annotations = tmplAnn
	s.Spec.Template.Labels = map[string]string{"cortex.dev/function": "iris"}
	s.Spec.Template.Spec.Containers = []corev1.Container{{Name: "function", Image: image}}
	return s
}

func TestMergeKeepsWhatOthersSet(t *testing.T) {
	live := svc("old",
		map[string]string{"cortex.dev/function": "iris", "networking.knative.dev/visibility": "cluster-local", "team": "ml"},
		map[string]string{"owner": "ada"},
		map[string]string{"autoscaling.knative.dev/scale-down-delay": "30s", "autoscaling.knative.dev/max-scale": "3", "sidecar.istio.io/inject": "false"})
	live.Spec.Template.Name = "iris-pinned"
	live.Spec.Template.Spec.ServiceAccountName = "runner"
	desired := svc("new", map[string]string{"cortex.dev/function": "iris"}, nil, map[string]string{"autoscaling.knative.dev/max-scale": "10"})

	got, err := merge(live, desired, DeployOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"labels: visibility follows the spec (public), others' stay", got.Labels, map[string]string{"cortex.dev/function": "iris", "team": "ml"}},
		{"annotations", got.Annotations, map[string]string{"owner": "ada"}},
		{"template annotations: stale autoscaling key removed", got.Spec.Template.Annotations, map[string]string{"autoscaling.knative.dev/max-scale": "10", "sidecar.istio.io/inject": "false"}},
		{"template name cleared", got.Spec.Template.Name, ""},
		{"image", got.Spec.Template.Spec.Containers[0].Image, "new"},
		{"service account kept", got.Spec.Template.Spec.ServiceAccountName, "runner"},
		{"traffic untouched", got.Spec.Traffic, []servingv1.TrafficTarget(nil)},
		{"live not modified", live.Spec.Template.Spec.Containers[0].Image, "old"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func keysOf(ts []servingv1.TrafficTarget) string {
	b, _ := json.Marshal(trafficKeys(ts))
	return string(b)
}

func TestMergeTraffic(t *testing.T) {
	serving := func() *servingv1.Service {
		s := svc("old", nil, nil, nil)
		s.Status.LatestReadyRevisionName = "iris-00002"
		s.Status.Traffic = []servingv1.TrafficTarget{{RevisionName: "iris-00002", LatestRevision: ptr(true), Percent: ptr(int64(100))}}
		return s
	}
	tests := []struct {
		name  string
		live  func() *servingv1.Service
		o     DeployOptions
		want  string
		owned bool
	}{
		{"default: untouched", serving, DeployOptions{}, `[]`, false},
		{"canary", serving, DeployOptions{Traffic: 10, Tag: "canary"},
			`[{"revision":"iris-00002","percent":90},{"tag":"canary","latest":true,"percent":10}]`, true},
		{"canary keeps others' 0% tags", func() *servingv1.Service {
			s := serving()
			s.Spec.Traffic = []servingv1.TrafficTarget{{LatestRevision: ptr(true), Percent: ptr(int64(100))}, {Tag: "blue", RevisionName: "iris-00001", Percent: ptr(int64(0))}}
			return s
		}, DeployOptions{Traffic: 25, Tag: "canary"},
			`[{"revision":"iris-00002","percent":75},{"tag":"canary","latest":true,"percent":25},{"tag":"blue","revision":"iris-00001"}]`, true},
		{"pinned by others: kept", func() *servingv1.Service {
			s := serving()
			s.Spec.Traffic = []servingv1.TrafficTarget{{RevisionName: "iris-00001", Percent: ptr(int64(100))}}
			return s
		}, DeployOptions{}, `[{"revision":"iris-00001","percent":100}]`, false},
		{"pinned by others, --traffic 100", func() *servingv1.Service {
			s := serving()
			s.Spec.Traffic = []servingv1.TrafficTarget{{RevisionName: "iris-00001", Percent: ptr(int64(100))}}
			return s
		}, DeployOptions{Traffic: 100}, `[{"latest":true,"percent":100}]`, true},
		{"pinned by cortex (as the webhook defaulted it): all to latest", func() *servingv1.Service {
			s := serving()
			s.Spec.Traffic = []servingv1.TrafficTarget{{RevisionName: "iris-00001", Percent: ptr(int64(100))}}
			setTrafficAnnotation(s)
			// The webhook adds latestRevision: false to a revision target.
			s.Spec.Traffic[0].LatestRevision = ptr(false)
			return s
		}, DeployOptions{}, `[{"latest":true,"percent":100}]`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := merge(tt.live(), svc("new", nil, nil, nil), tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if k := keysOf(got.Spec.Traffic); k != tt.want {
				t.Errorf("traffic %s, want %s", k, tt.want)
			}
			_, has := got.Annotations[TrafficAnnotation]
			if has != tt.owned {
				t.Errorf("traffic annotation present %v, want %v", has, tt.owned)
			}
			if tt.owned && !cortexOwnsTraffic(got) {
				t.Error("cortex does not recognise the traffic it wrote")
			}
		})
	}
	if _, err := merge(svc("old", nil, nil, nil), svc("new", nil, nil, nil), DeployOptions{Traffic: 10}); err == nil {
		t.Error("canary with no serving revision: no error")
	}
}

func TestNeededAndFeatureError(t *testing.T) {
	s := svc("img", nil, nil, nil)
	s.Spec.Template.Spec.NodeSelector = map[string]string{"nvidia.com/gpu.present": "true"}
	s.Spec.Template.Spec.Affinity = &corev1.Affinity{}
	rc := "nvidia"
	s.Spec.Template.Spec.RuntimeClassName = &rc
	var flags []string
	for _, f := range Needed(s) {
		flags = append(flags, f.Flag)
	}
	want := []string{"kubernetes.podspec-nodeselector", "kubernetes.podspec-affinity", "kubernetes.podspec-runtimeclassname"}
	if !reflect.DeepEqual(flags, want) {
		t.Errorf("needed %v, want %v", flags, want)
	}
	e := &FeatureError{Service: "fn/iris", Disabled: []Feature{{Flag: "kubernetes.podspec-nodeselector", Field: "spec.template.spec.nodeSelector", Value: "disabled"}}}
	msg := e.Error()
	for _, w := range []string{"fn/iris", "spec.template.spec.nodeSelector", `kubernetes.podspec-nodeselector is "disabled"`,
		`kubectl patch configmap/config-features -n knative-serving --type merge -p '{"data":{"kubernetes.podspec-nodeselector":"enabled"}}'`} {
		if !strings.Contains(msg, w) {
			t.Errorf("%q does not say %q", msg, w)
		}
	}
}
