// Package lambdazip writes a function's AWS Lambda deployment package: a
// zip for the provided.al2023 runtime, and an AWS SAM template that
// declares the function and its function URL.
//
// The zip has bootstrap (the function binary, mode 0755) at its root, the
// runtime config (cortex.json, which the template points $CORTEX_CONFIG
// at), the model and WASM stages at their paths relative to the function
// directory, and for ONNX functions lib/libonnxruntime.so.1 with the C++
// runtime beside it (lib/libstdc++.so.6, lib/libgcc_s.so.1: ONNX Runtime's
// RUNPATH is $ORIGIN, and the function finds ONNX Runtime in lib/ beside
// its executable). provided.al2023 has glibc 2.34, libgcc_s and libstdc++
// (GCC 11's), per its published package list (provided-al2023-packages.txt,
// with its sources); CheckLibraries checks every library bootstrap and
// ONNX Runtime need, and every symbol version, against the zip and that
// list, the way Lambda's loader finds them (the runtime's /lib64 first).
//
// The zip is reproducible byte for byte: entries sorted, one fixed
// modification time (MS-DOS time, so nothing before 1980), no extra
// fields, Deflate at a fixed level. Write refuses, with a *TooLargeError
// that suggests the container-image route, a package over Lambda's 250 MB
// unzipped or 50 MB zipped quotas.
//
// It owns the zip format, Lambda's quotas and glibc check, and the SAM
// template (from packager/spec). Its input is files (packager/artifact); it
// must not import packager, packager/build, packager/oci or the AWS SDK:
// deploying the zip is packager/deploy/lambda's.
package lambdazip
