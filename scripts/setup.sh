#!/usr/bin/env bash
# Bring a Debian 12 machine to the point where slipway's tests can run:
#   1. a Docker daemon that answers `docker info`
#   2. Compose v2 as a docker CLI plugin (Debian 13's docker-compose .deb, fetched
#      without touching the machine's apt sources)
#   3. the `docker-registry` binary (Distribution 2.8), with the packaged service kept off
#   4. a statically linked /bin/busybox (busybox-static); sshd and iproute2 for
#      the test hosts of scripts/hosts.sh (the packaged ssh service never started)
#   5. the base image slipway-fixture/busybox:1, imported from a tar (no network)
#   6. real proxies as images, slipway-fixture/nginx:1 and slipway-fixture/caddy:1: Debian's
#      nginx and caddy binaries (apt-get download + dpkg -x, never installed as services)
#      with the libraries ldd names, on the busybox base
# Idempotent: every step is skipped when already done. Progress goes to stderr.
#
# Environment knobs (all optional):
#   SLIPWAY_DOCKER_DATA_ROOT  data root for a dockerd this script starts (default /var/lib/docker)
#   SLIPWAY_DOCKERD_LOG       log file for that dockerd (default /var/log/slipway-dockerd.log)
#   SLIPWAY_FIXTURE_IMAGE     base image name (default slipway-fixture/busybox:1)
set -euo pipefail

FIXTURE_IMAGE="${SLIPWAY_FIXTURE_IMAGE:-slipway-fixture/busybox:1}"
DOCKER_DATA_ROOT="${SLIPWAY_DOCKER_DATA_ROOT:-/var/lib/docker}"
DOCKERD_LOG="${SLIPWAY_DOCKERD_LOG:-/var/log/slipway-dockerd.log}"
PLUGIN_DIR=/usr/libexec/docker/cli-plugins
export DEBIAN_FRONTEND=noninteractive

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
need_root() { is_root || die "$1 (needs root; rerun as root or install it by hand)"; }

# One scratch dir per run, created on first use, removed on exit.
# (Call it directly, not in $(...): a subshell would lose SCRATCH and fire the trap.)
SCRATCH=""
ensure_scratch() {
    if [ -z "$SCRATCH" ]; then
        SCRATCH="$(mktemp -d /tmp/slipway-setup.XXXXXX)"
        trap 'rm -rf "$SCRATCH"' EXIT
    fi
}

# quietly CMD...: run CMD with its output kept in a scratch log, shown only on failure.
quietly() {
    ensure_scratch
    local out="$SCRATCH/cmd.log" rc=0
    "$@" >"$out" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || return 0
    tail -n 30 "$out" >&2 || true
    return "$rc"
}

APT_UPDATED=0
apt_update() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        quietly apt-get update || die "apt-get update failed"
        APT_UPDATED=1
    fi
}
# apt_install PKG...: refresh the index first if a package has no candidate,
# and retry once after a refresh if the install itself fails (stale lists).
apt_install() {
    local p cand
    for p in "$@"; do
        cand="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')"
        if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then apt_update; break; fi
    done
    if ! quietly apt-get install -y "$@"; then
        [ "$APT_UPDATED" -eq 0 ] || die "apt-get install $* failed"
        apt_update
        quietly apt-get install -y "$@" || die "apt-get install $* failed"
    fi
}

# ---------------------------------------------------------------- 1. Docker daemon
docker_server_version() { docker info --format '{{.ServerVersion}}' 2>/dev/null; }

# alive PID: running and not a zombie (our own dead child stays a zombie until reaped).
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

daemon_json_has() { [ -f /etc/docker/daemon.json ] && grep -q "\"$1\"" /etc/docker/daemon.json; }

start_dockerd() {
    # Flags known to work where a plain start does not (no iptables, no default bridge);
    # compose's own networks and ports published on 127.0.0.1 still work.
    # dockerd refuses a flag that is also set in daemon.json, so skip those.
    local args=()
    daemon_json_has data-root || args+=(--data-root "$DOCKER_DATA_ROOT")
    daemon_json_has iptables  || args+=(--iptables=false)
    daemon_json_has ip6tables || args+=(--ip6tables=false)
    daemon_json_has bridge    || args+=(--bridge=none)
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    log "starting dockerd ${args[*]} (log: $DOCKERD_LOG)"
    setsid nohup dockerd "${args[@]}" >>"$DOCKERD_LOG" 2>&1 </dev/null &
    DOCKERD_PID=$!
}

