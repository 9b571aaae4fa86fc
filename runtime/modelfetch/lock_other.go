//go:build !unix

package modelfetch

import "os"

// Without flock (Windows, where functions do not run; cortex serve may),
// concurrent fetches of one entry are not serialised: each fetches into
// its own staging directory and the rename of the second fails harmlessly.

func tryLock(*os.File) (bool, error) { return true, nil }

func unlockFile(*os.File) {}
