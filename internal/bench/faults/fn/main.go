// Command fn is the function internal/bench/faults serves through the host:
// a Go predictor that does a little work for each request (it hashes the
// request's id rounds times with SHA-256 and sums the squares of its values),
// so that a prediction holds a core for a while (0.2ms for the bench's 2000
// rounds on the project's machine) and its answer can be checked.
//
// Asked with ?runaway=1, it runs away: it logs "running away (pid N)" on
// stderr and then hashes forever, never looking at its context, as a
// predictor stuck in a loop or a cgo call does. The runtime answers its
// caller 504 at limits.timeout and, past limits.overrun_grace, has the
// process replaced (runtime.ExitReplace); the log line lets the bench count
// the processes that had a runaway.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"

	"github.com/cortexfn/cortex/functions"
	"github.com/cortexfn/cortex/runtime"
)

// input is the request body.
type input struct {
	ID     string    `json:"id"`
	Values []float64 `json:"values"`
	Rounds int       `json:"rounds"`
}

// output is the answer: what the bench checks.
type output struct {
	ID     string  `json:"id"`
	Sum    float64 `json:"sum"`
	Digest string  `json:"digest"`
	PID    int     `json:"pid"`
}

// maxRounds bounds the work a request may ask for.
const maxRounds = 1_000_000

func predict(ctx context.Context, in input) (output, error) {
	if req, ok := functions.RequestFromContext(ctx); ok && req.Query.Get("runaway") == "1" {
		runAway()
	}
	if in.ID == "" {
		return output{}, functions.Errorf(http.StatusBadRequest, "id: want a non-empty string")
	}
	if in.Rounds < 1 || in.Rounds > maxRounds {
		return output{}, functions.Errorf(http.StatusBadRequest, "rounds: want 1 to %d, got %d", maxRounds, in.Rounds)
	}
	d := sha256.Sum256([]byte(in.ID))
	for range in.Rounds - 1 {
		d = sha256.Sum256(d[:])
	}
	var sum float64
	for _, v := range in.Values {
		sum += v * v
	}
	return output{ID: in.ID, Sum: sum, Digest: hex.EncodeToString(d[:]), PID: os.Getpid()}, nil
}

// runAway never returns and never looks at a context: it keeps a core
// busy, as a stuck predictor does.
func runAway() {
	fmt.Fprintf(os.Stderr, "running away (pid %d)\n", os.Getpid())
	d := sha256.Sum256([]byte("runaway"))
	for {
		d = sha256.Sum256(d[:])
	}
}

func main() {
	runtime.Main(functions.Typed(predict))
}
