//go:build !(linux && (amd64 || arm64))

package modelfetch

import "os"

func startWriteback(*os.File, int64, int64) {}
