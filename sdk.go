// Package cortex carries the source of the function SDK and runtime, so that
// the cortex CLI can build a function in any directory, on any machine,
// without this repository's checkout and without a published module version.
//
// A function binary is a generated main that imports the SDK (functions),
// the carriers (adapters) and the runtime. The CLI embeds exactly those
// packages' sources together with sdk.mod and sdk.sum, a go.mod and go.sum
// trimmed to what they import, and writes them once per version into the
// cortex cache; packager/build then builds every function against that copy.
// So a function builds with the SDK of the CLI that builds it, the same on
// every machine, and a no-code function needs nothing from the network once
// the modules in sdk.mod are in the Go module cache. ARCHITECTURE.md says why
// this design was chosen over the alternatives.
//
// This package is for the CLI; a function imports functions and runtime, not
// this package.
package cortex

import (
	"embed"
	"io/fs"
	"strings"
)

// Version is the version of this Cortex: of the CLI, and of the SDK and
// runtime it builds functions with. A function's go.mod that requires
// github.com/cortexfn/cortex must require this version.
const Version = "v0.3.0"

// The SDK's packages, one pattern each. TestSDKFiles fails when a package a
// function binary needs is missing here.
//
//go:embed sdk.mod sdk.sum
//go:embed functions/*.go functions/oip/*.go functions/wasmguest/*.go functions/webhook/*.go
//go:embed adapters/*.go adapters/http/*.go adapters/http/page/* adapters/knative/*.go adapters/lambda/*.go
//go:embed runtime/*.go runtime/activation/*.go runtime/modelfetch/*.go runtime/modelfetch/oci/*.go runtime/modelfetch/s3/*.go runtime/onnx/*.go runtime/wasm/*.go runtime/wasm/ABI.md runtime/webhookguard/*.go
var sdk embed.FS

// SDK returns the embedded SDK module: go.mod and go.sum at its root (from
// sdk.mod and sdk.sum) and the packages' sources, without their tests.
func SDK() fs.FS { return sdkFS{} }

// sdkFS hides test files and names sdk.mod and sdk.sum as the module's
// go.mod and go.sum. (A file named go.mod cannot be embedded from a
// subdirectory: it would make that directory a module of its own.)
type sdkFS struct{}

func (sdkFS) Open(name string) (fs.File, error) {
	switch name {
	case "go.mod":
		name = "sdk.mod"
	case "go.sum":
		name = "sdk.sum"
	case "sdk.mod", "sdk.sum":
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if strings.HasSuffix(name, "_test.go") {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return sdk.Open(name)
}

func (s sdkFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := sdk.ReadDir(name)
	if err != nil {
		return nil, err
	}
	out := entries[:0:0]
	for _, e := range entries {
		switch n := e.Name(); {
		case strings.HasSuffix(n, "_test.go"):
		case name == "." && (n == "sdk.mod" || n == "sdk.sum"):
			info, err := e.Info()
			if err != nil {
				return nil, err
			}
			out = append(out, renamed{e, info, map[string]string{"sdk.mod": "go.mod", "sdk.sum": "go.sum"}[n]})
		default:
			out = append(out, e)
		}
	}
	return out, nil
}

// renamed is a directory entry shown under another name.
type renamed struct {
	fs.DirEntry
	info fs.FileInfo
	name string
}

func (r renamed) Name() string               { return r.name }
func (r renamed) Info() (fs.FileInfo, error) { return renamedInfo{r.info, r.name}, nil }

type renamedInfo struct {
	fs.FileInfo
	name string
}

func (r renamedInfo) Name() string { return r.name }
