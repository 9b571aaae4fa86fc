package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/spf13/cobra"

	"github.com/cortexfn/cortex/packager/build"
	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime"
	"github.com/cortexfn/cortex/runtime/host"
)

// serveOptions are cortex serve's flags.
type serveOptions struct {
	addr           string
	scaleDownAfter time.Duration
	statusEvery    time.Duration
	watch          bool
	// output is text or json: with json, stdout carries one JSON object a
	// line, {"name","url"} per function and then each status change.
	output string
	// debounce is how long a function's directory must be quiet after a
	// change before it is rebuilt; 0 means watchDebounce.
	debounce time.Duration
	// allowedHosts are the names the front server answers to besides
	// localhost, *.localhost and the address it listens on (--allowed-host).
	allowedHosts []string
	// ports gives functions a port of their own (--ports NAME=PORT): their
	// warm processes accept there themselves, with no proxy hop.
	ports map[string]int
	// readTimeout and idleTimeout, when not 0, replace frontReadTimeout
	// and frontIdleTimeout (for tests).
	readTimeout, idleTimeout time.Duration
	// token is the front's bearer token (--token, else $CORTEX_SERVE_TOKEN);
	// "" for none. It is never printed.
	token string
	// state is the directory of the durable queue's file (--state);
	// "" for the default (see stateFile).
	state string
}

// The front server's own timeouts. They bound the host's short answers
// (status, metrics, errors) and the connections between requests. A
// function's request is bounded by the function instead: once a process
// has it, the host gives it limits.timeout plus host.DefaultRequestGrace
// for its body to arrive and its answer to come, so that neither a long
// prediction nor a body read after a cold start is cut off.
const (
	frontReadHeaderTimeout = 10 * time.Second  // as a function process's
	frontReadTimeout       = 30 * time.Second  // a whole request to the host itself
	frontWriteTimeout      = 30 * time.Second  // an answer of the host itself
	frontIdleTimeout       = 120 * time.Second // as a function process's
)

// watchDebounce: an editor's save, a `git checkout` or a copied model is a
// burst of writes; rebuilding once, after the burst, costs one build and
// never builds a half-written file on purpose.
const watchDebounce = 250 * time.Millisecond

func serveCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve DIR [DIR...]",
		Short: "Serve functions on this machine with scale-to-zero, until Ctrl-C",
		Long: "Serve builds each function and serves them all behind one front server: /{function}/...\n" +
			"(or Host: {function}.localhost) reaches the function's processes. Functions start at zero\n" +
			"processes: the first request starts one and is held until it is ready; more start when\n" +
			"in-flight requests pass autoscaling.target_concurrency; idle ones stop after the\n" +
			"autoscaler's window, down to zero unless autoscaling.min_scale says otherwise.\n" +
			"A DIR without a cortex.yaml is taken as a directory of functions.\n\n" +
			"A function that does not build is served anyway: every request to it gets 503 with the\n" +
			"build error, and the others serve (serve fails only when no function builds and\n" +
			"--watch is off).\n\n" +
			"With --watch, a change in a function's directory (its code, cortex.yaml, model files,\n" +
			"stages; not dist/, dot-files or editors' temporary files) rebuilds it. A build that\n" +
			"works replaces the running one without failing a request: the new processes take new\n" +
			"requests once ready, the old ones finish theirs and stop. A build that fails leaves the\n" +
			"previous one serving and shows its error in the log and in /-/status.\n\n" +
			"The front page, at /, lists every function with its state as it changes (processes,\n" +
			"requests in flight and queued, requests by status, cold starts), each linking to the\n" +
			"function's own page at /{function}/. GET /-/status returns the same as JSON, /-/events\n" +
			"streams it (server-sent events); /metrics has the host's Prometheus metrics.\n\n" +
			"The front server answers only requests whose Host is localhost, a name under .localhost,\n" +
			"a loopback address, the address it listens on, or a name given with --allowed-host: a web\n" +
			"page cannot reach it through a name of its own pointed at this machine (DNS rebinding).\n" +
			"With --token (or $CORTEX_SERVE_TOKEN), every request needs Authorization: Bearer TOKEN\n" +
			"but the pages' static shells, which ask for the token; cortex predict NAME sends\n" +
			"$CORTEX_SERVE_TOKEN. The token goes on to the function with the request, so a function\n" +
			"with a token of its own (auth: in cortex.yaml) needs the same one; --ports sockets are\n" +
			"the functions' own and not behind it. Without a token the front has no authentication:\n" +
			"listening on another address than loopback lets anyone who can reach it call every\n" +
			"function, and serve says so.\n\n" +
			"Function processes get only PATH, HOME, TMPDIR, the locale, TZ and the runtime's CORTEX_\n" +
			"settings of your environment (not your credentials, nor $CORTEX_SERVE_TOKEN), and each\n" +
			"variable their cortex.yaml names in wasm.secret_env.\n\n" +
			"Background predictions asked for on the front (Prefer: respond-async, PUT\n" +
			"/{function}/predictions/{id}) are kept by serve in a file (--state) and handed to the\n" +
			"function's processes as ordinary requests: stopped or killed, serve started again on the\n" +
			"same address resumes them and their webhooks (see docs/async.md).\n\n" +
			"stdout has each function's URL, one a line; -o json makes stdout one JSON object a line:\n" +
			"{\"name\", \"url\"} for each function, then every status change, as /-/status shows a function.",
		Example: "  cortex serve samples/iris                     # front page: http://127.0.0.1:8080/\n" +
			"  cortex serve samples --addr 127.0.0.1:9000\n" +
			"  cortex serve samples/echo-go --watch\n" +
			"  cortex serve samples/iris --scale-down-after 5s\n" +
			"  CORTEX_SERVE_TOKEN=$(openssl rand -hex 32) cortex serve samples --addr 0.0.0.0:8080",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(o.output); err != nil {
				return err
			}
			if _, err := host.ParseAllowedHosts(o.allowedHosts...); err != nil {
				return fmt.Errorf("--allowed-host: %w", err)
			}
			if !cmd.Flags().Changed("token") {
				o.token = os.Getenv(host.TokenEnv)
			} else if o.token == "" {
				return errors.New("--token is empty: give a token, or leave the flag out for none")
			}
			if o.token != "" {
				if err := host.CheckToken(o.token); err != nil {
					return fmt.Errorf("the token (--token or $%s): %w", host.TokenEnv, err)
				}
			}
			return serveFunctions(cmd.Context(), args, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address of the front server (host:port; port 0 picks a free one)")
	f.DurationVar(&o.scaleDownAfter, "scale-down-after", 0, "stop idle processes after this long, overriding autoscaling.window and scale_down_delay (0: use cortex.yaml)")
	f.DurationVar(&o.statusEvery, "status-every", time.Second, "how often to check for and print status changes (0: never)")
	f.BoolVarP(&o.watch, "watch", "w", false, "rebuild a function when its files change, and swap it in without dropping requests")
	f.StringVarP(&o.output, "output", "o", "text", "text or json (one JSON object a line on stdout)")
	f.StringToIntVar(&o.ports, "ports", nil, "give functions a port of their own, NAME=PORT[,NAME=PORT] (0 picks a free one), on the front's address: there a warm function answers callers itself, with no proxy hop, at its own paths (/v2/models/...)")
	f.StringVar(&o.token, "token", "", "require Authorization: Bearer TOKEN on every request to the front but the pages' static shells (default $"+host.TokenEnv+"; prefer the variable: a flag shows in the process list)")
	f.StringVar(&o.state, "state", "", "directory of the file that keeps background predictions (Prefer: respond-async) across restarts (default $CORTEX_CACHE/serve; a temporary one with port 0)")
	f.StringArrayVar(&o.allowedHosts, "allowed-host", nil, "a Host name the front server answers to besides localhost, *.localhost and its address: NAME, *.DOMAIN, an IP, or * for any (repeatable)")
	return cmd
}

// functionDirs expands the arguments: a directory with a cortex.yaml is a
// function; one without is a directory of functions.
func functionDirs(args []string) ([]string, error) {
	var dirs []string
	for _, a := range args {
		if _, err := os.Stat(filepath.Join(a, spec.FileName)); err == nil {
			dirs = append(dirs, a)
			continue
		}
		found, err := filepath.Glob(filepath.Join(a, "*", spec.FileName))
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s has no %s and no function directories under it", a, spec.FileName)
		}
		for _, y := range found {
			dirs = append(dirs, filepath.Dir(y))
		}
	}
	return dirs, nil
}

