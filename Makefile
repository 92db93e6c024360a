# Airlock's build. `make test` is what CI runs; `make demo` is the quick start.
SHELL := /bin/bash
export PATH := $(CURDIR)/bin:$(PATH)
GO ?= go
PKGS := ./... github.com/airlockhq/airlock/gen/go/...
TOOLS := github.com/bufbuild/buf/cmd/buf \
	google.golang.org/protobuf/cmd/protoc-gen-go \
	google.golang.org/grpc/cmd/protoc-gen-go-grpc \
	honnef.co/go/tools/cmd/staticcheck \
	github.com/fullstorydev/grpcurl/cmd/grpcurl

.PHONY: all build tools generate check-generated lint vet staticcheck buf-lint buf-breaking test test-go check-deploy bench demo clean

all: build

# airlock-sandbox is the executor's sandbox helper; airlock finds it next to
# itself. It starts twice per sandbox, so it is built static (no cgo: faster).
build:
	$(GO) build -o bin/airlock ./cmd/airlock
	CGO_ENABLED=0 $(GO) build -o bin/airlock-sandbox ./cmd/airlock-sandbox

# Build tools are Go modules pinned in tools/go.mod, built into ./bin.
tools: bin/.tools-stamp
bin/.tools-stamp: tools/go.mod tools/go.sum
	cd tools && GOWORK=off $(GO) build -o ../bin/ $(TOOLS)
	touch $@

generate: tools
	rm -rf gen/go/airlock
	buf generate

# Regenerating must change nothing: generated code is committed.
check-generated: tools
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	buf generate -o $$tmp && \
	if ! diff -r $$tmp/gen/go/airlock gen/go/airlock; then \
		echo "generated code is stale: run 'make generate' and commit gen/go" >&2; exit 1; fi

vet:
	$(GO) vet $(PKGS)

staticcheck: tools
	staticcheck $(PKGS)

buf-lint: tools
	buf lint

# Compare the contracts with main's; skipped only where there is no main yet.
buf-breaking: tools
	@if git rev-parse --verify -q main >/dev/null; then \
		buf breaking --against '.git#branch=main'; \
	else echo "buf breaking: no main branch to compare with"; fi

lint: vet staticcheck buf-lint buf-breaking check-generated
	@test -z "$$(gofmt -l cmd pkg services gen)" || { gofmt -l cmd pkg services gen; echo "gofmt needed" >&2; exit 1; }

test-go:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# The deployment checks live in their own module (deploy/check), so the
# Kubernetes, kustomize and compose-spec libraries stay out of the root module:
# render deploy/k8s strictly, load docker-compose.yaml, parse deploy/Dockerfile.
DEPLOY_PKGS := github.com/airlockhq/airlock/deploy/check/...
check-deploy: tools
	@test -z "$$(gofmt -l deploy)" || { gofmt -l deploy; echo "gofmt needed" >&2; exit 1; }
	$(GO) vet $(DEPLOY_PKGS)
	staticcheck $(DEPLOY_PKGS)
	$(GO) test -race -count=1 $(DEPLOY_PKGS)

test: lint test-go check-deploy

# Benchmarks: Go benchmarks in every package, then each load program under
# bench/<name>/ (each prints its own figures).
BENCHTIME ?= 2s
bench: build
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem ./...
	@for d in bench/*/; do [ -f "$$d/main.go" ] || continue; echo "== $$d"; $(GO) run ./$$d || exit 1; done

demo: build tools
	./scripts/demo.sh

clean:
	rm -rf bin .airlock
