// Command fn is the function the host's tests run: it echoes, and on request
// sleeps (?sleep=100ms), crashes mid-request (?crash=1 exits with status 3),
// answers and then exits with status 75 to be replaced, as the runtime does
// after a runaway prediction (?replace=1), or fails at Init ($FN_FAIL_INIT
// holds the error). $FN_INIT_DELAY delays Init, like a model that takes time
// to load. Every answer carries $FN_VERSION, so a test can tell one build of
// a function from the next.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
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
	return functions.JSON(http.StatusOK, map[string]any{
		"pid":     os.Getpid(),
		"path":    req.Path,
		"body":    string(req.Body),
		"version": os.Getenv("FN_VERSION"),
	})
}

func main() {
	runtime.Main(echo{functions.PredictorFunc(predict)})
}