step_docker() {
    local v
    if v="$(docker_server_version)" && [ -n "$v" ]; then
        log "docker daemon $v ok"; return
    fi
    need_root "no Docker daemon answers 'docker info'"
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        log "installing docker.io"
        apt_install docker.io
    fi
    # Never start a second dockerd next to a running one (the package's postinst may just
    # have started one): wait for it instead, and start ours only if none is left.
    # Note: --bridge=none makes dockerd delete an existing docker0 interface, which would
    # break another daemon that uses it.
    DOCKERD_PID=""
    local i
    for i in $(seq 1 60); do
        if v="$(docker_server_version)" && [ -n "$v" ]; then
            log "docker daemon $v started ok"; return
        fi
        if [ -z "$DOCKERD_PID" ]; then
            if ! pgrep -x dockerd >/dev/null 2>&1; then
                start_dockerd
            elif [ "$i" -eq 1 ]; then
                log "a dockerd is already running (pid $(pgrep -x dockerd | tr '\n' ' ')), waiting for it"
            fi
        elif ! alive "$DOCKERD_PID"; then
            tail -n 20 "$DOCKERD_LOG" >&2 || true
            die "dockerd exited; see $DOCKERD_LOG"
        fi
        sleep 0.5
    done
    [ -z "$DOCKERD_PID" ] || tail -n 20 "$DOCKERD_LOG" >&2 || true
    die "no answer from 'docker info' within 30 s (dockerd pid(s): $(pgrep -x dockerd | tr '\n' ' ')log: $DOCKERD_LOG; is DOCKER_HOST right?)"
}

# ---------------------------------------------------------------- 2. Compose v2
compose_v2_version() {
    local v
    v="$(docker compose version --short 2>/dev/null)" || return 1
    v="${v#v}"
    [ -n "$v" ] && [ "${v%%.*}" -ge 2 ] 2>/dev/null || return 1
    printf '%s\n' "$v"
}

debian_archive() {
    # First non-security archive of the machine's own sources (deb822, then one-line format).
    local uri=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uri="$(awk 'tolower($1) == "uris:" && $2 !~ /security/ && u == "" {u = $2} END {print u}' \
            /etc/apt/sources.list.d/debian.sources)"
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri="$(sed -e 's/\[[^]]*\]//' /etc/apt/sources.list \
            | awk '$1 == "deb" && $2 !~ /security/ && $3 !~ /security/ && u == "" {u = $2} END {print u}')"
    fi
    [ -n "$uri" ] || uri="http://deb.debian.org/debian"
    printf '%s\n' "${uri%/}"
}

step_compose() {
    local v
    if v="$(compose_v2_version)"; then log "compose v2 $v ok"; return; fi
    need_root "docker compose v2 is missing"
    local tmp archive
    ensure_scratch
    tmp="$SCRATCH/compose"
    archive="$(debian_archive)"
    log "fetching docker-compose from $archive trixie (temporary apt sources)"
    mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/deb"
    printf 'deb %s trixie main\n' "$archive" >"$tmp/sources.list"
    local opts=(
        -o "Dir::Etc::sourcelist=$tmp/sources.list"
        -o "Dir::Etc::sourceparts=-"
        -o "Dir::State::Lists=$tmp/lists"
        -o "Dir::Cache=$tmp/cache"
        -o "APT::Sandbox::User=root"
        -o "Acquire::Languages=none"
    )
    quietly apt-get "${opts[@]}" update || die "apt-get update of trixie sources failed"
    (cd "$tmp/deb" && quietly apt-get "${opts[@]}" download docker-compose) \
        || die "apt-get download docker-compose (trixie) failed"
    local deb
    deb="$(ls "$tmp"/deb/docker-compose_*.deb 2>/dev/null | head -n 1)"
    [ -n "$deb" ] || die "no docker-compose .deb downloaded"
    dpkg -x "$deb" "$tmp/x"
    local plugin="$tmp/x/usr/libexec/docker/cli-plugins/docker-compose"
    [ -x "$plugin" ] || die "$(basename "$deb") holds no usr/libexec/docker/cli-plugins/docker-compose"
    mkdir -p "$PLUGIN_DIR"
    install -m 0755 "$plugin" "$PLUGIN_DIR/docker-compose"
    v="$(compose_v2_version)" || die "docker compose version does not report v2 after installing $(basename "$deb")"
    log "compose v2 $v installed ok"
}

