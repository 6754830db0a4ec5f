#!/usr/bin/env bash
# Checks proto/ for breaking changes against the last released contracts and fails on any break
# that is not recorded as intended. Usage: proto-breaking.sh BUF AGAINST INTENDED
#   AGAINST   a buf input: proto/breaking/released.binpb (the default), or e.g. '.git#tag=v1.2.0'
#   INTENDED  the breaks this release makes on purpose, one per line as buf prints them without
#             the line and column ("path: message"); '#' starts a comment.
set -euo pipefail
buf=$1 against=$2 intended=$3

status=0
found=$("$buf" breaking --against "$against" --error-format=text) || status=$?
# buf exits 100 when it found breaking changes, anything else non-zero when it could not check.
if [ "$status" -ne 0 ] && [ "$status" -ne 100 ]; then
  echo "buf breaking could not compare against $against (exit $status)" >&2
  exit "$status"
fi

strip() { sed -E 's/^([^:]+):[0-9]+:[0-9]+:/\1: /' | sort -u; }
got=$(printf '%s\n' "$found" | grep -v '^$' | strip || true)
want=$(grep -v -e '^#' -e '^[[:space:]]*$' "$intended" | sort -u || true)

unexpected=$(comm -23 <(printf '%s\n' "$got") <(printf '%s\n' "$want") | grep -v '^$' || true)
stale=$(comm -13 <(printf '%s\n' "$got") <(printf '%s\n' "$want") | grep -v '^$' || true)
if [ -n "$unexpected" ]; then
  echo "breaking changes to proto/ that $intended does not record as intended:" >&2
  printf '  %s\n' "$unexpected" >&2
fi
if [ -n "$stale" ]; then
  echo "$intended records breaks that proto/ no longer makes (remove them):" >&2
  printf '  %s\n' "$stale" >&2
fi
[ -z "$unexpected" ] && [ -z "$stale" ] || exit 1
echo "proto/: no breaking changes against $against beyond the $(printf '%s' "$want" | grep -c . || true) recorded in $intended"
