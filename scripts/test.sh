#!/usr/bin/env bash
# Every test: installs what the tests need (scripts/setup.sh), then runs
# formatting and lint checks, the unit tests and the integration tests against
# the real Docker engine, a real registry on 127.0.0.1 and real `docker compose`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --features failpoints --quiet -- -D warnings
cargo test --all-targets --features failpoints "$@"
