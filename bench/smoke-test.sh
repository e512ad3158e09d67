#!/usr/bin/env bash
# The team's smoke-test script, as scripts/smoke-test.sh <url> was run by the
# seed's pipeline: health probes and the core API through the proxy.
# Usage: smoke-test.sh API_URL (WEB_URL and WORKER_URL from the environment).
set -u
API="$1"
check() { # NAME URL: the answer must say "status":"ok"
    curl -sf --max-time 5 "$2" | grep -q '"status":"ok"' || { echo "smoke: $1 failed ($2)" >&2; exit 1; }
}
check "api health" "$API/health"
check "core API" "$API/smoke"
check "web health" "$WEB_URL/health"
check "worker health" "$WORKER_URL/health"
