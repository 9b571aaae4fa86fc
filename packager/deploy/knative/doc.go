// Package knative deploys a function's Knative Service
// (serving.knative.dev/v1) and manages it: create or update, wait for the
// new revision, get, delete, rollback and canary traffic.
//
// # Applying
//
// Client.Deploy runs Preflight before any write, then creates the Service or
// updates it with optimistic concurrency: it reads the live object, merges
// the desired one into it and writes it back with the resource version it
// read, starting over when the API server answers 409 Conflict. The merge
// keeps what others set and the spec does not own:
//
//   - Service labels and annotations, except cortex.dev/function and
//     networking.knative.dev/visibility (the spec's visibility);
//   - revision template labels and annotations, except cortex.dev/function,
//     every autoscaling.knative.dev/* annotation and
//     serving.knative.dev/progress-deadline (a key the spec no longer sets
//     is removed);
//   - the pod's serviceAccountName, imagePullSecrets and
//     automountServiceAccountToken when the spec sets none; the rest of
//     the revision spec (containers, resources, probes, node selector,
//     tolerations, concurrency, timeout) is the spec's;
//   - spec.traffic, unless cortex wrote it: the TrafficAnnotation records
//     the traffic cortex last set (a canary or a rollback), and while the
//     live traffic still matches it a plain deploy sends all traffic to
//     the new revision again. Traffic someone else set is left alone, with
//     a warning when the new revision gets none of it.
//
// It then watches the Service until Knative reports the generation it wrote
// Ready (the new revision is the latest ready one) or failed, printing each
// condition change, and returns the URL and revision; a failure is a
// *RevisionError carrying the Ready condition's reason and message.
//
// # Preflight
//
// Preflight checks that the API server serves serving.knative.dev/v1, that
// the namespace exists, that the user may get, create and update Services
// there (a SelfSubjectAccessReview per verb), and that the cluster's
// knative-serving/config-features enables every flag the Service needs
// (nodeSelector, tolerations, affinity, runtimeClassName): a disabled flag
// is a *FeatureError that names it and the kubectl command that turns it
// on, instead of the webhook's "must not set the field(s)".
//
// # Traffic
//
// DeployOptions.Traffic between 1 and 99 is a canary: the new revision gets
// that share under a tag (its own URL, tag-NAME.…) and the revision serving
// now keeps the rest. Rollback points all traffic at an earlier Ready
// revision, by default the one before the revision serving now.
//
// # As a deploy target
//
// Platform is Knative as `cortex deploy`, get, delete, rollback and
// predict offer it (a deploy.Target): --kubeconfig, --context and
// --namespace on each, --registry on deploy. Its Deploy packages the
// Knative manifest and pushes the image (a dry run pushes nothing) after
// it has found the kubeconfig, and owns the namespace rule: --namespace,
// else targets.knative.namespace, else the kubeconfig context's, else
// default. The other commands use --namespace, else the context's, else
// default.
package knative
