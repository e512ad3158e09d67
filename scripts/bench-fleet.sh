#!/usr/bin/env bash
# Deploy wall time of one stack spread over 1, 2 and 3 real test hosts
# (scripts/hosts.sh; max_parallel_hosts = 0, no canary) and the ratio to one
# host. Prints the BENCH lines; needs root, Docker and openssh-server
# (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
cargo test --features failpoints --test it -- --ignored --exact \
    across_hosts::fleet::fleet_bench_one_two_three_hosts --nocapture 2>&1 | grep '^BENCH'
