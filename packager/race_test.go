//go:build race

package packager_test

// raceEnabled: the race detector is on. The tests then package a small
// stand-in for ONNX Runtime (see pkg); the full-size images run without it.
const raceEnabled = true
