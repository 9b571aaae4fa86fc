package host

import "strings"

// inherited reports whether a variable of the host's own environment
// passes to the function processes. Only these do: the rest of the
// environment of the person running `cortex serve` (cloud credentials such
// as AWS_SECRET_ACCESS_KEY, tokens, the signing password) is none of a
// function's business, and a function is code its author may have taken
// from anyone. What a function needs besides is given to it by name, in
// Function.Env: its $CORTEX_CONFIG, the ONNX Runtime library, the values
// of its wasm.secret_env and of its bearer token (auth.token_env), each
// read from the host's environment by the name its cortex.yaml gives
// (spec.SecretValues), so no name of the user's choosing is on this list.
//
// The list, and why each is on it:
//
//   - PATH: a predictor that runs a program finds it as in a shell.
//   - HOME, TMPDIR: where the user's files and temporary files are
//     (os.UserHomeDir, os.TempDir); the runtime looks for the ONNX
//     Runtime library under $HOME/.cache/cortex.
//   - LANG, LANGUAGE, LC_*, TZ: the locale and time zone, for C libraries
//     (ONNX Runtime) and time.Local.
//   - CORTEX_LOG_LEVEL, CORTEX_CACHE, CORTEX_ONNXRUNTIME_LIB,
//     XDG_CACHE_HOME, CORTEX_MODEL_CACHE: what the runtime reads (its log
//     level; where `cortex setup` put the ONNX Runtime library; the model
//     cache every function shares, which spawn sets when it is unset).
//     Named one by one, not CORTEX_*: a prefix would pass whatever a later
//     tool names so.
//   - LD_LIBRARY_PATH, CUDA_VISIBLE_DEVICES: how ONNX Runtime's CUDA
//     provider finds the CUDA libraries and which GPUs it may use.
//   - GOMAXPROCS, GOMEMLIMIT, GOGC, GODEBUG, GOTRACEBACK: the Go runtime's
//     own settings, for tuning a function on this machine.
//   - SSL_CERT_FILE, SSL_CERT_DIR: where Go's crypto/x509 finds the
//     machine's CA certificates when they are not in the usual place.
//   - HTTP_PROXY, HTTPS_PROXY, NO_PROXY (and the lower-case forms Go also
//     reads): the network path a Go predictor's own HTTP calls take.
//
// A Go predictor's own credentials (an API key) have no way in: only a
// stage's secrets do (wasm.secret_env). Passing them is a known gap.
//
// TestInheritedCoversTheRuntime holds the list to the CORTEX_ variables
// the runtime's sources read.
func inherited(name string) bool {
	switch name {
	case "PATH", "HOME", "TMPDIR",
		"LANG", "LANGUAGE", "TZ",
		"CORTEX_LOG_LEVEL", "CORTEX_CACHE", "CORTEX_ONNXRUNTIME_LIB", "XDG_CACHE_HOME",
		"CORTEX_MODEL_CACHE",
		"LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES",
		"GOMAXPROCS", "GOMEMLIMIT", "GOGC", "GODEBUG", "GOTRACEBACK",
		"SSL_CERT_FILE", "SSL_CERT_DIR",
		"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy":
		return true
	}
	return strings.HasPrefix(name, "LC_")
}