// hostFunction builds the function in dir and describes it for the host.
// Each build writes its runtime config to a directory of its own under
// configDir: processes of the previous build may still be draining, and
// read theirs.
func hostFunction(ctx context.Context, dir, configDir string, o serveOptions, progress io.Writer) (host.Function, error) {
	fnDir, err := os.MkdirTemp(configDir, "fn-")
	if err != nil {
		return host.Function{}, err
	}
	cfg := filepath.Join(fnDir, "config.json")
	l, err := build.Prepare(ctx, dir, cfg, "", progress)
	if err != nil {
		os.RemoveAll(fnDir)
		return host.Function{}, err
	}
	s, bin, rc := l.Spec, l.Binary, l.Config
	// A stage's secrets come from serve's own environment, by name: the
	// process inherits none of it otherwise.
	secrets, err := s.SecretValues(os.LookupEnv)
	if err != nil {
		os.RemoveAll(fnDir)
		return host.Function{}, err
	}
	env := append([]string{"CORTEX_CONFIG=" + cfg, "CORTEX_HOST=127.0.0.1"}, l.Env...)
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		env = append(env, name+"="+secrets[name])
	}
	a := s.Autoscaling
	scale := host.Autoscaling{
		MinScale:          a.MinScale,
		MaxScale:          a.MaxScale,
		TargetConcurrency: a.TargetConcurrency,
		ScaleDownDelay:    a.ScaleDownDelay,
		StableWindow:      a.Window,
	}
	if o.scaleDownAfter > 0 {
		scale.StableWindow, scale.ScaleDownDelay = o.scaleDownAfter, 0
	}
	if fit, ok := fitOnHost(scale, s.Compute.MilliCPU(), goruntime.NumCPU()); ok {
		fmt.Fprintf(progress, "%s: at most %d processes on this machine's %d CPUs (compute.cpu %s each; max_scale %d on a cluster)\n",
			s.Name, fit, goruntime.NumCPU(), s.Compute.CPU, scale.MaxScale)
		scale.MaxScale = fit
	}
	limits := rc.Limits.WithDefaults()
	async := rc.Async.WithDefaults()
	settings := host.AsyncSettings{
		Keep:            async.Keep.D(),
		MaxOutput:       async.MaxOutput,
		MaxBody:         limits.MaxBody,
		WebhookAllow:    async.WebhookAllow,
		WebhookAttempts: async.WebhookAttempts,
		WebhookBackoff:  async.WebhookBackoff.D(),
	}
	if name := async.WebhookSecretEnv; name != "" {
		// The host signs the webhooks of the predictions it queues, with
		// the secret from serve's own environment, as the function would.
		if settings.WebhookSecret = os.Getenv(name); settings.WebhookSecret == "" {
			fmt.Fprintf(progress, "%s: $%s (async.webhook_secret_env) is not set: background predictions through the front get no webhooks (a request for one is a 422)\n", s.Name, name)
		}
	}
	return host.Function{
		Name:     s.Name,
		Command:  []string{bin.Path},
		Env:      env,
		Dir:      s.Dir,
		Scale:    scale,
		MaxQueue: limits.MaxQueue,
		Timeout:  limits.Timeout.D(),
		Async:    settings,
	}, nil
}

// stateFile is the durable queue's file for a cortex serve on addr (the
// --addr given): in --state, else in $CORTEX_CACHE/serve, one file per
// address, so that cortex serve started again on the same address goes on
// with what it had accepted. With port 0 the address is new at every
// start, and nobody could ask the next one for the predictions: the file
// is then in serve's temporary directory (tmp), and goes with it.
func stateFile(o serveOptions, tmp string) (string, error) {
	host, port, err := net.SplitHostPort(o.addr)
	if err != nil {
		return "", fmt.Errorf("--addr %s: %w", o.addr, err)
	}
	dir := o.state
	if dir == "" && port == "0" {
		dir = tmp
	}
	if dir == "" {
		root, err := build.CacheRoot("")
		if err != nil {
			return "", fmt.Errorf("the state directory: %w (give one with --state)", err)
		}
		dir = filepath.Join(root, "serve")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("the state directory (--state): %w", err)
	}
	return filepath.Join(dir, "serve-"+dnsLabel(cmp.Or(host, "any")+"-"+port)+".db"), nil
}

