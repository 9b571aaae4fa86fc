package runtime

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Where Main finds the function's Config.
const (
	// ConfigEnv names the JSON file to read the Config from. When set it
	// wins over the file the packager ships.
	ConfigEnv = "CORTEX_CONFIG"
	// ConfigName is the file the packager ships the Config in, beside the
	// function binary: at the root of the Lambda zip (beside bootstrap)
	// and in the image's /app.
	ConfigName = "cortex.json"
	// LambdaTaskRootEnv is where Lambda unpacks the zip (/var/task).
	LambdaTaskRootEnv = "LAMBDA_TASK_ROOT"
)

// configFromEnv reads the Config Main serves with (see configPath); the
// defaults when there is none.
func configFromEnv() (*Config, error) {
	path := configPath(os.Getenv, os.Executable)
	if path == "" {
		return &Config{}, nil
	}
	return LoadConfig(path)
}

// configPath returns the Config file to read: $CORTEX_CONFIG; else
// cortex.json beside the executable, symbolic links resolved, which is
// where the packager puts it, so an unzipped Lambda function or an image's
// binary runs without being told where its files are, from any working
// directory; else cortex.json in $LAMBDA_TASK_ROOT. "" when there is none.
// A file that exists but cannot be read is returned, so that reading it
// reports why.
func configPath(getenv func(string) string, executable func() (string, error)) string {
	if p := getenv(ConfigEnv); p != "" {
		return p
	}
	var dirs []string
	if exe, err := executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		dirs = append(dirs, filepath.Dir(exe))
	}
	if root := getenv(LambdaTaskRootEnv); root != "" {
		dirs = append(dirs, root)
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, ConfigName)
		st, err := os.Stat(p)
		if err == nil && !st.IsDir() || err != nil && !errors.Is(err, fs.ErrNotExist) {
			return p
		}
	}
	return ""
}
