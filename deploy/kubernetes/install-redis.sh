#!/usr/bin/env bash
# install-redis.sh — installs a development Redis (redis/redis-dev.yaml: one pod, no persistence)
# next to orgsync, unless one is already there. For production, point the orgsync chart's
# redis.existingSecret at the URL of a managed Redis instead (docs/kubernetes.md).
#
# Environment: NAMESPACE (default orgsync), KUBECTL (default kubectl).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
namespace=${NAMESPACE:-orgsync}
kubectl=${KUBECTL:-kubectl}

if "$kubectl" get service redis-master --namespace "$namespace" >/dev/null 2>&1; then
	echo "Redis service redis-master already exists in namespace $namespace; leaving it as it is"
	exit 0
fi
"$kubectl" create namespace "$namespace" --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
"$kubectl" apply --namespace "$namespace" -f "$here/redis/redis-dev.yaml"
"$kubectl" rollout status deployment/redis-master --namespace "$namespace" --timeout 5m
echo "Redis is at redis://redis-master.$namespace.svc:6379/0 (orgsync chart: redis.url)"