// failedName is the route of a function that did not build: the name its
// cortex.yaml gives when that much of it reads, else its directory's name,
// made a DNS label as the host's routes need.
func failedName(dir string) string {
	if data, err := os.ReadFile(filepath.Join(dir, spec.FileName)); err == nil {
		if s, _ := spec.Parse(data, ""); s != nil && s.Name != "" && dnsLabel(s.Name) == s.Name {
			return s.Name
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	return dnsLabel(filepath.Base(abs))
}

// dnsLabel lower-cases name, turns every other character than a-z, 0-9
// and '-' into '-', and trims it to the 63 characters of a DNS label.
func dnsLabel(name string) string {
	b := []byte(strings.ToLower(name))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '-'
		}
	}
	label := strings.Trim(string(b[:min(len(b), 63)]), "-")
	if label == "" {
		return "function"
	}
	return label
}

// servedFunction is one function directory of cortex serve.
type servedFunction struct {
	dir  string
	name string // its route on the host, fixed for the life of serve
	// built reports whether a build of it serves (only the watcher's
	// goroutine for the function changes it after start).
	built bool
}

// serveFunctions builds the functions, serves them until ctx ends, then
// drains every process. The functions' URLs go to stdout; progress, status,
// build errors and the processes' logs to stderr.
func serveFunctions(ctx context.Context, args []string, o serveOptions, stdout, stderr io.Writer) error {
	dirs, err := functionDirs(args)
	if err != nil {
		return err
	}
	configDir, err := os.MkdirTemp("", "cortex-serve-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(configDir)

	// Watch before the first builds, so that a change made during them is
	// not missed: its events wait in the watcher until the loop reads them.
	var w *watcher
	if o.watch {
		if w, err = newWatcher(dirs, o.debounce, stderr); err != nil {
			return err
		}
		defer w.close()
	}

	fns := make([]host.Function, 0, len(dirs))
	served := make([]*servedFunction, 0, len(dirs))
	var failed []error
	for _, d := range dirs {
		fn, err := hostFunction(ctx, d, configDir, o, stderr)
		if ctx.Err() != nil {
			return ctx.Err() // Ctrl-C during a build
		}
		sf := &servedFunction{dir: d, name: fn.Name, built: err == nil}
		if err != nil {
			// Served with its error, so a caller learns why and the
			// others serve; see host.Function.Err.
			sf.name = failedName(d)
			fn = host.Function{Name: sf.name, Err: err}
			failed = append(failed, err)
			until := "it is fixed and cortex serve restarted"
			if o.watch {
				until = "a change in " + d + " makes it build"
			}
			fmt.Fprintf(stderr, "%s did not build: every request to it gets 503 with this error until %s:\n%v\n", sf.name, until, err)
		}
		fns = append(fns, fn)
		served = append(served, sf)
	}
	if len(failed) == len(dirs) && !o.watch {
		return errors.Join(failed...)
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.addr, err)
	}
	allowed, err := allowedHosts(ln.Addr(), o)
	if err != nil {
		ln.Close()
		return err
	}
	own, err := listenOwnPorts(fns, ln.Addr(), o.ports)
	if err != nil {
		ln.Close()
		return err
	}
	state, err := stateFile(o, configDir)
	if err != nil {
		ln.Close()
		for _, l := range own {
			l.Close()
		}
		return err
	}
	hostOpts := []host.Option{
		host.WithStateFile(state),
		host.WithAllowedHosts(allowed),
		host.WithLogWriter(stderr),
		host.WithLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	}
	if o.token != "" {
		hostOpts = append(hostOpts, host.WithToken(o.token))
	}
	h, err := host.New(fns, hostOpts...)
	if err != nil {
		ln.Close()
		for _, l := range own {
			l.Close()
		}
		return err
	}
	srv := frontServer(h, allowed, o)
	// A front page left open keeps its event stream: end the streams when
	// the server shuts down, or Shutdown would wait for them.
	srv.RegisterOnShutdown(h.CloseStreams)
	if warning := exposure(ln.Addr(), o.token != ""); warning != "" {
		fmt.Fprintln(stderr, warning)
	}
	if o.token != "" {
		fmt.Fprintf(stderr, "the front requires a bearer token (--token or $%s): send Authorization: Bearer TOKEN; its pages ask for it\n", host.TokenEnv)
		if len(own) > 0 {
			fmt.Fprintf(stderr, "warning: the functions' own ports (--ports) are not behind the token: there the function's own auth: in cortex.yaml applies\n")
		}
	}
	fmt.Fprintf(stderr, "background predictions are kept in %s\n", state)
	base := "http://" + ln.Addr().String()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	example := "" // the first function that built, for the hint below
	enc := json.NewEncoder(stdout)
	for _, sf := range served {
		url, front := base+"/"+sf.name+"/", base+"/"+sf.name+"/"
		if l := own[sf.name]; l != nil {
			url = "http://" + l.Addr().String() + "/"
		}
		if o.output == "json" {
			enc.Encode(struct {
				Name     string `json:"name"`
				URL      string `json:"url"`
				FrontURL string `json:"front_url"`
			}{sf.name, url, front})
		} else {
			fmt.Fprintln(stdout, url)
		}
		if example == "" && sf.built {
			example = sf.name
		}
	}
	if example == "" {
		example = served[0].name
	}
	fmt.Fprintf(stderr, "serving %d function(s) at %s, each at zero processes until its first request: POST %s/%s/predict (front page: %s/; status: %s/-/status; Ctrl-C to stop)\n",
		len(fns), base, base, example, base, base)

	// Every way out stops the watcher and waits for a rebuild under way
	// (it ends with watchCtx), so that no go build outlives serve.
	watchCtx, stopWatch := context.WithCancel(ctx)
	var rebuilds sync.WaitGroup
	stopRebuilds := func() { stopWatch(); rebuilds.Wait() }
	defer stopRebuilds()
	if w != nil {
		r := &rebuilder{h: h, configDir: configDir, o: o, log: stderr}
		rebuilds.Go(func() { w.run(watchCtx, served, r.rebuild, stderr) })
	}

	status := newStatusPrinter(stderr)
	if o.output == "json" {
		status = &statusPrinter{w: stdout, last: map[string]string{}, json: true}
	}
	var tick <-chan time.Time
	if o.statusEvery > 0 {
		t := time.NewTicker(o.statusEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			status.print(h.Status())
		case err := <-serveErr:
			_ = h.Shutdown(context.Background())
			return fmt.Errorf("serving: %w", err)
		case <-ctx.Done():
			stopRebuilds() // before the host goes: a rebuild would replace a function on it
			fmt.Fprintln(stderr, "stopping: draining every function")
			dctx, cancel := context.WithTimeout(context.Background(), host.DefaultDrainTimeout+5*time.Second)
			defer cancel()
			err := errors.Join(srv.Shutdown(dctx), h.Shutdown(dctx))
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			return err
		}
	}
}

