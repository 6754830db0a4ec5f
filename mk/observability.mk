# Observability: traces, metrics, PII policy, audit trail (docs/observability.md).

.PHONY: test-observability
test-observability: ## The observability tests: OTLP span tree of a hire, PII redaction, audit and status queries, metrics.
	go test $(TEST_FLAGS) ./pkg/pii/... ./pkg/telemetry/... ./pkg/logging/... ./pkg/auditlog/... ./pkg/stream/...
	go test $(TEST_FLAGS) -run 'TestHireTraceReachesGraphThroughOTLP|TestAuditShowsEveryWriteWithItsCause' ./deploy/local/stack/
	go test $(TEST_FLAGS) -run 'TestAudit|TestStatusShowsServicesAndStreams' ./services/org-model/cmd/orgsyncctl/
