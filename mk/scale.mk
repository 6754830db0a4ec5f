# Scale: the synthetic organisation (deploy/scale/synth), the end-to-end benchmark report and the
# chaos run (deploy/scale/cmd). Neither the report nor the chaos run is part of `make test`; the
# generator's and the harness's own tests are (deploy/scale is in MODULES).

# The chaos run: the pipeline as separate processes, kill -9 and restarts from a seed, 20% Graph
# faults and replication lag, two entra-writer replicas sharing a budget in redis-server, two
# ad-writer replicas against a Samba AD DC that is restarted too (it waits for the DC's lock file
# while ad-writer's tests hold it; -ad=false in CHAOS_ARGS leaves AD out).
CHAOS_ARGS ?= -changes 5000 -seed 1
# The report: end-to-end latency at offered loads, then the go benchmarks of `make bench`.
BENCH_REPORT_ARGS ?= -rates 100,200,400,800,1600 -go-bench -out $(BIN)/bench-report.md

.PHONY: chaos
chaos: deps ## Chaos run: kill -9/restart every service, NATS and the Samba DC while 5,000 HR changes flow; exits non-zero on any difference in Entra or AD (CHAOS_ARGS).
	go build -o $(BIN)/ ./services/hr-ingest ./services/org-model ./services/entra-writer ./services/ad-writer ./deploy/scale/cmd/orgsync-chaos
	$(BIN)/orgsync-chaos -bin $(BIN) $(CHAOS_ARGS)

.PHONY: bench-report
bench-report: deps ## One report: end-to-end latency (webhook 202 → Graph write) and the benchmarks' figures, into .bin/bench-report.md (BENCH_REPORT_ARGS).
	go build -o $(BIN)/ ./services/hr-ingest ./services/org-model ./services/entra-writer ./deploy/scale/cmd/orgsync-bench
	$(BIN)/orgsync-bench -bin $(BIN) $(BENCH_REPORT_ARGS)