// allowedHosts is the Host check of the front and of the functions' own
// ports (see host.AllowedHosts): the address the front listens on (and
// the name --addr gave it) and --allowed-host besides what is always
// allowed.
func allowedHosts(addr net.Addr, o serveOptions) (*host.AllowedHosts, error) {
	patterns := slices.Clone(o.allowedHosts)
	if tcp, ok := addr.(*net.TCPAddr); ok {
		patterns = append(patterns, tcp.IP.String())
	}
	if name, _, err := net.SplitHostPort(o.addr); err == nil && name != "" {
		patterns = append(patterns, name)
	}
	allowed, err := host.ParseAllowedHosts(patterns...)
	if err != nil {
		return nil, fmt.Errorf("--allowed-host: %w", err)
	}
	return allowed, nil
}

// listenOwnPorts opens the port --ports gives each function, on the
// front's address, and sets it as the function's Listener. It returns
// them by function name.
func listenOwnPorts(fns []host.Function, front net.Addr, ports map[string]int) (map[string]net.Listener, error) {
	own := map[string]net.Listener{}
	closeAll := func() {
		for _, l := range own {
			l.Close()
		}
	}
	var names []string
	for i := range fns {
		names = append(names, fns[i].Name)
	}
	for name := range ports {
		if !slices.Contains(names, name) {
			return nil, fmt.Errorf("--ports %s=%d: no function %q is served; functions: %s", name, ports[name], name, strings.Join(names, ", "))
		}
	}
	ip := "127.0.0.1"
	if tcp, ok := front.(*net.TCPAddr); ok {
		ip = tcp.IP.String()
	}
	for i := range fns {
		port, ok := ports[fns[i].Name]
		if !ok {
			continue
		}
		if port < 0 || port > 65535 {
			closeAll()
			return nil, fmt.Errorf("--ports %s=%d: want a port from 0 to 65535", fns[i].Name, port)
		}
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("--ports %s=%d: %w", fns[i].Name, port, err)
		}
		own[fns[i].Name] = l
		fns[i].Listener = l
	}
	return own, nil
}

