// Command fn is the function the host's tests run: it echoes, and on request
// sleeps (?sleep=100ms), crashes mid-request (?crash=1 exits with status 3),
// answers and then exits with status 75 to be replaced, as the runtime does
// after a runaway prediction (?replace=1), or fails at Init ($FN_FAIL_INIT
// holds the error). With $FN_RUN_LOG set, each prediction appends its body,
// a line, to that file. $FN_INIT_DELAY delays Init, like a model that takes time
// to load. With $FN_SICKENS set it serves without the runtime (see
// sickens). Every answer carries $FN_VERSION, so a test can tell one build of
// a function from the next, and with ?env=1 the process's whole environment.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
)

type echo struct {
	functions.PredictorFunc
}

func (echo) Init(ctx context.Context, _ functions.Config) error {
	if msg := os.Getenv("FN_FAIL_INIT"); msg != "" {
		fmt.Fprintln(os.Stderr, "loading model: "+msg)
		return errors.New(msg)
	}
	if d, err := time.ParseDuration(os.Getenv("FN_INIT_DELAY")); err == nil {
		time.Sleep(d)
	}
	return nil
}

func predict(ctx context.Context, req *functions.Request) (*functions.Response, error) {
	if name := os.Getenv("FN_RUN_LOG"); name != "" {
		// One line per run of the model, so a test counts the runs of
		// every process, across restarts of the host.
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		_, err = f.Write(append(req.Body, '\n'))
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	if req.Query.Get("crash") == "1" {
		fmt.Fprintln(os.Stderr, "crashing as asked")
		os.Exit(3)
	}
	if req.Query.Get("replace") == "1" {
		go func() {
			time.Sleep(100 * time.Millisecond) // the answer goes out first
			fmt.Fprintln(os.Stderr, "exiting to be replaced")
			os.Exit(75) // runtime.ExitReplace
		}()
	}
	if s := req.Query.Get("sleep"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, functions.Errorf(http.StatusBadRequest, "sleep: %v", err)
		}
		// Tests wait for this line to know the process itself has the
		// request (the host counts it in flight before the process reads it).
		fmt.Fprintln(os.Stderr, "sleeping", s)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	answer := map[string]any{
		"pid":     os.Getpid(),
		"path":    req.Path,
		"body":    string(req.Body),
		"version": os.Getenv("FN_VERSION"),
	}
	if req.Query.Get("env") == "1" {
		answer["env"] = os.Environ()
	}
	return functions.JSON(http.StatusOK, answer)
}

// PredictStream streams, when asked for a stream: ?chunks=N sends "chunk
// i" N times; after the first it waits until the file ?gate= names exists
// (when one is named), or, with ?hold=1, until its context ends, which it
// logs ("stream cancelled") so a test can see the cancellation reach it.
func (e echo) PredictStream(ctx context.Context, req *functions.Request, s functions.Stream) error {
	n, err := strconv.Atoi(req.Query.Get("chunks"))
	if err != nil {
		resp, err := e.Predict(ctx, req)
		if err != nil {
			return err
		}
		s.Header().Set("Content-Type", resp.ContentType())
		return s.Send(resp.Body)
	}
	s.Header().Set("Content-Type", "text/plain")
	for i := range n {
		if err := s.Send(fmt.Appendf(nil, "chunk %d", i)); err != nil {
			return err
		}
		if i > 0 {
			continue
		}
		if req.Query.Get("hold") == "1" {
			<-ctx.Done()
			fmt.Fprintln(os.Stderr, "stream cancelled")
			return ctx.Err()
		}
		for gate := req.Query.Get("gate"); gate != ""; time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(gate); err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	return nil
}

func main() {
	if os.Getenv("FN_SICKENS") != "" {
		sickens()
		return
	}
	runtime.Main(echo{functions.PredictorFunc(predict)})
}

// sickens serves without the runtime, to show the host the one thing the
// runtime does after a runaway prediction that matters to it: /healthz
// answers 503 from the moment a request asks ?sick=1 while the process stays
// up, finishing what it has (?sleep=), until SIGTERM; then it exits 75.
func sickens() {
	var sick atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if sick.Load() {
			http.Error(w, `{"error":"must be replaced"}`, http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sick") == "1" {
			sick.Store(true)
		}
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			fmt.Fprintln(os.Stderr, "sleeping", d)
			time.Sleep(d)
		}
		fmt.Fprintf(w, `{"pid":%d}`, os.Getpid())
	})
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), Handler: mux}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		srv.Shutdown(context.Background())
		os.Exit(75) // runtime.ExitReplace
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	select {}
}
