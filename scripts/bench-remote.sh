#!/usr/bin/env bash
# Deploy wall time of one small stack on the local engine vs on a real test
# host over SSH (scripts/hosts.sh), and the SSH connections a remote deploy
# opens. Prints the BENCH lines; needs root, Docker and openssh-server
# (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --features failpoints --test it -- --ignored --exact \
    across_hosts::remote::remote_bench_local_vs_ssh --nocapture 2>&1 | grep '^BENCH'