// frontServer is the server in front of h: the timeouts above, and the
// Host check.
func frontServer(h http.Handler, allowed *host.AllowedHosts, o serveOptions) *http.Server {
	return &http.Server{
		Handler:           allowed.Handler(h),
		ReadHeaderTimeout: frontReadHeaderTimeout,
		ReadTimeout:       cmp.Or(o.readTimeout, frontReadTimeout),
		WriteTimeout:      frontWriteTimeout,
		IdleTimeout:       cmp.Or(o.idleTimeout, frontIdleTimeout),
		MaxHeaderBytes:    runtime.MaxHeaderBytes,
	}
}

// exposure is the warning for a front server that listens on addr, or ""
// when addr is a loopback address: without a token whoever can reach the
// address can call every function; with one, it still crosses the
// network in clear over plain HTTP.
func exposure(addr net.Addr, token bool) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() {
		return ""
	}
	where := addr.String()
	if tcp.IP.IsUnspecified() {
		where = "every network interface (" + where + ")"
	}
	if token {
		return fmt.Sprintf("warning: cortex serve listens on %s, not only on this machine's loopback. It requires the token, but serves plain HTTP: the token and every request cross the network in clear. Put a TLS proxy in front of it, or keep it to this machine with --addr 127.0.0.1:PORT; clients that call it by a name need --allowed-host NAME.", where)
	}
	return fmt.Sprintf("warning: cortex serve listens on %s, not only on this machine's loopback: anyone who can reach it can call every function and read %s (process IDs, ports, errors), with no authentication. Use --addr 127.0.0.1:PORT to keep it to this machine; clients that call it by a name need --allowed-host NAME.",
		where, host.StatusPath)
}

// serveClient is the client for the cortex serve at addr (host:port): it
// sends $CORTEX_SERVE_TOKEN, when set, as the bearer token the front
// requires with --token, to that address only.
func serveClient(addr string) *http.Client {
	return host.TokenClient(addr, os.Getenv(host.TokenEnv))
}

// servesLocally reports whether a cortex serve at addr lists the function
// name in its status. It sends $CORTEX_SERVE_TOKEN; a cortex serve that
// wants a token it was not given is worth a line on stderr, since the
// lookup then goes on to the deployed functions.
func servesLocally(ctx context.Context, addr, name string, stderr io.Writer) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	all, err := host.FetchStatus(ctx, serveClient(addr), "http://"+addr)
	if errors.Is(err, host.ErrUnauthorized) {
		fmt.Fprintf(stderr, "cortex serve at %s requires a token: set $%s to it to reach its functions (not looking there)\n", addr, host.TokenEnv)
	}
	_, ok := all[name]
	return err == nil && ok
}

// rebuilder builds a function again after a change and hands the result
// to the host.
type rebuilder struct {
	h         *host.Host
	configDir string
	o         serveOptions
	log       io.Writer

	// mu keeps to one build at a time: builds of several functions
	// changed together (a git checkout) would only compete for the CPU and
	// the Go build cache.
	mu sync.Mutex
}

