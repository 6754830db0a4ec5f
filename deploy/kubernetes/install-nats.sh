#!/usr/bin/env bash
# install-nats.sh [dev|production] — installs the official NATS Helm chart with JetStream as its
# own release ("nats"), unless the release already exists. orgsync does not depend on it as a
# chart dependency: it only needs NATS_URL, and creates its own streams at start.
#
#   deploy/kubernetes/install-nats.sh production      # 3 servers, JetStream on PVCs
#
# Environment: NAMESPACE (default orgsync), NATS_CHART_VERSION (default ^1.2.0: chart v1, whose
# values these files use), HELM (default helm).
set -euo pipefail

profile=${1:-dev}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
values="$here/nats/values-$profile.yaml"
namespace=${NAMESPACE:-orgsync}
helm=${HELM:-helm}
[[ -f "$values" ]] || { echo "install-nats.sh: no profile $profile (dev or production)" >&2; exit 2; }

if "$helm" status nats --namespace "$namespace" >/dev/null 2>&1; then
	echo "NATS release nats already installed in namespace $namespace; leaving it as it is"
	exit 0
fi
"$helm" repo add nats https://nats-io.github.io/k8s/helm/charts/ --force-update >/dev/null
"$helm" upgrade --install nats nats/nats --namespace "$namespace" --create-namespace \
	--version "${NATS_CHART_VERSION:-^1.2.0}" --values "$values" --wait --timeout 10m
echo "NATS is at nats://nats.$namespace.svc:4222 (orgsync chart: nats.url)"
