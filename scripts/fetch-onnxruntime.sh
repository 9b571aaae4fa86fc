#!/usr/bin/env bash
# fetch-onnxruntime.sh: put the ONNX Runtime shared library into the Cortex
# cache and print its path.
#
# The library comes from the npm package onnxruntime-node. The package is
# fetched with `npm pack` (which never runs install scripts) and only the one
# library file is extracted from the tarball.
#
# Usage: scripts/fetch-onnxruntime.sh [x64|arm64|x86_64|aarch64]
#   The architecture defaults to `uname -m`.
#
# Environment:
#   CORTEX_CACHE          cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/cortex)
#   ORT_VERSION           onnxruntime-node version (default 1.30.0)
#
# The x64 library lands at $CORTEX_CACHE/onnxruntime/$ORT_VERSION/libonnxruntime.so.1
# (the path runtime/onnx looks at); other architectures at
# $CORTEX_CACHE/onnxruntime/$ORT_VERSION/linux-$ARCH/libonnxruntime.so.1 unless
# the host is that architecture, in which case the unsuffixed path is used.
set -euo pipefail

version="${ORT_VERSION:-1.30.0}"
cache_root="${CORTEX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cortex}"

normalise_arch() {
	case "$1" in
	x86_64 | amd64 | x64) echo x64 ;;
	aarch64 | arm64) echo arm64 ;;
	*)
		echo "fetch-onnxruntime: unsupported architecture \"$1\" (want x64 or arm64)" >&2
		exit 2
		;;
	esac
}

host_arch="$(normalise_arch "$(uname -m)")"
arch="$(normalise_arch "${1:-$(uname -m)}")"

dest_dir="$cache_root/onnxruntime/$version"
if [[ "$arch" != "$host_arch" ]]; then
	dest_dir="$dest_dir/linux-$arch"
fi
dest="$dest_dir/libonnxruntime.so.1"

if [[ -s "$dest" ]]; then
	echo "$dest"
	exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
	echo "fetch-onnxruntime: npm is required (it only downloads the package; no install scripts run)" >&2
	exit 1
fi

mkdir -p "$dest_dir"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cortex-ort.XXXXXX")"
part=""
trap 'rm -rf "$tmp"; [[ -z "$part" ]] || rm -f "$part"' EXIT

# npm pack prints the tarball's file name as its last line of stdout.
tarball="$(cd "$tmp" && npm pack --silent --ignore-scripts "onnxruntime-node@$version" --pack-destination "$tmp" | tail -n 1)"
if [[ ! -f "$tmp/$tarball" ]]; then
	echo "fetch-onnxruntime: npm pack did not produce a tarball for onnxruntime-node@$version" >&2
	exit 1
fi

member="package/bin/napi-v6/linux/$arch/libonnxruntime.so.1"
if ! tar -tzf "$tmp/$tarball" "$member" >/dev/null 2>&1; then
	echo "fetch-onnxruntime: onnxruntime-node@$version has no $member" >&2
	exit 1
fi
tar -xzf "$tmp/$tarball" -C "$tmp" "$member"

# Write atomically: a concurrent reader sees either nothing or the whole file.
part="$(mktemp "$dest_dir/.libonnxruntime.so.1.XXXXXX")"
cp "$tmp/$member" "$part"
chmod 0644 "$part"
mv -f "$part" "$dest"

echo "$dest"