// rebuild builds sf. A build that works replaces the function on the host
// (see host.Host.Replace for how no request fails); one that fails leaves
// what serves as it is and is reported.
func (r *rebuilder) rebuild(ctx context.Context, sf *servedFunction) {
	r.mu.Lock()
	fmt.Fprintf(r.log, "%s changed: rebuilding\n", sf.name)
	fn, err := hostFunction(ctx, sf.dir, r.configDir, r.o, r.log)
	r.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	if err == nil && fn.Name != sf.name {
		err = fmt.Errorf("%s: name is %s now, but cortex serve routes this function as %s: restart cortex serve to serve it under the new name",
			filepath.Join(sf.dir, spec.FileName), fn.Name, sf.name)
	}
	if err == nil {
		err = r.h.Replace(fn)
	}
	if err != nil {
		if herr := r.h.BuildFailed(sf.name, err); herr != nil {
			fmt.Fprintf(r.log, "%s: %v\n", sf.name, herr)
		}
		still := "it still cannot run"
		if sf.built {
			still = "the previous build serves on"
		}
		fmt.Fprintf(r.log, "%s: the rebuild failed, %s:\n%v\n", sf.name, still, err)
		return
	}
	sf.built = true
	fmt.Fprintf(r.log, "%s rebuilt: its new processes take the requests once one is ready; the old ones finish theirs and stop\n", sf.name)
}

// watcher tells which function directories changed, once each burst of
// changes is over.
type watcher struct {
	fs       *fsnotify.Watcher
	debounce time.Duration
}

// newWatcher watches dirs. A directory it cannot watch (unreadable, or
// past the system's limit on watches) is reported on log and left out:
// the functions still serve, they are just not rebuilt on a change there.
func newWatcher(dirs []string, debounce time.Duration, log io.Writer) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching: %w", err)
	}
	if debounce <= 0 {
		debounce = watchDebounce
	}
	w := &watcher{fs: fw, debounce: debounce}
	for _, d := range dirs {
		if err := w.addTree(d); err != nil {
			fmt.Fprintf(log, "not watching all of %s: %v\n", d, err)
		}
	}
	return w, nil
}

func (w *watcher) close() { _ = w.fs.Close() }

// addTree watches dir and every directory under it that is not ignored:
// inotify, like most platforms' notifications, is not recursive. A
// directory it cannot watch is left out, and named in the error.
func (w *watcher) addTree(root string) error {
	var errs []error
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil && errors.Is(err, fs.ErrNotExist):
			return nil // removed while we walked
		case err != nil:
			errs = append(errs, err)
			return nil // WalkDir skips what it could not read
		case !d.IsDir():
			return nil
		}
		if rel, _ := filepath.Rel(root, p); p != root && ignored(rel) {
			return filepath.SkipDir
		}
		if err := w.fs.Add(p); err != nil {
			errs = append(errs, fmt.Errorf("watching %s: %w", p, err))
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// ignored reports whether a change to rel, a path inside a function
// directory, cannot change what the function runs: what cortex package
// writes (dist/), dot-files and dot-directories (.git, editors' state and
// swap files such as .main.go.swp, Emacs's .#locks), and the temporary
// files editors write beside the one they save (Vim's 4913 and foo~,
// Emacs's #foo#, JetBrains' foo___jb_tmp___).
func ignored(rel string) bool {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	if parts[0] == "dist" {
		return true
	}
	for _, p := range parts {
		if strings.HasPrefix(p, ".") {
			return true
		}
	}
	base := parts[len(parts)-1]
	switch {
	case base == "4913",
		strings.HasSuffix(base, "~"),
		strings.HasPrefix(base, "#") && strings.HasSuffix(base, "#"),
		strings.HasSuffix(base, ".swp"), strings.HasSuffix(base, ".swx"),
		strings.HasSuffix(base, ".tmp"),
		strings.Contains(base, "___jb_"):
		return true
	}
	return false
}

// run reads the watcher's events until ctx ends and calls rebuild for a
// function once its directory has been quiet for the debounce time after
// a change. A function's rebuilds run one after another on a goroutine of
// its own; changes during a rebuild bring one more rebuild after it, never
// a queue of them.
func (w *watcher) run(ctx context.Context, fns []*servedFunction, rebuild func(context.Context, *servedFunction), log io.Writer) {
	type state struct {
		sf    *servedFunction
		root  string
		kick  chan struct{} // holds at most one pending rebuild
		timer *time.Timer
	}
	var all []*state
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, sf := range fns {
		root, err := filepath.Abs(sf.dir)
		if err != nil {
			root = sf.dir
		}
		st := &state{sf: sf, root: root, kick: make(chan struct{}, 1)}
		all = append(all, st)
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-st.kick:
					rebuild(ctx, st.sf)
				}
			}
		})
	}
	// owner finds the function a path is in: the longest directory that
	// holds it, in case one function directory holds another.
	owner := func(name string) (*state, string) {
		var best *state
		var rel string
		for _, st := range all {
			r, err := filepath.Rel(st.root, name)
			if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				continue
			}
			if best == nil || len(st.root) > len(best.root) {
				best, rel = st, r
			}
		}
		return best, rel
	}
	for {
		select {
		case <-ctx.Done():
			for _, st := range all {
				if st.timer != nil {
					st.timer.Stop()
				}
			}
			return
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			fmt.Fprintf(log, "watching: %v\n", err)
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			// Chmod alone changes nothing a build reads; on Linux it also
			// comes with every remove, which Remove covers.
			if ev.Op == fsnotify.Chmod {
				continue
			}
			name, err := filepath.Abs(ev.Name)
			if err != nil {
				continue
			}
			st, rel := owner(name)
			if st == nil || rel == "." || ignored(rel) {
				continue
			}
			if ev.Has(fsnotify.Create) {
				if info, err := os.Stat(name); err == nil && info.IsDir() {
					if err := w.addTree(name); err != nil {
						fmt.Fprintf(log, "%s: %v\n", st.sf.name, err)
					}
				}
			}
			if st.timer == nil {
				st.timer = time.AfterFunc(w.debounce, func() {
					select {
					case st.kick <- struct{}{}:
					default: // one is pending already
					}
				})
			} else {
				st.timer.Reset(w.debounce)
			}
		}
	}
}

