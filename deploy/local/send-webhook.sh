#!/usr/bin/env bash
# Signs a canonical HR event with the local stack's dev secret (Standard Webhooks: HMAC-SHA256 over
# "<id>.<timestamp>.<body>") and posts it to hr-ingest. Usage: send-webhook.sh FILE [WEBHOOK_ID]
set -euo pipefail
file=${1:?usage: send-webhook.sh FILE [WEBHOOK_ID]}
url=${ORGSYNC_WEBHOOK_URL:-http://127.0.0.1:18081/v1/sources/local/events}
secret=${ORGSYNC_WEBHOOK_SECRET:-whsec_b3Jnc3luYy1sb2NhbC1kZXYtc2VjcmV0}
id=${2:-msg_$(date +%s%N)}
ts=$(date +%s)
key_hex=$(printf '%s' "${secret#whsec_}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
signature=$( { printf '%s.%s.' "$id" "$ts"; cat "$file"; } | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key_hex" -binary | base64)
curl -sS -X POST "$url" \
  -H 'Content-Type: application/json' \
  -H "webhook-id: $id" -H "webhook-timestamp: $ts" -H "webhook-signature: v1,$signature" \
  --data-binary "@$file"
echo
