// Package sbom writes the software bill of materials of each output that
// ships a function, the image and the Lambda zip, as CycloneDX 1.6 JSON
// (github.com/CycloneDX/cyclonedx-go), and attaches the image's to the
// image as an OCI referrer.
//
// An SBOM lists, each with its version and, for files, its SHA-256:
//
//	the output       metadata.component: the image (repository, manifest
//	                 digest, pkg:oci purl) or the zip (file name, digest)
//	the binary       the function executable, with its Go build settings
//	                 (cdx:gomod:build:env:*), depending on
//	Go modules       its main module, every module it was linked from, and
//	                 the Go standard library, from the binary's own build
//	                 info (debug/buildinfo), as pkg:golang purls
//	ONNX Runtime     libonnxruntime.so.1, at the onnxruntime-node npm
//	                 version cortex fetches it from (pkg:npm purl)
//	Debian packages  of the files copied from the build machine (the
//	                 built-in base's glibc, loader, libstdc++ and libgcc_s;
//	                 the zip's libstdc++ and libgcc_s), as dpkg names them
//	                 (pkg:deb purls, with the machine's distribution)
//	other files      copied files no package accounts for (the CA bundle,
//	                 every file on a machine without dpkg), by SHA-256
//	models, stages   the models (machine-learning-model) and wasm stages
//	base image       a base named with --base, by its reference: its own
//	                 contents are not listed; scan the base for those
//
// The document is reproducible: its time is the artifact's (the image's
// created time, $SOURCE_DATE_EPOCH), its serial number is derived from
// the output's digest, and it names no path of the build machine but the
// copied files'.
//
// The image's SBOM becomes an OCI 1.1 referrer (Referrer): an artifact
// manifest of artifactType application/vnd.cyclonedx+json with the empty
// config, the SBOM as its one blob, and the image as its subject. It is
// added to the OCI layout beside the image (AppendLayout) and pushed by
// digest beside it (Push), where registries that serve the referrers API
// list it for the image (`oras discover`, `crane` and go-containerregistry's
// remote.Referrers read it) and go-containerregistry keeps the
// sha256-DIGEST fallback tag for those that do not.
//
// Read hashes every file the artifact ships; ReadKnown takes the SHA-256
// of the files a caller already knows (packager/oci's FileDigest: what a
// model layer recorded as it read the model), so a model is read once per
// change, for its layer, and not again for the SBOM.
//
// It owns the SBOM's content and format and its OCI form. It reads files
// (packager/artifact) and package records (packager/dpkg); it must not
// import packager, packager/build, packager/oci, packager/sign or
// packager/deploy: it describes what those decided to ship.
package sbom
