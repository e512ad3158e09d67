#!/usr/bin/env bash
# Real test hosts on this machine: each host is a network namespace plus a
# private mount namespace with its own dockerd and its own sshd, reached only
# over SSH, as a user reaches a server (../shared/INFRA.md, "Several real hosts
# on one machine"). Needs root, iproute2 and openssh-server (scripts/setup.sh
# installs it without starting its service).
#
#   scripts/hosts.sh up NAME...     start hosts (idempotent); prints "NAME ADDRESS" per host
#   scripts/hosts.sh down [NAME...] stop hosts and remove all they made (all hosts when none named)
#   scripts/hosts.sh status         one line per host: name, address, dockerd and sshd alive
#   scripts/hosts.sh ssh NAME CMD…  run CMD on a host over SSH
#   scripts/hosts.sh swarm MANAGER WORKER...
#                                   make a Swarm of hosts already `up` (idempotent): init on
#                                   MANAGER, join each WORKER; prints "swarm MANAGER: N nodes ready"
#
# Wiring: one bridge in a "switch" namespace (a bridge in the root namespace
# does not pass host-to-host traffic once the main dockerd's FORWARD DROP
# policy applies), one veth per host into it, one veth for the root namespace.
# Every address is in one private /24 ($SLIPWAY_HOSTS_NET.0/24): the root
# namespace is .1, hosts are .10 and up. Nothing is routed anywhere else.
#
# Each host has its own /srv (and /run, /var/lib/docker, /etc/docker); the
# rest of the filesystem is the machine's, shared by every host.
#
# For clients: $DIR/ssh_config has a `Host NAME` entry per host (user root,
# the lab's key, its own known_hosts, strict host-key checking), so
# `ssh -F $DIR/ssh_config NAME` and `DOCKER_HOST=ssh://NAME` work.
#
# Environment: SLIPWAY_HOSTS_DIR (default /tmp/slipway-hosts),
# SLIPWAY_HOSTS_NET (first three octets, default 10.231.7).
set -euo pipefail

DIR="${SLIPWAY_HOSTS_DIR:-/tmp/slipway-hosts}"
NET="${SLIPWAY_HOSTS_NET:-10.231.7}"
SW=slw-sw
ROOT_IF=slw-root

