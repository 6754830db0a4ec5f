#!/usr/bin/env bash
# Installs what building and testing orgsync needs beyond Go, from Debian's packages, only where
# missing. Safe to run repeatedly.
set -euo pipefail

need=()
command -v make >/dev/null || need+=(make)
command -v git >/dev/null || need+=(git)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
# Tests start their own redis-server processes (pkg/redistest); they only need the binary.
command -v redis-server >/dev/null || need+=(redis-server)
# ad-writer's tests run a Samba AD domain controller (scripts/samba-dc.sh).
{ { command -v samba || ls /usr/sbin/samba; } && command -v samba-tool; } >/dev/null 2>&1 || need+=(samba)
# The console's browser tests drive Debian's headless chromium (deploy/local/stack/console_test.go).
[ -x /usr/bin/chromium ] || need+=(chromium)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi

command -v go >/dev/null || { echo "Go 1.26 or newer is required: https://go.dev/dl/" >&2; exit 1; }
