package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestConfigPath checks where Main looks for the function's Config:
// $CORTEX_CONFIG first, then cortex.json beside the executable (symbolic
// links resolved), then in $LAMBDA_TASK_ROOT.
func TestConfigPath(t *testing.T) {
	root := t.TempDir()
	mkdir := func(name string) string {
		d := filepath.Join(root, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	write := func(path string) string {
		if err := os.WriteFile(path, []byte(`{}`), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	withConfig, bare, task := mkdir("app"), mkdir("bare"), mkdir("task")
	appExe := write(filepath.Join(withConfig, "fn"))
	appConfig := write(filepath.Join(withConfig, ConfigName))
	bareExe := write(filepath.Join(bare, "fn"))
	taskConfig := write(filepath.Join(task, ConfigName))
	link := filepath.Join(mkdir("bin"), "fn")
	if err := os.Symlink(appExe, link); err != nil {
		t.Fatal(err)
	}
	dirNamedConfig := mkdir("odd")
	oddExe := write(filepath.Join(dirNamedConfig, "fn"))
	mkdir(filepath.Join("odd", ConfigName))

	tests := []struct {
		name string
		env  map[string]string
		exe  string // "" when the executable cannot be found
		want string
	}{
		{name: "the variable wins", env: map[string]string{ConfigEnv: "/etc/fn.json", LambdaTaskRootEnv: task}, exe: appExe, want: "/etc/fn.json"},
		{name: "beside the executable", exe: appExe, want: appConfig},
		{name: "beside the executable before the task root", env: map[string]string{LambdaTaskRootEnv: task}, exe: appExe, want: appConfig},
		{name: "beside a symbolic link's target", exe: link, want: appConfig},
		{name: "the task root", env: map[string]string{LambdaTaskRootEnv: task}, exe: bareExe, want: taskConfig},
		{name: "a directory is not a config", env: map[string]string{LambdaTaskRootEnv: task}, exe: oddExe, want: taskConfig},
		{name: "no executable", env: map[string]string{LambdaTaskRootEnv: task}, want: taskConfig},
		{name: "none", exe: bareExe, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exe := func() (string, error) {
				if tt.exe == "" {
					return "", errors.New("no executable")
				}
				return tt.exe, nil
			}
			if got := configPath(func(k string) string { return tt.env[k] }, exe); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
