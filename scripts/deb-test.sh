#!/usr/bin/env bash
# The install path a team uses on hosts and CI runners without Rust: build the
# .deb (scripts/deb.sh), install it with dpkg, and check what it installed:
# `slipway --version` names this commit, `slipway check` passes on the
# example, `slipway demo` is left out (exit 2), the bash completion loads,
# the man page and schema are there.
# Removes the package afterwards unless it was installed before. Needs root.
# Idempotent; cargo-deb and the release build are cached.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'deb-test: %s\n' "$*" >&2; }
fail() { printf 'deb-test: FAILED: %s\n' "$*" >&2; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
    log "SKIPPED: dpkg -i needs root"
    exit 0
fi

deb="$(bash scripts/deb.sh)"
was_installed=0
dpkg-query -W -f='${Status}' slipway 2>/dev/null | grep -q "install ok installed" && was_installed=1
cleanup() {
    if [ "$was_installed" -eq 0 ]; then
        dpkg --purge slipway >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

log "dpkg -i $deb"
dpkg -i "$deb" >/dev/null
contents="$(dpkg -L slipway)"
for f in /usr/bin/slipway /usr/share/bash-completion/completions/slipway \
    /usr/share/zsh/vendor-completions/_slipway /usr/share/fish/vendor_completions.d/slipway.fish \
    /usr/share/man/man1/slipway.1.gz /usr/share/slipway/slipway.schema.json; do
    grep -qx "$f" <<<"$contents" || fail "the package does not install $f"
done

version="$(/usr/bin/slipway --version)"
commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
[ "$version" = "slipway $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1) (commit $commit)" ] \
    || fail "--version says '$version', expected commit $commit"
log "$version"

(cd examples/goodgo && /usr/bin/slipway check --env staging) >&2 || fail "slipway check on examples/goodgo"

# The package ships without the demo's fixture code (the `demo` feature):
# `slipway demo` says where the demo is, exit 2.
demo_status=0
demo_says="$(/usr/bin/slipway demo 2>&1)" || demo_status=$?
[ "$demo_status" -eq 2 ] && grep -q "scripts/demo.sh" <<<"$demo_says" \
    || fail "slipway demo in the package: exit $demo_status, said: $demo_says"

complete="$(bash -c 'source /usr/share/bash-completion/completions/slipway && complete -p slipway')"
grep -q -- "-F _slipway slipway" <<<"$complete" || fail "bash completion did not load: $complete"
zcat /usr/share/man/man1/slipway.1.gz | grep -q '^\.TH slipway 1' || fail "man page"
log "ok: installed, --version, check on examples/goodgo, no demo, bash completion, man page"
