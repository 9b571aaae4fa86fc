// Package knative writes a function's Knative Service manifest
// (serving.knative.dev/v1) and checks it with Knative's own webhook code.
//
// What Service sets, from cortex.yaml:
//
//   - the image by digest (a tag could move under a running revision);
//   - on the revision template, the autoscaling annotations: min-scale
//     (0 by default: scale to zero), max-scale, metric concurrency,
//     target (autoscaling.target_concurrency), window and, when set,
//     scale-down-delay;
//   - containerConcurrency = limits.max_concurrency (the hard limit; the
//     queue-proxy queues the rest) and timeoutSeconds = limits.timeout plus
//     5 s (so the function's own 504 answers first), at most 600;
//   - requests from compute (cpu, mem) and a memory limit; no CPU limit
//     (throttling a model server hurts latency more than it protects);
//   - a readiness probe on /readyz (port left to Knative), and a startup
//     probe on /readyz whose worst case is StartBudget:
//     targets.knative.startup_timeout when set, else LoadBudget, twice
//     a pessimistic load time for the model's size (30 s + 50 MB/s), at
//     least a minute; for models fetched by reference, whose size is not
//     known when the Service is written, the fetch (25 MB/s) and load of
//     ReferencedModelSize (8 GiB) on top;
//   - for models fetched by reference (predictor.model oci://, https://,
//     s3://): an emptyDir volume (on disk, sizeLimit ModelCacheLimit,
//     16 GiB) mounted at ModelCacheDir, with $CORTEX_MODEL_CACHE naming
//     it: the root filesystem is read-only, and the volume is where the
//     runtime fetches the models to (kubernetes.podspec-volumes-emptydir,
//     on in a default install, which the deploy's preflight checks);
//   - with auth, the annotation cortex.dev/token-env naming the token's
//     variable (never its value), so that `cortex get` can read the
//     function's metrics with the token from its own environment;
//   - a liveness probe on /healthz (every 10 s, 5 s timeout, restart after
//     4 failures in a row): the runtime fails /healthz when a prediction
//     overran its deadline by limits.overrun_grace and the process must
//     be replaced, and then exits by itself (status 75) once its other
//     predictions have drained; the probe restarts a process that cannot,
//     and gives it the runtime's drain bound (30 s) first. Like the
//     readiness probes it starts after the startup probe succeeds, so a
//     model that loads slowly is never restarted;
//   - for each wasm.secret_env variable, and for auth's token variable, a
//     container env entry whose value comes from the Kubernetes Secret and
//     key the spec names (valueFrom.secretKeyRef, not optional): the
//     runtime reads it from its environment at start, and no manifest or
//     image holds the value;
//   - the securityContext Knative recommends (it warns otherwise):
//     runAsNonRoot, allowPrivilegeEscalation false, drop ALL, seccomp
//     RuntimeDefault;
//   - for compute.gpu > 0: the nvidia.com/gpu limit, the node selector
//     (targets.knative.gpu_node_selector, default nvidia.com/gpu.present:
//     "true"), a toleration for the nvidia.com/gpu NoSchedule taint, and
//     serving.knative.dev/progress-deadline sized by ProgressDeadline to
//     cover a GPU node coming up, the image pull and the start budget. A CPU
//     function gets the annotation only when that exceeds Knative's 10m
//     default.
//
// Node selectors and tolerations need the config-features flags that
// Needed lists (both off in a default install). Validate runs
// SetDefaults and Validate from knative.dev/serving/pkg/apis/serving/v1 —
// what the webhook runs — and fails on any error or warning.
//
// It owns the Service as cortex.yaml makes it, as an object; YAML is
// written only at the edge (YAML). It must not import packager,
// packager/build, packager/oci or a Kubernetes client: talking to a
// cluster is packager/deploy/knative's.
package knative
