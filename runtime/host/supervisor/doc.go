// Package supervisor runs one function process on this machine, from spawn
// to reaping. It is the one process supervisor of the CLI: runtime/host
// (`cortex serve`, many processes per function, scale to zero) and
// cmd/cortex/internal/local (`cortex test`, one process) both start their
// function binaries through Start, so a fix to how a process is started,
// watched or stopped reaches both.
//
// It owns:
//
//   - the spawn: the binary on a free port (or a given one), with $PORT and
//     $CORTEX_HOST set after the caller's environment (all of it, or the
//     variables the caller's Inherit keeps), in its own process
//     group so that a Ctrl-C in the terminal reaches only the CLI and a
//     signal reaches everything the function started; on Linux the kernel
//     also kills it if the CLI dies without stopping it;
//   - its output: stdout and stderr forwarded one whole line at a time with
//     a prefix, onto an Output that any number of processes share, keeping
//     the last lines of stderr for an error message (StderrTail);
//   - readiness and probes: WaitReady polls /readyz with a short backoff
//     until 200, the exit, the timeout or the caller's context; Probe asks
//     any path once;
//   - the stop: Stop sends SIGTERM to the group, waits the grace period,
//     then SIGKILLs the group; whatever the group still holds when the
//     process exits is killed with it, once, right after the process is
//     reaped (the group's ID stays reserved while any member lives, so
//     that signal cannot reach another process), and after that the group
//     is never signalled again (its PID may be reused);
//   - how it ended: ExitReason, Err, and ExitedToBeReplaced for the exit
//     status ExitReplace (75) that the function runtime uses to ask for a
//     fresh process.
//
// What to do with a process (routing requests, scaling, liveness policy,
// replacing revisions, running examples) belongs to its callers.
//
// It imports only the standard library. It must not import packager (the
// caller builds the binary and passes its path), nor the function SDK or
// runtime (functions, runtime, adapters): a function's contract with its
// supervisor is $PORT, $CORTEX_HOST, /readyz, SIGTERM and its exit status,
// and ExitReplace mirrors runtime.ExitReplace, which a test holds equal.
// Like everything under runtime/host it is for the CLI only: a function
// binary must never import it (internal/depcheck).
//
// It needs Unix process groups; elsewhere Start fails with the error of
// Supported.
package supervisor
