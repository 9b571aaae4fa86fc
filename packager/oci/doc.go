// Package oci assembles a function's OCI image without a Docker daemon,
// with go-containerregistry, the way ko does.
//
// Build puts a function's files on a base in layers ordered from least to
// most often changed. Each layer is a deterministic tar: entries sorted
// (parents first), every time set to one instant (SourceDateEpoch:
// $SOURCE_DATE_EPOCH, else the Unix epoch), owners numeric and 0 (the
// non-root user's home directory excepted), no user or group names,
// regular files and directories only, fixed modes. So the same inputs give
// the same diffIDs, and with the same klauspost/compress version and
// settings the same compressed digests and manifest digest.
//
// No layer is held in memory, and a model's bytes are read at most once.
// A layer's files are first looked up in the stat cache by what the file
// system says of them (absolute path, size, modification time, and on
// Linux device, inode and change time, with the layer's settings): an
// unchanged model of several GB is not read at all when only code
// changed, and its digest does not move. Otherwise a model layer (Fast)
// is read once: the tar is hashed (its diffID), each file's bytes are
// hashed, the tar is compressed at the fastest level (weights barely
// compress) and the result hashed (its digest) in one pass, each hash on
// a goroutine of its own a few MB behind the pass. The files' SHA-256 are
// kept in the stat cache under each file's own key (FileDigest), which is
// how the SBOM names an unchanged model without reading it; other layers are
// hashed first and compressed only when the cache has no blob for that
// diffID and compression. Compression is single-threaded so its output
// does not depend on the machine. A cached blob is checked by size when
// it is used and by digest where it goes: registries verify what they
// receive, and a push asks for each blob's digest (HEAD) before uploading
// it, so an unchanged model layer costs one request.
//
// ModelImage builds an image of models alone, under /models (KServe's
// ModelCar layout), from the same layer cache.
//
// Compression is gzip by default (klauspost/compress; every runtime reads
// it, and Lambda container images require it) or zstd
// (application/vnd.oci.image.layer.v1.tar+zstd; containerd >= 1.5, Docker
// >= 23). Build makes a single-platform OCI image manifest; Index puts
// several (one per architecture) in an OCI image index with platform
// fields, which WriteIndexLayout, WriteTarballs and PushIndex write. A
// Docker-typed base is rewritten as OCI around the same layer bytes.
//
// The base is the built-in minimal non-root base or any image: pulled
// from a registry with the user's credentials (authn.DefaultKeychain) or
// read from an OCI layout ("oci:DIR[:TAG]"). The built-in base has
// /etc/passwd and /etc/group naming uid/gid 65532 (distroless's nonroot),
// the CA bundle, /tmp (1777) and /home/nonroot; for a cgo (ONNX) function
// it also carries the dynamic loader, glibc's libraries, libstdc++ and
// libgcc_s, copied from the build machine at the paths they have there
// (so that machine's loader, which the binary was linked against, finds
// them), with their Debian package versions recorded in the image history
// and in BaseInfo, and the files no package owns (the generated CA bundle;
// every file on a machine without dpkg) recorded there by their sha256.
// That makes the base depend on the build machine: build release images on
// a fixed builder image, or name a base. For another architecture than the
// build machine's (arm64 on amd64) the same files come from Debian's cross
// packages of that architecture (libc6-arm64-cross, libstdc++6-arm64-cross,
// libgcc-s1-arm64-cross), found through dpkg and placed where that
// architecture's loader looks (/lib/ld-linux-aarch64.so.1,
// /lib/aarch64-linux-gnu), their versions recorded the same way.
//
// WriteLayout, WriteTarball and Push are the sinks: an OCI image layout
// (skopeo, umoci, crane), a `docker load` tarball, and a registry, where
// blobs the registry already has are not uploaded again.
//
// It owns the image format: layers, the base, the config, and the three
// sinks. Its input is files (packager/artifact); it must not import
// packager, packager/build, packager/spec or packager/deploy, so it never
// decides what a function ships, only how an image holds it.
package oci