log() { printf 'hosts: %s\n' "$*" >&2; }
die() { printf 'hosts: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (network and mount namespaces)"
command -v ip >/dev/null || die "iproute2 is not installed"

valid_name() { [[ "$1" =~ ^[a-z][a-z0-9-]{0,9}$ ]] || die "host name '$1': use 1-10 of a-z, 0-9, -"; }
ns() { echo "slw-$1"; }

# The address of a host: its index in $DIR/index (assigned on first `up`).
address() {
    local name="$1" idx
    mkdir -p "$DIR"
    touch "$DIR/index"
    idx="$(awk -v n="$name" '$1 == n {print $2}' "$DIR/index")"
    if [ -z "$idx" ]; then
        idx="$(awk 'BEGIN {m = 9} $2 > m {m = $2} END {print m + 1}' "$DIR/index")"
        [ "$idx" -le 250 ] || die "no address left in $NET.0/24"
        echo "$name $idx" >>"$DIR/index"
    fi
    echo "$NET.$idx"
}

ensure_switch() {
    if ! ip netns list | grep -qw "$SW"; then
        ip netns add "$SW"
        ip -n "$SW" link set lo up
        ip -n "$SW" link add br0 type bridge
        ip -n "$SW" link set br0 up
    fi
    if ! ip link show "$ROOT_IF" >/dev/null 2>&1; then
        ip link add "$ROOT_IF" type veth peer name root-p netns "$SW"
        ip -n "$SW" link set root-p master br0 up
        ip addr add "$NET.1/24" dev "$ROOT_IF"
        ip link set "$ROOT_IF" up
    fi
}

ensure_key() {
    mkdir -p "$DIR"
    [ -f "$DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C slipway-test-hosts -f "$DIR/id_ed25519"
    touch "$DIR/known_hosts" "$DIR/ssh_config"
}

sock() { echo "unix://$DIR/$1/run/docker.sock"; }
dockerd_up() { docker -H "$(sock "$1")" info --format '{{.ServerVersion}}' >/dev/null 2>&1; }
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pidfile_alive() { [ -f "$1" ] && pid_alive "$(cat "$1" 2>/dev/null)"; }

write_sshd_config() {
    local name="$1" addr="$2" d="$DIR/$1"
    [ -f "$d/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/ssh_host_ed25519_key"
    cp "$DIR/id_ed25519.pub" "$d/authorized_keys"
    cat >"$d/sshd_config" <<EOF
ListenAddress $addr
Port 22
HostKey $d/ssh_host_ed25519_key
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100:30:200
MaxSessions 100
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
Subsystem sftp internal-sftp
EOF
}

# Rewrite known_hosts and ssh_config from every host that has a directory.
write_client_files() {
    local kh="$DIR/known_hosts.new" cfg="$DIR/ssh_config.new" name addr
    : >"$kh"
    : >"$cfg"
    while read -r name _; do
        [ -f "$DIR/$name/ssh_host_ed25519_key.pub" ] || continue
        addr="$(address "$name")"
        echo "$addr $(cut -d' ' -f1,2 "$DIR/$name/ssh_host_ed25519_key.pub")" >>"$kh"
        cat >>"$cfg" <<EOF
Host $name
    HostName $addr
EOF
    done <"$DIR/index"
    cat >>"$cfg" <<EOF
Host *
    User root
    IdentityFile $DIR/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $DIR/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 5
EOF
    mv "$kh" "$DIR/known_hosts"
    mv "$cfg" "$DIR/ssh_config"
}

up_one() {
    local name="$1" addr idx d n
    valid_name "$name"
    addr="$(address "$name")"
    idx="${addr##*.}"
    d="$DIR/$name"
    n="$(ns "$name")"
    mkdir -p "$d/run" "$d/lib" "$d/etc-docker" "$d/cg" "$d/srv"
    # Registries on the lab network (the root namespace's .1) speak plain HTTP.
    echo "{\"insecure-registries\": [\"$NET.0/24\"]}" >"$d/etc-docker/daemon.json"
    if ! ip netns list | grep -qw "$n"; then
        ip netns add "$n"
        ip -n "$SW" link add "p-$name" type veth peer name eth0 netns "$n"
        ip -n "$SW" link set "p-$name" master br0 up
        ip -n "$n" addr add "$addr/24" dev eth0
        ip -n "$n" link set eth0 up
        ip -n "$n" link set lo up
    fi
    write_sshd_config "$name" "$addr"
    if dockerd_up "$name" && pidfile_alive "$d/sshd.pid"; then
        echo "$name $addr"
        return 0
    fi
    # Not `ip netns exec`: it remounts /sys and the cgroup v1 mounts vanish
    # (dockerd then fails with "Devices cgroup isn't mounted").
    nsenter --net="/run/netns/$n" unshare --mount --uts --propagation private \
        bash -s "$name" "$d" "$idx" >"$d/enter.log" 2>&1 9>&- <<'INNER'
set -eu
name="$1"; d="$2"; idx="$3"
mount --rbind /sys/fs/cgroup "$d/cg"
mount -t sysfs sysfs /sys
mount --rbind "$d/cg" /sys/fs/cgroup
mount --bind "$d/run" /run
mount --bind "$d/lib" /var/lib/docker
mount --bind "$d/etc-docker" /etc/docker
# A folder of the host's own, as on a real server (a project `dir` there).
mkdir -p /srv && mount --bind "$d/srv" /srv
hostname "$name"
mkdir -p /run/sshd
if ! [ -S /run/docker.sock ] || ! docker info >/dev/null 2>&1; then
    rm -f /run/docker.pid /run/docker.sock
    setsid dockerd --storage-driver overlay2 --cgroup-parent "/slw-$name" \
        --bip "172.31.$((idx % 200)).1/24" --pidfile /run/docker.pid \
        --host unix:///run/docker.sock >"$d/dockerd.log" 2>&1 </dev/null &
fi
if ! { [ -f "$d/sshd.pid" ] && kill -0 "$(cat "$d/sshd.pid")" 2>/dev/null; }; then
    /usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log"
fi
INNER
    echo "$name $addr"
}

wait_ready() {
    local name="$1"
    for _ in $(seq 1 150); do
        if dockerd_up "$name" && ssh -F "$DIR/ssh_config" "$name" true 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    tail -n 20 "$DIR/$name/dockerd.log" "$DIR/$name/sshd.log" "$DIR/$name/enter.log" >&2 2>/dev/null || true
    die "host $name did not come up (dockerd or sshd), logs above"
}

down_one() {
    local name="$1" d="$DIR/$1" n pid
    n="$(ns "$name")"
    if dockerd_up "$name"; then
        docker -H "$(sock "$name")" swarm leave --force >/dev/null 2>&1 || true
        local ids
        ids="$(docker -H "$(sock "$name")" ps -aq 2>/dev/null || true)"
        # shellcheck disable=SC2086
        [ -z "$ids" ] || docker -H "$(sock "$name")" rm -f $ids >/dev/null 2>&1 || true
    fi
    for f in "$d/run/docker.pid" "$d/sshd.pid"; do
        pid="$(cat "$f" 2>/dev/null || true)"
        if pid_alive "$pid"; then kill "$pid" 2>/dev/null || true; fi
    done
    if ip netns list | grep -qw "$n"; then
        for _ in $(seq 1 50); do
            [ -n "$(ip netns pids "$n" 2>/dev/null)" ] || break
            sleep 0.2
        done
        # shellcheck disable=SC2046
        kill -9 $(ip netns pids "$n" 2>/dev/null) 2>/dev/null || true
        for _ in $(seq 1 25); do
            [ -n "$(ip netns pids "$n" 2>/dev/null)" ] || break
            sleep 0.2
        done
        ip netns del "$n" 2>/dev/null || true
    fi
    # Containers live in their own network namespaces: when the host's dockerd
    # was killed (kill -9, a Swarm node-down test), their processes outlive it
    # and the netns above. They are all in the host's cgroup (--cgroup-parent).
    local cgpids
    for _ in 1 2 3; do
        cgpids="$(cat /sys/fs/cgroup/*/"slw-$name"/cgroup.procs /sys/fs/cgroup/*/"slw-$name"/*/cgroup.procs 2>/dev/null | sort -u || true)"
        [ -n "$cgpids" ] || break
        # shellcheck disable=SC2086
        kill -9 $cgpids 2>/dev/null || true
        sleep 0.2
    done
    for cg in /sys/fs/cgroup/*/"slw-$name"; do
        if [ -d "$cg" ]; then find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
    done
    # The host's mounts lived in its own mount namespace, gone with its last process.
    rm -rf "$d"
}

# Drop a host from the index (after down_one; one at a time, it is shared).
forget() {
    if [ -f "$DIR/index" ]; then
        awk -v n="$1" '$1 != n' "$DIR/index" >"$DIR/index.new" && mv "$DIR/index.new" "$DIR/index"
    fi
}

# A host's docker CLI, through its own socket (as the readiness check does).
hdocker() { local name="$1"; shift; docker -H "$(sock "$name")" "$@"; }

# The swarm a host's engine is in: "<state> <node id> <is manager> <cluster id>".
swarm_info() {
    hdocker "$1" info --format \
        '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}} {{.Swarm.ControlAvailable}} {{if .Swarm.Cluster}}{{.Swarm.Cluster.ID}}{{end}}'
}

swarm_up() {
    local manager="$1" maddr info state cluster w waddr token ready total
    shift
    for h in "$manager" "$@"; do
        valid_name "$h"
        dockerd_up "$h" || die "host $h is not up (scripts/hosts.sh up $h first)"
    done
    maddr="$(address "$manager")"
    read -r state _ ismgr cluster <<<"$(swarm_info "$manager")"
    if [ "$state" != active ] || [ "$ismgr" != true ]; then
        [ "$state" = inactive ] || hdocker "$manager" swarm leave --force >/dev/null 2>&1 || true
        hdocker "$manager" swarm init --advertise-addr "$maddr" --listen-addr "$maddr:2377" >/dev/null
        read -r state _ ismgr cluster <<<"$(swarm_info "$manager")"
    fi
    token="$(hdocker "$manager" swarm join-token -q worker)"
    for w in "$@"; do
        waddr="$(address "$w")"
        read -r state _ _ info <<<"$(swarm_info "$w")"
        [ "$state" = active ] && [ "$info" = "$cluster" ] && continue
        # A worker's engine does not know its cluster ID: ask the manager.
        if [ "$state" = active ] && [ -z "$info" ]; then
            local nid
            nid="$(hdocker "$w" info --format '{{.Swarm.NodeID}}')"
            hdocker "$manager" node inspect "$nid" >/dev/null 2>&1 && continue
        fi
        [ "$state" = inactive ] || hdocker "$w" swarm leave --force >/dev/null 2>&1 || true
        hdocker "$w" swarm join --token "$token" --advertise-addr "$waddr" \
            --listen-addr "$waddr:2377" "$maddr:2377" >/dev/null
    done
    total=$(($# + 1))
    for _ in $(seq 1 150); do
        ready="$(hdocker "$manager" node ls --format '{{.Status}}' | grep -c '^Ready$' || true)"
        [ "$ready" -ge "$total" ] && break
        sleep 0.2
    done
    [ "$ready" -ge "$total" ] || die "swarm $manager: $ready of $total nodes ready"
    echo "swarm $manager: $ready nodes ready"
}

remove_switch_if_unused() {
    if [ ! -s "$DIR/index" ]; then
        ip link del "$ROOT_IF" 2>/dev/null || true
        ip netns del "$SW" 2>/dev/null || true
        rm -rf "$DIR"
    fi
}

cmd="${1:-}"
shift || true
# Tests bring hosts up and down concurrently: one change at a time (the
# switch, the index and the client files are shared). The lock file sits
# beside $DIR because `down` removes $DIR.
if [ "$cmd" = up ] || [ "$cmd" = down ]; then
    exec 9>"$DIR.lock"
    flock 9
fi
case "$cmd" in
up)
    [ $# -gt 0 ] || die "usage: hosts.sh up NAME..."
    command -v /usr/sbin/sshd >/dev/null || die "openssh-server is not installed (run scripts/setup.sh)"
    ensure_switch
    ensure_key
    for h in "$@"; do up_one "$h" >/dev/null; done
    write_client_files
    # The shared files are written: another test's hosts may come and go
    # while these dockerds start (waiting only reads ssh_config).
    flock -u 9
    for h in "$@"; do wait_ready "$h"; done
    for h in "$@"; do echo "$h $(address "$h")"; done
    ;;
down)
    if [ $# -eq 0 ] && [ -f "$DIR/index" ]; then
        # shellcheck disable=SC2046 # host names are validated words
        set -- $(awk '{print $1}' "$DIR/index")
    fi
    # Side by side: each waits seconds for its own dockerd and processes to
    # go, and touches only its own namespace, cgroup and folder.
    pids=()
    for h in "$@"; do
        down_one "$h" &
        pids+=($!)
    done
    status=0
    for p in "${pids[@]}"; do wait "$p" || status=1; done
    for h in "$@"; do forget "$h"; done
    [ ! -d "$DIR" ] || write_client_files
    remove_switch_if_unused
    exit "$status"
    ;;
status)
    [ -f "$DIR/index" ] || exit 0
    while read -r name _; do
        printf '%s %s dockerd=%s sshd=%s\n' "$name" "$(address "$name")" \
            "$(dockerd_up "$name" && echo up || echo down)" \
            "$(pidfile_alive "$DIR/$name/sshd.pid" && echo up || echo down)"
    done <"$DIR/index"
    ;;
ssh)
    [ $# -ge 2 ] || die "usage: hosts.sh ssh NAME CMD..."
    exec ssh -F "$DIR/ssh_config" "$@"
    ;;
swarm)
    [ $# -ge 1 ] || die "usage: hosts.sh swarm MANAGER WORKER..."
    swarm_up "$@"
    ;;
*)
    sed -n '2,15p' "$0" >&2
    exit 2
    ;;
esac
