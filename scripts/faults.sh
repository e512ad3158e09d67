#!/usr/bin/env bash
# The reliability suites in one summary: SIGKILL at every step boundary of
# deploy and rollback (then `slipway recover`), signals and external faults,
# and generated bad input. Runs against the real engine, registry and compose.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --quiet --features failpoints --test it -- --nocapture faults:: signals:: bad_input:: >"$log" 2>&1 || status=$?
kills=$(grep -c '^FAULT kill ' "$log" || true)
lost=$(grep '^FAULT kill ' "$log" | sed -n 's/.*images lost \([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}')
faults=$(grep '^FAULT ' "$log" | grep -vc '^FAULT kill ' || true)
bad=$(sed -n 's/^BADINPUT generated inputs judged: \([0-9]*\)/\1/p' "$log")
passed=$(grep -E '^test result:' "$log" | tail -1)
echo "slipway reliability summary"
echo "  kill points tried and recovered: $kills (deploy and rollback; SIGKILL, then slipway recover)"
grep '^FAULT kill ' "$log" | sed 's/^FAULT kill /    /'
echo "  signals and external faults survived: $faults"
grep '^FAULT ' "$log" | grep -v '^FAULT kill ' | sed 's/^FAULT /    /'
echo "  bad inputs tried: ${bad:-0} generated configs, tags and names (+ an enormous config), no panic, every rejection exit 2"
echo "  images lost: $lost"
echo "  $passed"
if [ "$status" -ne 0 ]; then
    grep -E 'panicked|FAILED' "$log" | head -20
    exit "$status"
fi
