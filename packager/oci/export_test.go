package oci

// Uncompressed is the layer compression Build offers no caller
// (Lambda refuses uncompressed layers), for the benchmark to measure.
const Uncompressed = uncompressed
