//go:build unix

package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"

	"github.com/cortexfn/cortex/internal/bench/irisfloor"
	ort "github.com/yalue/onnxruntime_go"
)

// The servers this program runs as its own children (see childMain): the
// floor and the zero-work server. Running them as separate processes, on
// their own ports, makes them pay what the function binary pays: a process
// of their own, loopback TCP, the scheduler's share of two cores.

// inferPath is where every server under test takes OIP predictions; the
// shared front of cortex serve adds /iris in front of it.
const inferPath = "/v2/models/iris/infer"

// body is the setosa example (samples/iris/examples/setosa.json).
const body = `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}`

// childMain serves the floor or the zero-work server when the program is
// started with -serve-floor or -serve-zero as its first argument, and
// reports whether it was. These flags are the program's own business, so
// they are parsed apart from the ones a user gives.
func childMain(args []string) (bool, error) {
	if len(args) == 0 || (args[0] != "-serve-floor" && args[0] != "-serve-zero") {
		return false, nil
	}
	fs := flag.NewFlagSet("floor child", flag.ContinueOnError)
	floorAddr := fs.String("serve-floor", "", "serve the floor on this address")
	zeroAddr := fs.String("serve-zero", "", "serve the zero-work server on this address")
	model := fs.String("model", "", "the floor's ONNX model")
	lib := fs.String("lib", "", "the floor's libonnxruntime.so.1")
	answer := fs.String("answer", "", "the file the zero-work server answers")
	if err := fs.Parse(args); err != nil {
		return true, err
	}
	if *floorAddr != "" {
		return true, serveFloor(*floorAddr, *model, *lib)
	}
	return true, serveZero(*zeroAddr, *answer)
}

// serveFloor is the floor: a bare net/http server calling ONNX Runtime
// directly, written the way one would without Cortex (decode the OIP
// request, run the session, encode the OIP response; no limits, metrics or
// request ids). It listens only once the model is loaded, so its cold
// start is exec to its first answer like the function's.
func serveFloor(addr, model, lib string) error {
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(); err != nil {
		return fmt.Errorf("loading ONNX Runtime %s: %w", lib, err)
	}
	session, err := irisfloor.NewSession(model)
	if err != nil {
		return fmt.Errorf("loading %s: %w", model, err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+inferPath, irisfloor.Handler(session))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return http.Serve(ln, mux)
}

// serveZero is the zero-work server of the batching row: bare net/http
// that reads each request body and answers the iris function's own answer,
// fixed. No JSON, no runtime, no model: what the HTTP work alone allows.
func serveZero(addr, answerFile string) error {
	answer, err := os.ReadFile(answerFile)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+inferPath, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return http.Serve(ln, mux)
}

// checkSetosa checks an answer to body: the setosa class with the sample's
// probabilities (samples/iris/examples/setosa.json), as the coldstart and
// overload benches check it.
func checkSetosa(answer []byte) error {
	var r struct {
		Outputs []struct {
			Name string    `json:"name"`
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(answer, &r); err != nil {
		return fmt.Errorf("decoding %.200q: %w", answer, err)
	}
	want := map[string][]float64{"label": {0}, "probabilities": {0.9783901, 0.021609956, 5.5259186e-08}}
	for _, o := range r.Outputs {
		w, ok := want[o.Name]
		if !ok {
			continue
		}
		delete(want, o.Name)
		if len(o.Data) != len(w) {
			return fmt.Errorf("%s is %v, want %v", o.Name, o.Data, w)
		}
		for i := range w {
			if math.Abs(o.Data[i]-w[i]) > 1e-5 {
				return fmt.Errorf("%s is %v, want %v", o.Name, o.Data, w)
			}
		}
	}
	if len(want) > 0 {
		return errors.New("missing outputs in " + string(answer))
	}
	return nil
}