// statusPrinter prints a function's status line when it changes: text, or
// /-/status's JSON object for the function.
type statusPrinter struct {
	w    io.Writer
	last map[string]string
	json bool
}

func newStatusPrinter(w io.Writer) *statusPrinter {
	return &statusPrinter{w: w, last: map[string]string{}}
}

func (p *statusPrinter) print(all []host.FunctionStatus) {
	for _, s := range all {
		line := statusLine(s)
		if p.last[s.Name] == line {
			continue
		}
		p.last[s.Name] = line
		if p.json {
			json.NewEncoder(p.w).Encode(s)
		} else {
			fmt.Fprintf(p.w, "status %s\n", line)
		}
	}
}

func statusLine(s host.FunctionStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", s.Name, s.State)
	if s.Revision > 1 {
		fmt.Fprintf(&b, " (revision %d)", s.Revision)
	}
	fmt.Fprintf(&b, ", %d process(es) (%d ready, %d starting, %d draining), %d in flight, %d queued, %d cold start(s)",
		len(s.Processes), s.Ready, s.Starting, s.Draining, s.InFlight, s.Queued, s.ColdStarts)
	if s.ColdStarts > 0 {
		fmt.Fprintf(&b, ", last cold start %s", s.LastColdStart.Round(time.Millisecond))
		if phases := coldStartPhases(s.LastColdStartPhases); phases != "" {
			fmt.Fprintf(&b, " (%s)", phases)
		}
	}
	switch {
	case s.Error != "":
		fmt.Fprintf(&b, ", error: %s", s.Error)
	case s.LastError != "":
		fmt.Fprintf(&b, ", last error: %s", s.LastError)
	}
	if s.BuildError != "" {
		fmt.Fprintf(&b, ", latest build failed (revision %d serves on): %s", s.Revision, s.BuildError)
	}
	return b.String()
}

// fitOnHost is the most processes of a function scaled as a that fit on a
// machine with ncpu CPUs when each asks for milliCPU thousandths of a
// core, as a node fits pods by their CPU requests, and whether that is
// fewer than a allows. A Go process uses every core anyway: more
// processes than fit only contend for them (iris at 64 clients on 2
// cores: 0.86 of the floor with 4 processes, 0.90 with 2; BENCHMARKS.md).
// min_scale is kept even when it does not fit.
func fitOnHost(a host.Autoscaling, milliCPU int64, ncpu int) (int, bool) {
	if milliCPU <= 0 {
		return 0, false
	}
	most := a.MaxScale
	if most == 0 {
		most = max(host.DefaultMaxScale, a.MinScale)
	}
	fit := max(int(int64(ncpu)*1000/milliCPU), 1, a.MinScale)
	return fit, fit < most
}