# ---------------------------------------------------------------- 3. docker-registry
stop_packaged_registry() {
    # Keep the packaged service (listens on :5000, all addresses) off; tests run their own.
    if command -v systemctl >/dev/null 2>&1; then
        if [ -d /run/systemd/system ]; then
            systemctl disable --now docker-registry >/dev/null 2>&1 || true
        else
            systemctl disable docker-registry >/dev/null 2>&1 || true  # offline: drop the wants link
        fi
    fi
    if [ -x /etc/init.d/docker-registry ] && command -v update-rc.d >/dev/null 2>&1; then
        update-rc.d docker-registry disable >/dev/null 2>&1 || true
    fi
    start-stop-daemon --stop --quiet --oknodo --retry 5 \
        --pidfile /var/run/docker-registry.pid --exec /usr/bin/docker-registry >/dev/null 2>&1 || true
    # Any process left that serves the package's own config.
    local pid cmd
    for pid in $(pgrep -x docker-registry 2>/dev/null || true); do
        cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
        case "$cmd" in
            *" serve /etc/docker/registry/config.yml"*)
                log "stopping packaged docker-registry (pid $pid)"
                kill "$pid" 2>/dev/null || true ;;
        esac
    done
}

step_registry() {
    if command -v docker-registry >/dev/null 2>&1; then
        log "docker-registry ok"; return
    fi
    need_root "docker-registry is missing"
    log "installing docker-registry"
    apt_install docker-registry
    stop_packaged_registry
    command -v docker-registry >/dev/null 2>&1 || die "docker-registry not on PATH after install"
    log "docker-registry installed ok (packaged service disabled)"
}

# ---------------------------------------------------------------- 4b. sshd for test hosts
# scripts/hosts.sh runs one sshd per test host on an address of its own; the
# packaged service must never start (it would listen on every address).
step_sshd() {
    if [ -x /usr/sbin/sshd ] && command -v ip >/dev/null 2>&1; then
        log "sshd and iproute2 ok"; return
    fi
    need_root "openssh-server (sshd for the test hosts) is missing"
    log "installing openssh-server and iproute2 (service not started)"
    local policy=/usr/sbin/policy-rc.d made=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        made=1
    fi
    apt_install openssh-server iproute2
    [ "$made" -eq 0 ] || rm -f "$policy"
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now ssh >/dev/null 2>&1 || true
    fi
    [ -x /usr/sbin/sshd ] || die "sshd missing after installing openssh-server"
    log "openssh-server installed ok (service not started)"
}

# ---------------------------------------------------------------- 4. busybox-static
busybox_static() {
    [ -x /bin/busybox ] || return 1
    # ldd fails ("not a dynamic executable") on a static binary.
    ! ldd /bin/busybox >/dev/null 2>&1
}

step_busybox() {
    if busybox_static; then log "static /bin/busybox ok"; return; fi
    need_root "a static /bin/busybox is missing"
    log "installing busybox-static"
    apt_install busybox-static
    busybox_static || die "/bin/busybox is missing or not static after installing busybox-static"
    log "static /bin/busybox installed ok"
}

