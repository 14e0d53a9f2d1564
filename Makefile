# Nucleus build, install, test and benchmark entry points.
PREFIX    ?= /usr/local
GO        ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
# BIN is the binary the tests and benchmarks use; helpers working in
# parallel point it elsewhere so they don't replace one another's binary.
BIN       ?= bin/nucleus
# LIFECYCLE is the paired start-up benchmark tool (bench/lifecycle) that
# `make bench` builds and runs.
LIFECYCLE ?= bin/lifecycle
# PHASES breaks a cold run into phases from kernel tracepoints (bench/phases).
PHASES    ?= bin/phases
# THROUGHPUT measures containers/min with parallel workers (bench/throughput).
THROUGHPUT ?= bin/throughput
COMMIT    := $(shell git rev-parse --short HEAD 2>/dev/null)
VERSION   := $(shell cat VERSION 2>/dev/null || echo 0.1.0-dev)
TAGS      := seccomp netgo osusergo urfave_cli_no_docs
# A static, non-PIE binary: it starts ~1 ms faster per process than a
# static-pie one (no self-relocation of Go's pointer-heavy data), and every
# container start runs it two or three times (CLI, init, Landlock step).
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.gitCommit=$(COMMIT) -extldflags -static
GOFLAGS_B := -trimpath -tags "$(TAGS)"
# Test binaries are static too: a test that starts a container in a mode
# runs its own binary inside it as the pre-exec step (as the sandbox
# package's examples do), where no dynamic loader is.
TESTLDFLAGS := -extldflags -static
DEB_PKGS  := $(shell grep -v '^\#' scripts/debian-packages.txt)
# crictl for the Kubernetes (CRI) client test, from the Go module proxy,
# pinned; `make deps` builds it once into build/ (never committed).
CRICTL_VERSION ?= v1.34.0
CRICTL    ?= $(abspath build/tools/crictl-$(CRICTL_VERSION)/crictl)
# staticcheck from the Go module proxy, pinned (built once, then cached).
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build install deps test unit integration bench bench-list demo fmt vet lint clean fuzz flake conformance fault-exhaustive

all: build

# OTLP is the OpenTelemetry exporter nucleus runs for --otlp-endpoint, a
# program of its own next to nucleus so that nucleus never links (and
# never initializes) the OpenTelemetry SDK.
OTLP      := $(dir $(BIN))nucleus-otlp

build: $(BIN) $(OTLP)

# Every Go, C and header file outside the tests and tools: the pre-exec step
# is C (preexec/*.c), and a change there must rebuild the binary too.
SOURCES   := $(shell find . -path ./integration -prune -o -path ./bench -prune -o -path ./build -prune -o -path ./.git -prune -o \( -name '*.go' -o -name '*.c' -o -name '*.h' \) -print 2>/dev/null)

$(BIN): $(SOURCES) go.mod go.sum Makefile
	CGO_ENABLED=1 $(GO) build $(GOFLAGS_B) -ldflags '$(LDFLAGS)' -o $@ ./cmd/nucleus

$(OTLP): $(SOURCES) go.mod go.sum Makefile
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $@ ./cmd/nucleus-otlp

# deps installs the Debian packages the build and the tests need.
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && ./scripts/apt-install.sh $$missing; \
	fi
	./scripts/setup-nix.sh
	$(MAKE) --no-print-directory $(CRICTL)

$(CRICTL):
	GOFLAGS=-mod=mod GOBIN=$(dir $(CRICTL)) $(GO) install sigs.k8s.io/cri-tools/cmd/crictl@$(CRICTL_VERSION)

install: deps build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/nucleus
	install -D -m 0755 $(OTLP) $(DESTDIR)$(PREFIX)/bin/nucleus-otlp

# flake makes the repository's flake.nix usable offline: it copies Debian's
# static busybox (the only builder, never committed) into nix/bb/ and a
# standalone copy of the flake (outside git's view) into $(FLAKE_DIR), for
# `nucleus bundle path:$(FLAKE_DIR)#agent-example -o DIR`.
FLAKE_DIR ?= $(abspath build/flake)
flake:
	./scripts/nix-flake.sh $(FLAKE_DIR)

# demo runs a busybox container with the installed nucleus.
demo:
	./scripts/demo.sh

# test needs the packages `make deps` installs (make install runs it; CI's
# .ci/run does too); it installs nothing itself.
test: build
	$(GO) vet -tags "$(TAGS)" ./...
	$(STATICCHECK) -tags "$(TAGS)" ./...
	PATH="$(dir $(GO)):$$PATH" NUCLEUS_BIN=$(abspath $(BIN)) CRICTL=$(CRICTL) $(GO) test -tags "$(TAGS)" -ldflags '$(TESTLDFLAGS)' -count=1 -p 1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz

