# Nucleus build, install, test and benchmark entry points.
PREFIX    ?= /usr/local
GO        ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
# BIN is the binary the tests and benchmarks use; helpers working in
# parallel point it elsewhere so they don't replace one another's binary.
BIN       ?= bin/nucleus
# LIFECYCLE is the paired start-up benchmark tool (bench/lifecycle) that
# `make bench` builds and runs.
LIFECYCLE ?= bin/lifecycle
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
# staticcheck from the Go module proxy, pinned (built once, then cached).
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build install deps test unit integration bench demo fmt vet lint clean fuzz flake fault-exhaustive

all: build

build: $(BIN)

# Every Go, C and header file outside the tests and tools: the pre-exec step
# is C (preexec/*.c), and a change there must rebuild the binary too.
SOURCES   := $(shell find . -path ./integration -prune -o -path ./bench -prune -o -path ./build -prune -o -path ./.git -prune -o \( -name '*.go' -o -name '*.c' -o -name '*.h' \) -print 2>/dev/null)

$(BIN): $(SOURCES) go.mod go.sum Makefile
	CGO_ENABLED=1 $(GO) build $(GOFLAGS_B) -ldflags '$(LDFLAGS)' -o $@ ./cmd/nucleus

# deps installs the Debian packages the build and the tests need.
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	./scripts/setup-nix.sh

install: deps build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/nucleus

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
	PATH="$(dir $(GO)):$$PATH" NUCLEUS_BIN=$(abspath $(BIN)) $(GO) test -tags "$(TAGS)" -ldflags '$(TESTLDFLAGS)' -count=1 -p 1 -timeout 15m ./...
	$(MAKE) --no-print-directory fuzz

# fuzz runs each policy-file parser's fuzz target briefly (seed corpus in
# policy/testdata/fuzz, seccomp/testdata/fuzz), and those of config.json
# loading, container ids and the command line; FUZZTIME=1m for a longer hunt.
FUZZTIME ?= 5s
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

# fault-exhaustive runs the kill -9 tests (integration/fault_kill_test.go)
# over every syscall they know and every n a run reaches: an hour or more;
# make test sweeps one syscall per command, n stepping geometrically.
fault-exhaustive: build
	PATH="$(dir $(GO)):$$PATH" NUCLEUS_BIN=$(abspath $(BIN)) NUCLEUS_FAULT_EXHAUSTIVE=1 $(GO) test -tags "$(TAGS)" -count=1 -p 1 -timeout 12h -run '^TestFaultKill9$$' -v ./integration/

unit:
	$(GO) test -tags "$(TAGS)" -ldflags '$(TESTLDFLAGS)' -count=1 $$($(GO) list ./... | grep -v /integration)

integration: build
	PATH="$(dir $(GO)):$$PATH" NUCLEUS_BIN=$(abspath $(BIN)) $(GO) test -tags "$(TAGS)" -count=1 -p 1 -timeout 15m -v ./integration/...

# bench compares nucleus with runc, crun and runsc (scripts/bench.sh and
# scripts/bench.d/*.sh, each comparison one run of $(LIFECYCLE));
# BENCH_PAIRS=N sets the pairs per comparison (default 30).
bench: deps build $(LIFECYCLE)
	BIN=$(BIN) LIFECYCLE=$(LIFECYCLE) ./scripts/bench.sh

$(LIFECYCLE): $(shell find bench -name '*.go' 2>/dev/null) go.mod go.sum
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./bench/lifecycle

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet -tags "$(TAGS)" ./...

lint: vet
	$(STATICCHECK) -tags "$(TAGS)" ./...

clean:
	rm -rf bin
