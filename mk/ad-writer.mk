# ad-writer: its tests and benchmark run against a real Samba AD DC (scripts/samba-dc.sh), which
# listens on the fixed ports 389/636/3268; the harness serialises users of it with a lock file.
BENCH_PACKAGES += ./services/ad-writer/service/

.PHONY: samba-dc
samba-dc: deps ## Start a throw-away Samba AD DC on loopback in $(SAMBA_DIR) (default /tmp/orgsync-samba-dc); stop it with samba-dc-stop.
	./scripts/samba-dc.sh start $(or $(SAMBA_DIR),/tmp/orgsync-samba-dc)
	@cat $(or $(SAMBA_DIR),/tmp/orgsync-samba-dc)/env

.PHONY: samba-dc-stop
samba-dc-stop: ## Stop and remove the Samba AD DC started by samba-dc.
	./scripts/samba-dc.sh teardown $(or $(SAMBA_DIR),/tmp/orgsync-samba-dc)
