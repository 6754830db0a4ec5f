# hr-ingest: its parsers' fuzz targets (the canonical one is in the top-level Makefile) and its
# benchmark (accepted events per second to a JetStream ack, next to the raw publish rate).
FUZZ_TARGETS += services/hr-ingest:./internal/scim:FuzzParse
FUZZ_TARGETS += services/hr-ingest:./internal/bamboohr:FuzzParse
FUZZ_TARGETS += services/hr-ingest:./internal/bamboohr:FuzzParseEvent
FUZZ_TARGETS += services/hr-ingest:./internal/hibob:FuzzParseWebhook
FUZZ_TARGETS += services/hr-ingest:./internal/snapshot:FuzzParse
FUZZ_TARGETS += services/hr-ingest:./internal/policy:FuzzParse
BENCH_PACKAGES += ./services/hr-ingest/...
FUZZ_TARGETS += services/hr-ingest:./internal/poll:FuzzParsePage
