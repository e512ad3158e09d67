#!/usr/bin/env bash
# The rollout benchmark: installs what it needs (scripts/setup.sh), then
# `cargo bench --bench rollout` (slipway against the seed's shell pipeline;
# a few minutes). Knobs: BENCH_RUNS, BENCH_BOOT, BENCH_BASELINE_POLL,
# BENCH_RATE, BENCH_VERBOSE (see README.md, "Benchmark").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo bench --bench rollout