# ---------------------------------------------------------------- 5. base image
step_image() {
    if docker image inspect "$FIXTURE_IMAGE" >/dev/null 2>&1; then
        log "image $FIXTURE_IMAGE ok"; return
    fi
    local root
    ensure_scratch
    root="$SCRATCH/rootfs"
    mkdir -p "$root/bin" "$root/tmp" "$root/www" "$root/app" "$root/etc"
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    chmod 0755 "$root/bin/busybox"
    local applet
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    local a
    for a in sh httpd wget sleep cat echo ls mkdir rm env true false test '[' printf nc date kill ps grep; do
        [ -e "$root/bin/$a" ] || die "busybox has no applet '$a'"
    done
    log "importing $FIXTURE_IMAGE"
    tar --numeric-owner --owner=0 --group=0 -C "$root" -cf - . \
        | docker import --change 'LABEL io.slipway.fixture=1' --change 'CMD ["sh"]' - "$FIXTURE_IMAGE" >/dev/null
    docker image inspect "$FIXTURE_IMAGE" >/dev/null 2>&1 || die "import of $FIXTURE_IMAGE failed"
    log "image $FIXTURE_IMAGE imported ok"
}

# ---------------------------------------------------------------- 6. nginx and caddy images
# proxy_image NAME BINARY COMMAND...: the binary (at its own path) and every library ldd
# names, on the busybox base. Run as COMMAND; a config file is bind-mounted by whoever runs it.
proxy_image() {
    local image="$1" pkg="$2" bin="$3" stop="$4"; shift 4
    if docker image inspect "$image" >/dev/null 2>&1; then
        log "image $image ok"; return
    fi
    ensure_scratch
    local dir="$SCRATCH/$pkg"
    mkdir -p "$dir/deb" "$dir/root"
    apt_candidate "$pkg"
    log "downloading Debian's $pkg (not installed: only its binary goes into $image)"
    (cd "$dir/deb" && quietly apt-get -o APT::Sandbox::User=root download "$pkg") \
        || die "apt-get download $pkg failed"
    local deb version
    deb="$(ls "$dir"/deb/"$pkg"_*.deb | head -n 1)"
    dpkg -x "$deb" "$dir/x"
    version="$(dpkg-deb -f "$deb" Version)"
    [ -x "$dir/x$bin" ] || die "the $pkg package holds no $bin"
    mkdir -p "$dir/root$(dirname "$bin")"
    cp "$dir/x$bin" "$dir/root$bin"
    local lib
    for lib in $(ldd "$dir/x$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
        mkdir -p "$dir/root$(dirname "$lib")"
        cp -L "$lib" "$dir/root$lib"
    done
    # What both need from a filesystem: users for nginx's worker, scratch dirs they write to.
    mkdir -p "$dir/root/etc" "$dir/root/var/log/nginx" "$dir/root/var/lib/nginx" "$dir/root/run" \
        "$dir/root/var/lock" "$dir/root/etc/nginx" "$dir/root/etc/caddy" "$dir/root/data" "$dir/root/config"
    printf 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$dir/root/etc/passwd"
    printf 'root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n' >"$dir/root/etc/group"
    printf 'hosts: files dns\n' >"$dir/root/etc/nsswitch.conf"
    local cmd="" a
    for a in "$@"; do cmd="$cmd${cmd:+, }\"$a\""; done
    cat >"$dir/Dockerfile" <<DOCKERFILE
FROM $FIXTURE_IMAGE
COPY root/ /
ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config
LABEL io.slipway.fixture=1 io.slipway.fixture.package="$pkg $version"
STOPSIGNAL $stop
CMD [$cmd]
DOCKERFILE
    log "building $image ($pkg $version)"
    DOCKER_BUILDKIT=0 quietly docker build -q -t "$image" "$dir" || die "docker build $image failed"
    docker run --rm --entrypoint "$bin" "$image" "$( [ "$pkg" = nginx ] && echo -v || echo version)" >/dev/null 2>&1 \
        || die "$image: $bin does not run inside the image"
    log "image $image built ok"
}

apt_candidate() {
    local cand
    cand="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then apt_update; fi
}

step_proxies() {
    proxy_image slipway-fixture/nginx:1 nginx /usr/sbin/nginx SIGQUIT \
        /usr/sbin/nginx -c /etc/nginx/nginx.conf -g "daemon off;"
    proxy_image slipway-fixture/caddy:1 caddy /usr/bin/caddy SIGTERM \
        /usr/bin/caddy run --config /etc/caddy/Caddyfile --adapter caddyfile
}

step_docker
step_compose
step_registry
step_busybox
step_sshd
step_image
step_proxies
log "ready"
