BENCH_PACKAGES += ./services/entra-writer/service/
