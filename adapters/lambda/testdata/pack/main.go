// Command pack packages a function directory as `cortex package` does
// (packager.Package) and prints, as JSON, where the Lambda zip is and the
// name of the runtime configuration in it. TestPackagedZipFindsItsConfig
// runs it rather than call the packager itself, so that the carrier's test
// binary does not link the packager (and its Kubernetes and registry
// dependencies), which would slow every fuzz target of the package.
//
//	pack FUNCTION_DIR OUT_DIR
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/cortexfn/cortex/packager"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: pack FUNCTION_DIR OUT_DIR")
		os.Exit(2)
	}
	r, err := packager.Package(context.Background(), os.Args[1], packager.Options{Out: os.Args[2]})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pack:", err)
		os.Exit(1)
	}
	if r.Lambda == nil {
		fmt.Fprintln(os.Stderr, "pack: no Lambda zip:", r.Warnings)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]string{"zip": r.Lambda.Zip, "config": packager.ConfigName})
}
