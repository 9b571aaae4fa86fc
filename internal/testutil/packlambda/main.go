// Command packlambda packages a function directory as `cortex package`
// does (packager.Package), its Lambda zip alone, extracts the zip as
// Lambda does into TASK_DIR, and prints, as JSON, where the zip is and the
// name of the runtime configuration in it.
//
//	go run ./internal/testutil/packlambda FUNCTION_DIR OUT_DIR TASK_DIR
//
// Tests that need a packaged function but do not test the packager run it
// rather than package in process: their test binaries then do not link the
// packager (its Kubernetes and registry dependencies slowed every fuzz
// target of adapters/lambda), and deflating the zip and inflating it again
// run here, built without -race, instead of race-instrumented (most of
// internal/parity's time). The packager's own tests race its concurrency.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/cortexfn/cortex/internal/testutil"
	"github.com/cortexfn/cortex/packager"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: packlambda FUNCTION_DIR OUT_DIR TASK_DIR")
		os.Exit(2)
	}
	dir, out, task := os.Args[1], os.Args[2], os.Args[3]
	r, err := packager.Package(context.Background(), dir, packager.Options{Out: out, Outputs: []packager.Output{packager.OutputLambda}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "packaging %s: %v\n", dir, err)
		os.Exit(1)
	}
	if r.Lambda == nil {
		fmt.Fprintf(os.Stderr, "packaging %s made no Lambda zip: %v\n", dir, r.Warnings)
		os.Exit(1)
	}
	if err := testutil.UnzipDir(r.Lambda.Zip, task); err != nil {
		fmt.Fprintf(os.Stderr, "extracting %s: %v\n", r.Lambda.Zip, err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]string{"zip": r.Lambda.Zip, "config": packager.ConfigName})
}