# fuzz runs each policy-file parser's fuzz target briefly (seed corpus in
# policy/testdata/fuzz, seccomp/testdata/fuzz), and those of config.json
# loading, container ids and the command line; FUZZTIME=1m for a longer hunt.
# A count, not a duration: a -fuzztime duration that runs out while a worker
# holds an input fails the run with "context deadline exceeded".
FUZZTIME ?= 20000x
fuzz:
	for f in FuzzParseWorkspace FuzzParseCapsPolicy FuzzParseLandlockRules; do \
		$(GO) test -tags "$(TAGS)" -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./policy || exit 1; \
	done
	for f in FuzzParseProfile FuzzParseTrace; do \
		$(GO) test -tags "$(TAGS)" -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./seccomp || exit 1; \
	done
	for f in FuzzLoad FuzzValidateID; do \
		$(GO) test -tags "$(TAGS)" -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./spec || exit 1; \
	done
	$(GO) test -tags "$(TAGS)" -run '^$$' -fuzz '^FuzzCommandLine$$' -fuzztime $(FUZZTIME) ./cmd/nucleus
	$(GO) test -tags "$(TAGS)" -run '^$$' -fuzz '^FuzzContainerID$$' -fuzztime $(FUZZTIME) ./runtime

# fault-exhaustive runs the kill -9 tests (integration/fault_kill_test.go,
# fault_supervisor_test.go: the CLI, init, pre-exec step, supervisor, exec
# client, pool fill and release) over every syscall they know and every n
# a run reaches: an hour or more; make test sweeps a few syscalls per
# command, n stepping geometrically.
fault-exhaustive: build
	PATH="$(dir $(GO)):$$PATH" NUCLEUS_BIN=$(abspath $(BIN)) NUCLEUS_FAULT_EXHAUSTIVE=1 $(GO) test -tags "$(TAGS)" -count=1 -p 1 -timeout 12h -run '^TestFaultKill9' -v ./integration/

unit:
	$(GO) test -tags "$(TAGS)" -ldflags '$(TESTLDFLAGS)' -count=1 $$($(GO) list ./... | grep -v /integration)

# conformance runs the OCI runtime-tools validation programs and runc's own
# bats integration tests against $(BIN) (scripts/conformance.sh). Nothing is
# fetched: pass checkouts, e.g.
#   make conformance RUNTIME_TOOLS=/src/runtime-tools RUNC_SRC=/src/runc
# CONFORMANCE=runtime-tools or bats runs one suite; RUNTIMES="nucleus runc
# crun" runs the same suites on runc and crun for comparison.
CONFORMANCE ?= all
conformance: build
	RUNTIME_TOOLS="$(RUNTIME_TOOLS)" RUNC_SRC="$(RUNC_SRC)" NUCLEUS=$(abspath $(BIN)) ./scripts/conformance.sh $(CONFORMANCE)

integration: build
	PATH="$(dir $(GO)):$$PATH" NUCLEUS_BIN=$(abspath $(BIN)) CRICTL=$(CRICTL) $(GO) test -tags "$(TAGS)" -count=1 -p 1 -timeout 15m -v ./integration/...

# bench compares nucleus with runc, crun and runsc (scripts/bench.sh and
# scripts/bench.d/*.sh, each comparison one run of $(LIFECYCLE));
# BENCH_PAIRS=N sets the pairs per comparison (default 30).
bench: deps build $(LIFECYCLE) $(PHASES) $(THROUGHPUT)
	BIN=$(BIN) LIFECYCLE=$(LIFECYCLE) PHASES=$(abspath $(PHASES)) THROUGHPUT=$(abspath $(THROUGHPUT)) ./scripts/bench.sh

# bench-list is bench.d/list.sh alone: `list` over 300 created containers,
# nucleus against runc (COUNT, ROUNDS to change the size).
bench-list: build
	NUCLEUS=$(abspath $(BIN)) bash scripts/bench.d/list.sh

$(LIFECYCLE): $(shell find bench -name '*.go' 2>/dev/null) go.mod go.sum
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./bench/lifecycle

$(PHASES): $(shell find bench -name '*.go' 2>/dev/null) go.mod go.sum
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./bench/phases

$(THROUGHPUT): $(shell find bench -name '*.go' 2>/dev/null) go.mod go.sum
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./bench/throughput

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet -tags "$(TAGS)" ./...

lint: vet
	$(STATICCHECK) -tags "$(TAGS)" ./...

clean:
	rm -rf bin
