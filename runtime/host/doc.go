// Package host runs many functions on one machine with scale-to-zero: the
// engine of `cortex serve`. It is Knative's activator and autoscaler scaled
// down to one host.
//
// A Host fronts a set of functions. Each starts with no process. The first
// request to an idle function starts one (the function binary, with $PORT
// set to a free loopback port, in its own process group) and is held, with
// every request that arrives meanwhile, until the process answers 200 on
// /readyz; then they are forwarded. Concurrency drives the process count:
// more processes when the requests in flight exceed the target per process,
// fewer (drained with SIGTERM) once they have been idle for the scale-down
// delay and the average over the stable window no longer needs them, down
// to zero when MinScale is 0.
//
// Routes served by Host.ServeHTTP:
//
//	/{function}/rest...        forwarded to the function as /rest... ("/" when empty)
//	GET, HEAD /{function}/, /{function}/docs, /{function}/-/page.*
//	                            the function's page shell, from the front's own copy (wakes nothing)
//	POST /{function}/... with Prefer: respond-async, and
//	GET, PUT /{function}/predictions/{id}, POST .../cancel
//	                            background predictions in the durable queue, with a state
//	                            file (WithStateFile; async.go; docs/async.md)
//	GET, HEAD /{function}       308 to /{function}/, the function's page (POST stays a prediction)
//	Host: {function}.localhost  forwarded with the path unchanged
//	GET /                       the front page: every function, live (frontpage.go)
//	GET /-/status               Status as JSON
//	GET /-/events               Status as server-sent events, at each change
//	GET /metrics, /-/metrics    the host's Prometheus metrics
//
// With WithToken every route but the pages' static shells needs
// Authorization: Bearer TOKEN (see token.go for which are open and why).
//
// A function may also have a socket of its own (Function.Listener; cortex
// serve --ports), where callers reach it at its own paths with no proxy
// hop once it is warm: see "A function's own socket" below.
//
// A front server puts AllowedHosts.Handler in front of the host, as
// `cortex serve` does, so that it answers only to localhost, *.localhost,
// loopback addresses, the address it is bound to and the names it is
// given: a web page that points a name of its own at 127.0.0.1 (DNS
// rebinding) gets 421, neither predictions nor the status.
//
// Errors the host answers itself have the JSON body {"error": "..."}:
// 404 for an unknown function, 502 when a process died or stopped answering
// under a request, 503 with Retry-After when a function cannot start or is
// at capacity (see Host.ServeHTTP for why 503 rather than 429) or when the
// process exited to be replaced under the request, 503 with the build error
// for a function that has no build (Function.Err), 400 when the
// caller's body ends before its Content-Length (as the function answers),
// 408 when the body does not arrive within the request's bound and 504
// when the process does not answer within it (see below). Every answer on
// a function's route carries X-Request-Id, which the host passes to the
// process too.
//
// # Decisions
//
// TargetConcurrency is both the autoscaler's target and the most requests
// the host hands one process at a time (Knative's containerConcurrency set
// to the target). Requests beyond that wait in the host, in a bounded FIFO
// queue (Function.MaxQueue), and go to the first process with a free slot:
// so a slow process never collects a backlog while another is idle, and the
// bound on memory holds whatever the load.
//
// The stable window averages, per autoscaler tick, the highest demand
// (requests in flight plus queued) seen during the tick, so a burst between
// two ticks still counts. Scale-up is immediate: it happens on the request
// that needs it. Scale-down waits for both the window and the delay.
//
// Every process start is counted as a cold start: the process loads its
// model from nothing whether it is the first or the fifth.
//
// A start that fails (the process exits, cannot be spawned, or is not ready
// within StartTimeout) puts the function in backoff: no new attempt before
// the backoff ends (it doubles per consecutive failure, see
// WithRestartBackoff), and requests that find no process meanwhile get 503
// with the reason and Retry-After at once, so a broken function costs
// neither a spin loop nor held connections. The reason is how the process
// ended (its exit status) and the request id; what it wrote to stderr
// goes to the log (WithLogger) with that id and never to a caller or
// /-/status: a function's last words may hold a path, a stack trace or a
// secret it printed.
//
// A request's time is bounded once a process has it: its function's
// Timeout (limits.timeout) plus the request grace (WithRequestGrace,
// default 35s: the runtime's own 30s margin and 5s more) for the caller's
// body to arrive and the process to answer, so a caller that trickles its
// body holds a slot no longer than a prediction may take, and then its
// connection is closed. These deadlines replace the front server's own
// read and write timeouts for the request: those suit the host's short
// answers, but would cut off a body read after a cold start or the answer
// of a prediction longer than them (see Host.ServeHTTP). The wait for a
// process is not bounded by them: StartTimeout bounds a cold start.
//
// A function process gets its Function.Env and a few variables of the
// host's environment (PATH, HOME, TMPDIR, the locale, TZ, the runtime's
// CORTEX_LOG_LEVEL, CORTEX_CACHE and CORTEX_ONNXRUNTIME_LIB, the CUDA and
// Go runtime settings: see inherited for each reason), not the rest of it:
// the credentials in the environment of the person running `cortex
// serve` are not a function's.
//
// A process that exits with status 75 (runtime.ExitReplace: a prediction
// ran on past its deadline and only a new process gets back what it holds)
// asked to be replaced: it is counted as replaced, not as a crash, puts the
// function in no backoff, and the next request that needs a process starts
// one. The runtime exits so only after its drain, so a request the host
// handed it before learning it was going (at a probe, or at the exit) was
// not served: it gets 503 with Retry-After, not a 502.
//
// A process may answer before it has read the whole request body (413 for
// a body over its limits.max_body) and close the connection while the host
// is still sending the body. The host then passes that answer on, never a
// 502: a write error on a connection to a process waits until the
// connection's read side is done (see procConn), because http.Transport
// reports whichever it sees first. The function stays the one place that
// knows and applies its limits.
//
// The host's metrics for a function (requests by status code, cold starts,
// requests in flight, processes by state) are its own counts, kept for the
// host's lifetime: a process's own /metrics ends with the process, and a
// function that scales to zero has none.
//
// A function whose build failed is still given to New, with Function.Err:
// it keeps its route and answers with its error, so one broken function
// neither takes the others down nor turns into a puzzling 404.
//
// Host.Replace swaps a function's build while it serves, numbering each
// build a revision. The new revision starts beside the old one and takes
// over when it is ready (the old processes finish their requests first,
// then stop); one that cannot start is abandoned. Knative rolls out a new
// revision the same way, and for the same reason: a change to a function
// should cost its callers nothing, not even a failed request.
//
// A process's spawn, output, probes, signals and exit status are the
// business of runtime/host/supervisor, which `cortex test` uses too; this
// package decides what to do with processes: route, queue, scale, probe
// for liveness, retire and replace.
//
// # A function's own socket
//
// Through the front, a warm request crosses net/http three times (caller
// to host, host to process, and back through both); on a small machine
// the host and the process then share the cores with the caller, and the
// front kept about a third of the throughput of the process alone. A
// function with Function.Listener is served there without the host in
// between once it is warm, as systemd's socket activation serves a unit:
// the host owns the socket, passes it to every process it starts, and
// each process accepts on it once its predictor is ready. While no
// process of the function is ready (at zero, starting, in backoff, or
// with a build error) the host accepts on the socket itself and serves
// those requests as the front's route serves them; once one is ready the
// host stops accepting and closes its idle connections there (their
// callers reconnect to a process). A connection that arrives in between
// waits in the kernel's backlog, so none is lost.
//
// The processes report their load over a control channel (see package
// activation): requests in flight, the peak since the last report, and
// the requests they answered on the socket. The autoscaler counts a
// process's load as the larger of what it forwarded to it and what it
// reported, so scale-up, the stable window, scale-down to zero and a
// retired process's wait for its last request work as for forwarded
// requests. Before a process that accepts on the socket is drained it is
// told to quiesce: it stops accepting and closes its idle connections
// (a request already on one is served, with Connection: close), and gets
// SIGTERM a moment later. A process whose control channel closes (cortex
// serve was killed) drains and exits.
//
// What changes for callers of the socket: a process that crashes under
// their requests closes their connections (there is no proxy left to
// answer 502; the next request is served by another process or a new
// one); a request races the close of an idle keep-alive connection at a
// scale-down as with any server's idle timeout; the host's queue and
// per-process concurrency do not apply to connections a process accepted
// itself (the runtime's own limits, max_concurrency and max_queue, do);
// and keep-alive connections stay with the process that accepted them,
// so a process started by scale-up takes new connections, not the ones
// already open. The socket answers only to the front's allowed Host names
// (WithAllowedHosts), whichever side accepted the connection.
//
// The package needs Unix process groups; elsewhere New fails.
package host
