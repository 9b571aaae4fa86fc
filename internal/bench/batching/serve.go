package main

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
)

// serve runs p as a function (the runtime behind its HTTP handler) on a
// loopback port and returns its base URL, the runtime and a function that
// stops it. Without wrap it is served as a packaged function serves
// (Runtime.Serve); wrap puts a handler of the bench's in front of the
// runtime's (the trace's timestamps).
func serve(p functions.Predictor, cfg runtime.Config, wrap func(http.Handler) http.Handler) (string, *runtime.Runtime, func()) {
	rt, err := runtime.New(p, cfg, runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if wrap == nil {
		go func() {
			defer close(done)
			if err := rt.Serve(ctx, ln); err != nil {
				log.Fatal(err)
			}
		}()
		for !rt.Ready() {
			time.Sleep(10 * time.Millisecond)
		}
	} else {
		if err := rt.Start(ctx); err != nil {
			log.Fatal(err)
		}
		srv := &http.Server{Handler: wrap(rt.Handler())}
		go func() {
			defer close(done)
			_ = srv.Serve(ln)
		}()
		go func() {
			<-ctx.Done()
			_ = srv.Shutdown(context.Background())
			_ = rt.Shutdown(context.Background())
		}()
	}
	return "http://" + ln.Addr().String(), rt, func() { cancel(); <-done }
}
