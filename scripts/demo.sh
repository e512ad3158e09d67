#!/usr/bin/env bash
# The demo: installs what it needs (scripts/setup.sh), builds slipway, and runs
# `slipway demo` on the local Docker engine. Extra arguments go to `slipway demo`
# (--keep leaves the stack running; --clean removes it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo run --quiet --features demo -- demo "$@"
