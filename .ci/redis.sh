#!/usr/bin/env bash
# Makes sure redis-server (Redis >= 7) is on this machine: the Redis tier's tests start a real one on a free loopback
# port (never a mock), and a real 3-master Redis Cluster (which needs 7's --cluster-port and CLUSTER ADDSLOTSRANGE). Called by ./kvslab test (and so by .ci/run). Installs Debian's redis-server package when it is
# missing (as root, or through sudo without a password); fails loudly when it cannot, because a skipped Redis test
# would pass a build that never exercised the tier. Set KVSLAB_REDIS_SERVER to use another binary.
set -euo pipefail
fail() { echo "kvslab: $*" >&2; exit 1; }
want="${KVSLAB_REDIS_SERVER:-redis-server}"
if ! command -v "$want" >/dev/null 2>&1; then
  [[ -n "${KVSLAB_REDIS_SERVER:-}" ]] && fail "KVSLAB_REDIS_SERVER=$want is not an executable"
  command -v apt-get >/dev/null 2>&1 \
    || fail "redis-server is not installed and this is not a Debian/Ubuntu system (no apt-get): install Redis >= 7 and rerun"
  sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    sudo -n true 2>/dev/null || fail "redis-server is not installed and installing it needs root: run 'sudo apt-get install -y redis-server' and rerun"
    sudo=(sudo -n)
  fi
  echo "kvslab: redis-server is missing; installing Debian's redis-server package (the Redis tier's tests need it)" >&2
  log="$(mktemp)"
  if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends redis-server >"$log" 2>&1; then
    # a fresh machine may have no package lists yet
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update >>"$log" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends redis-server >>"$log" 2>&1 \
      || { tail -20 "$log" >&2; fail "could not install redis-server (apt-get output above)"; }
  fi
  rm -f "$log"
  command -v redis-server >/dev/null 2>&1 || fail "apt-get installed redis-server but it is not on PATH"
fi
version="$("$want" --version | sed -n 's/.* v=\([0-9]*\)\..*/\1/p')"
[[ "$version" =~ ^[0-9]+$ ]] && (( version >= 7 )) || fail "$want is Redis '${version:-unknown}'; the tests need Redis >= 7 (the cluster tests)"
