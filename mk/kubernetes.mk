# Kubernetes: the Helm chart's offline tests and the container images (see docs/kubernetes.md).

CHARTTEST_DIR := deploy/kubernetes/charttest
# The services `make images` builds: every one under services/ (TestEveryServiceIsBuilt checks).
IMAGE_SERVICES ?= hr-ingest org-model entra-writer ad-writer graph-emulator console
IMAGE_REPOSITORY ?= ghcr.io/orgsync
IMAGE_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE_GOARCH ?= $(shell go env GOARCH)
# BASE_IMAGE empty keeps the Dockerfile's default (distroless/static:nonroot); `scratch` builds
# without pulling anything, for a machine that cannot reach a registry.
BASE_IMAGE ?=
# docker when its daemon answers, else buildah (daemonless; the Dockerfile runs no commands, so
# chroot isolation is enough and works inside containers).
CONTAINER_ENGINE ?= $(shell docker info >/dev/null 2>&1 && echo docker || (command -v buildah >/dev/null 2>&1 && echo buildah))

TEST_EXTRA += chart-test

.PHONY: chart-test
chart-test: $(BIN)/helm ## Lint, render and strictly decode the Helm chart with every example values file; schema, Tiltfile and image-build tests (offline).
	cd $(CHARTTEST_DIR) && GOWORK=off HELM=$(BIN)/helm go test -count=1 -timeout 10m ./...

# helm is pinned by the chart-test module's tool directive and built from the Go module proxy:
# no binary download.
$(BIN)/helm: $(CHARTTEST_DIR)/go.mod $(CHARTTEST_DIR)/go.sum
	@mkdir -p $(BIN)
	cd $(CHARTTEST_DIR) && GOWORK=off go build -o $(BIN)/helm helm.sh/helm/v3/cmd/helm

.PHONY: images
images: ## Build a static binary and an image per service with docker or buildah (IMAGE_SERVICES, IMAGE_REPOSITORY, IMAGE_VERSION, BASE_IMAGE).
	@if [ -z "$(CONTAINER_ENGINE)" ]; then echo "make images needs a container engine: install docker or buildah (apt-get install buildah)"; exit 1; fi
	@for service in $(IMAGE_SERVICES); do \
		echo "image $(IMAGE_REPOSITORY)/$$service:$(IMAGE_VERSION)"; \
		VERSION=$(IMAGE_VERSION) GOARCH=$(IMAGE_GOARCH) deploy/docker/build.sh $$service $(BIN)/linux-$(IMAGE_GOARCH) || exit 1; \
		if [ "$(CONTAINER_ENGINE)" = buildah ]; then build="buildah bud --isolation chroot"; else build="$(CONTAINER_ENGINE) build"; fi; \
		$$build --platform linux/$(IMAGE_GOARCH) -f deploy/docker/Dockerfile \
			--build-arg SERVICE=$$service --build-arg VERSION=$(IMAGE_VERSION) \
			$(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) \
			-t $(IMAGE_REPOSITORY)/$$service:$(IMAGE_VERSION) $(BIN)/linux-$(IMAGE_GOARCH) || exit 1; \
	done
