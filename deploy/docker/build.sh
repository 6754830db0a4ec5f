#!/usr/bin/env bash
# build.sh SERVICE OUT_DIR — builds one orgsync service as the images ship it: a static Linux
# binary (CGO off, so it runs on distroless/static or scratch), without local paths (-trimpath),
# stripped, with main.version stamped from VERSION. `make images`, the Tiltfile and the chart tests
# all build through this script, so the flags live in one place.
#
# Environment: VERSION (default: git describe, else dev), GOARCH (default: the host's; set it to
# the cluster's architecture when they differ).
set -euo pipefail

service=${1:?usage: build.sh SERVICE OUT_DIR}
out_dir=${2:?usage: build.sh SERVICE OUT_DIR}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
version=${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}

if [[ ! -f "$root/services/$service/main.go" ]]; then
	echo "build.sh: no service named $service under services/" >&2
	exit 2
fi
mkdir -p "$out_dir"
cd "$root"
# The services build within the workspace (go.work), even when the caller runs with GOWORK=off.
GOWORK="$root/go.work" CGO_ENABLED=0 GOOS=linux GOARCH="${GOARCH:-$(go env GOARCH)}" \
	go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out_dir/$service" "./services/$service"
