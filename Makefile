# orgsync — the entry point for building, testing and running everything.
# `make run` starts the whole pipeline locally; `make test` runs every module's tests.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Every Go module of the workspace (go.work), and the packages under them.
MODULES := pkg proto services/hr-ingest services/org-model services/entra-writer services/ad-writer services/graph-emulator services/console deploy/local deploy/scale
PACKAGES := $(addprefix ./,$(addsuffix /...,$(MODULES)))
BIN := $(CURDIR)/.bin
TOOLS := $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc
# Two cores: two packages build and test at a time.
TEST_FLAGS ?= -race -p 2 -timeout 20m
# Each area adds to these from its own fragment in mk/ (so areas never edit the same lines):
#   BENCH_PACKAGES += ./services/x/...        benchmarks `make bench` runs
#   FUZZ_TARGETS   += services/x:./internal/y:FuzzZ   module:package:target for `make fuzz`
#   TEST_EXTRA     += chart-test              further targets `make test` runs
BENCH_PACKAGES :=
FUZZ_TARGETS := services/hr-ingest:./internal/canonical:FuzzParse services/graph-emulator:./emulator:FuzzParseFilter
TEST_EXTRA :=
include $(wildcard mk/*.mk)

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: run
run: ## Start the whole pipeline locally (embedded JetStream, Graph emulator, the services; a Samba AD DC and ad-writer when Samba is installed) with a sample company.
	go build -o $(BIN)/orgsync-local ./deploy/local
	exec $(BIN)/orgsync-local $(RUN_ARGS)

.PHONY: test
test: deps ## Run every module's tests (with the race detector), then TEST_EXTRA.
	go test $(TEST_FLAGS) $(PACKAGES)
	@for target in $(TEST_EXTRA); do $(MAKE) --no-print-directory $$target; done

.PHONY: bench
bench: bench-report ## One command, one report: end-to-end latency, ingest vs raw JetStream, initial loads (Graph, Samba), org-model at 100k workers (.bin/bench-report.md).

.PHONY: bench-go
bench-go: ## Only the Go benchmarks (BENCH_PACKAGES), at their default sizes; see docs/BENCHMARKS.md.
	@if [ -z "$(strip $(BENCH_PACKAGES))" ]; then echo "no benchmarks yet"; \
	else set -x; go test -run '^$$' -bench . -benchmem -timeout 60m $(BENCH_PACKAGES); fi

.PHONY: deps
deps: ## Install what the tests need beyond Go (Debian packages, only where missing).
	@./scripts/install-deps.sh

.PHONY: build
build: ## Build every service binary into .bin/.
	go build -o $(BIN)/ ./services/hr-ingest ./services/org-model ./services/entra-writer ./services/ad-writer ./services/graph-emulator ./services/console

.PHONY: lint
lint: $(BIN)/buf $(BIN)/staticcheck ## gofmt, go vet, staticcheck, buf lint.
	@unformatted=$$(gofmt -l $(MODULES) tools); if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	go vet $(PACKAGES)
	$(BIN)/staticcheck $(PACKAGES)
	$(BIN)/buf lint
	@# msgraph-sdk-go costs minutes and gigabytes to compile: only the Graph adapter may import it.
	@offenders=$$(grep -rl --include='*.go' '"github.com/microsoftgraph/' services pkg deploy proto | grep -v '^services/entra-writer/internal/graph/' || true); \
		if [ -n "$$offenders" ]; then echo "only services/entra-writer/internal/graph may import msgraph-sdk-go:"; echo "$$offenders"; exit 1; fi

.PHONY: generate
generate: $(TOOLS) ## Regenerate the Go code from proto/ (offline, pinned tools).
	PATH="$(BIN):$$PATH" $(BIN)/buf generate

.PHONY: generate-check
generate-check: generate ## Fail when the committed generated code is stale.
	@if ! git diff --quiet -- proto || [ -n "$$(git ls-files --others --exclude-standard -- proto)" ]; then \
		echo "generated code in proto/ is stale: run 'make generate' and commit the result"; \
		git status --short -- proto; git diff --stat -- proto; exit 1; fi

.PHONY: proto-breaking
proto-breaking: $(BIN)/buf ## Fail on a breaking change to proto/ against the last release (AGAINST) that proto/breaking/intended.txt does not record.
	./scripts/proto-breaking.sh $(BIN)/buf '$(or $(AGAINST),proto/breaking/released.binpb)' proto/breaking/intended.txt

.PHONY: fuzz
fuzz: ## Run each fuzz target (FUZZ_TARGETS) for FUZZTIME (default 20s).
	@for entry in $(FUZZ_TARGETS); do \
		IFS=: read -r module package target <<<"$$entry"; \
		echo "fuzz $$module $$package $$target"; \
		(cd $$module && go test $$package -run '^$$' -fuzz "^$$target\$$" -fuzztime $(or $(FUZZTIME),20s)) || exit 1; \
	done

.PHONY: tidy
tidy: ## go mod tidy in every module.
	for m in $(MODULES) tools; do (cd $$m && GOWORK=off go mod tidy); done

.PHONY: tools
tools: $(TOOLS) $(BIN)/staticcheck ## Build the pinned tools (tools/go.mod) into .bin/.

$(BIN)/%: tools/go.mod tools/go.sum
	@mkdir -p $(BIN)
	cd tools && GOWORK=off go build -o $(BIN)/ $$(GOWORK=off go list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' tool | grep '/$*$$')

.PHONY: clean
clean: ## Remove built binaries and tools.
	rm -rf $(BIN)
