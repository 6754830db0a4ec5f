# org-model: benchmarks, fuzz targets and the operator CLI.
BENCH_PACKAGES += ./services/org-model/...
FUZZ_TARGETS += services/org-model:./internal/policy:FuzzLoad

.PHONY: bench-org-model-large
bench-org-model-large: ## org-model's benchmarks at full size (100,000 workers, 5,000 units), for docs/BENCHMARKS.md.
	go test -run '^$$' -bench . -benchmem -timeout 60m ./services/org-model/internal/model -args -org-model.large

.PHONY: orgsyncctl
orgsyncctl: ## Build orgsyncctl, org-model's CLI, into .bin/.
	go build -o $(BIN)/orgsyncctl ./services/org-model/cmd/orgsyncctl
