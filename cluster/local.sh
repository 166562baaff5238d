#!/usr/bin/env bash
# A multi-node Ray cluster on this machine, for development and the cluster tests.
#
#   cluster/local.sh up [--workers N] [--cpus-per-node C] [--gpus-per-node G]
#   cluster/local.sh status
#   cluster/local.sh env               # print `export` lines for RAY_* client settings
#   cluster/local.sh kill-worker I     # kill -9 every process of worker node I (failure drills)
#   cluster/local.sh down [--keep-logs]
#
# Every node binds 127.0.0.1 only, token authentication is on, and each node has its own
# --temp-dir and port block so that several nodes (and other people's Ray) coexist on one host.
# Node i carries the custom resource `node_head` or `node_w<i>`, so tests can pin work to a node.
#
# State lives in $LRSWEEP_CLUSTER_DIR (default ./.cluster): the token (mode 0600), the node
# list, `ray start` logs, and cluster.env to source. Ray's own session logs live in a short
# directory under /tmp (unix socket paths are limited to ~107 bytes); `down` removes it.
#
# Processes are found by a marker in their environment (LRSWEEP_CLUSTER_ID, inherited by every
# Ray process a node spawns), never by name: `ray stop` would kill every Ray process of this
# user on the machine, including other clusters.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
STATE="${LRSWEEP_CLUSTER_DIR:-./.cluster}"
GCS_PORT="${LRSWEEP_GCS_PORT:-6379}"
DASHBOARD_PORT="${LRSWEEP_DASHBOARD_PORT:-8265}"
CLIENT_PORT="${LRSWEEP_CLIENT_PORT:-10001}"
# Node i gets ports PORT_BASE + i*PORT_STRIDE ... (+ PORT_STRIDE - 1): agent port, then workers.
PORT_BASE="${LRSWEEP_PORT_BASE:-20000}"
PORT_STRIDE=500
OBJECT_STORE_BYTES="${LRSWEEP_OBJECT_STORE_BYTES:-268435456}"
HOST=127.0.0.1

if [[ -n "${LRSWEEP_RAY:-}" ]]; then
    RAY="$LRSWEEP_RAY"
elif [[ -x "$REPO/.venv/bin/ray" ]]; then
    RAY="$REPO/.venv/bin/ray"
else
    RAY="$(command -v ray || true)"
fi

die() { echo "local.sh: $*" >&2; exit 1; }
usage() { sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

ray_env() {
    # Everything a node and a client needs. The venv's bin goes first on PATH so that a Ray Job
    # entrypoint such as `python x.py` or `lrsweep run ...` resolves to the same environment.
    export RAY_AUTH_MODE=token
    RAY_AUTH_TOKEN_PATH="$(abs "$STATE")/auth_token"
    export RAY_AUTH_TOKEN_PATH
    PATH="$(dirname "$RAY"):$PATH"
    export PATH
    export RAY_USAGE_STATS_ENABLED=0
    # The GCS marks a node dead after period x threshold without a health-check reply; Ray's
    # defaults take ~30 s, too slow for a failure drill on a laptop. Caller's values win.
    export RAY_health_check_initial_delay_ms="${RAY_health_check_initial_delay_ms:-2000}"
    export RAY_health_check_period_ms="${RAY_health_check_period_ms:-1000}"
    export RAY_health_check_timeout_ms="${RAY_health_check_timeout_ms:-2000}"
    export RAY_health_check_failure_threshold="${RAY_health_check_failure_threshold:-5}"
}

abs() { (cd "$1" && pwd); }

# PIDs of the processes whose environment has LRSWEEP_CLUSTER_ID=$1 (and, if given,
# LRSWEEP_CLUSTER_NODE=$2), and of all their descendants: processes that rename themselves
# (ray::DashboardAgent, ray::IDLE workers, dashboard modules) overwrite their visible environment,
# but they are children of a marked raylet or dashboard. Processes that exit mid-scan are skipped.
cluster_pids() {
    local files f pid line rest
    local -A parent_of=() chosen=()
    mapfile -t files < <(grep -lzxF "LRSWEEP_CLUSTER_ID=$1" /proc/[0-9]*/environ 2>/dev/null)
    if [[ -n "${2:-}" ]] && ((${#files[@]})); then
        mapfile -t files < <(grep -lzxF "LRSWEEP_CLUSTER_NODE=$2" "${files[@]}" 2>/dev/null)
    fi
    for f in "${files[@]}"; do
        pid="${f#/proc/}"
        chosen["${pid%/environ}"]=1
    done
    ((${#chosen[@]})) || return 0
    for f in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$f" || continue
        pid="${f#/proc/}"
        rest="${line##*) }" # fields after "pid (comm) ": state ppid ...
        rest="${rest#* }"
        parent_of["${pid%/stat}"]="${rest%% *}"
    done
    # Walk each process's ancestry; parents of PID-namespace init and kernel threads are 0.
    for pid in "${!parent_of[@]}"; do
        local p="$pid" depth=0
        while [[ -n "$p" && "$p" != 0 && depth -lt 64 ]]; do
            if [[ -n "${chosen[$p]:-}" ]]; then
                chosen["$pid"]=1
                break
            fi
            p="${parent_of[$p]:-}"
            depth=$((depth + 1))
        done
    done
    for pid in "${!chosen[@]}"; do
        [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] || echo "$pid"
    done
}

cluster_id() { cat "$STATE/cluster_id" 2>/dev/null || true; }

# A zombie has exited; only its parent's wait() is missing (in a PID namespace whose init is a
# shell, orphans may never be reaped), so it counts as gone.
is_alive() {
    local state
    state="$(awk '/^State:/{print $2}' "/proc/$1/status" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# Send $1 to the pids on stdin, then wait up to $2 seconds for them to go.
signal_and_wait() {
    local sig="$1" grace="$2" pids pid deadline
    mapfile -t pids
    ((${#pids[@]})) || return 0
    kill "-$sig" "${pids[@]}" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while ((SECONDS < deadline)); do
        local alive=0
        for pid in "${pids[@]}"; do
            is_alive "$pid" && alive=1 && break
        done
        ((alive)) || return 0
        sleep 0.2
    done
    return 1
}

wait_for_nodes() {
    local want="$1" timeout="$2" deadline n
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        n="$(timeout 20 "$RAY" status --address "$HOST:$GCS_PORT" 2>/dev/null \
            | awk '/^Active:/{a=1; next} /^Pending:/{a=0} a && / node_/{c++} END{print c+0}')" || n=0
        ((n >= want)) && return 0
        sleep 1
    done
    return 1
}

start_node() {
    # start_node NAME INDEX ray-start-args...
    local name="$1" index="$2"
    shift 2
    local tmp agent min_port
    tmp="$(cat "$STATE/ray_tmp")/$name"
    agent=$((PORT_BASE + index * PORT_STRIDE))
    min_port=$((agent + 10))
    mkdir -p "$tmp"
    echo "$name $tmp" >>"$STATE/nodes"
    if ! LRSWEEP_CLUSTER_NODE="$name" timeout 120 "$RAY" start \
        --node-ip-address "$HOST" \
        --temp-dir "$tmp" \
        --object-store-memory "$OBJECT_STORE_BYTES" \
        --dashboard-agent-listen-port "$agent" \
        --min-worker-port "$min_port" --max-worker-port $((agent + PORT_STRIDE - 1)) \
        --disable-usage-stats \
        "$@" >"$STATE/logs/$name.log" 2>&1; then
        cat "$STATE/logs/$name.log" >&2
        die "could not start $name (log: $STATE/logs/$name.log)"
    fi
}

cmd_up() {
    local workers=1 cpus=1 gpus=0
    while (($#)); do
        case "$1" in
            --workers) workers="$2"; shift 2 ;;
            --cpus-per-node) cpus="$2"; shift 2 ;;
            --gpus-per-node) gpus="$2"; shift 2 ;;
            *) usage ;;
        esac
    done
    [[ "$workers" =~ ^[0-9]+$ ]] || die "--workers takes a number, got '$workers'"
    [[ -x "$RAY" ]] || die "no ray executable (set LRSWEEP_RAY or build .venv)"
    mkdir -p "$STATE/logs"
    if [[ -n "$(cluster_id)" && -n "$(cluster_pids "$(cluster_id)")" ]]; then
        die "a cluster from $STATE is already running; run 'down' first"
    fi
    rm -f "$STATE/nodes"
    ray_env
    (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(32))' >"$STATE/auth_token")
    python3 -c 'import uuid; print(uuid.uuid4().hex)' >"$STATE/cluster_id"
    mktemp -d /tmp/lrsweep-ray.XXXXXX >"$STATE/ray_tmp"
    LRSWEEP_CLUSTER_ID="$(cluster_id)"
    export LRSWEEP_CLUSTER_ID

    # The head schedules no GPU work: on a real cluster it is a small CPU machine.
    start_node head 0 --head --port "$GCS_PORT" \
        --num-cpus "$cpus" --num-gpus 0 --resources '{"node_head": 1}' \
        --include-dashboard true --dashboard-host "$HOST" --dashboard-port "$DASHBOARD_PORT" \
        --ray-client-server-port "$CLIENT_PORT"
    local i
    for ((i = 1; i <= workers; i++)); do
        start_node "worker-$i" "$i" --address "$HOST:$GCS_PORT" \
            --num-cpus "$cpus" --num-gpus "$gpus" --resources "{\"node_w$i\": 1}"
    done
    wait_for_nodes $((workers + 1)) 60 || die "the cluster did not reach $((workers + 1)) nodes in 60 s"
    cat >"$STATE/cluster.env" <<EOF
export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN_PATH=$RAY_AUTH_TOKEN_PATH
export RAY_ADDRESS=$HOST:$GCS_PORT
export RAY_API_SERVER_ADDRESS=http://$HOST:$DASHBOARD_PORT
EOF
    echo "cluster up: head + $workers worker(s); GCS $HOST:$GCS_PORT, dashboard http://$HOST:$DASHBOARD_PORT"
    echo "client settings: source $STATE/cluster.env"
}

cmd_status() {
    local id name tmp n
    id="$(cluster_id)"
    [[ -n "$id" && -f "$STATE/nodes" ]] || { echo "no cluster in $STATE"; return 1; }
    while read -r name tmp; do
        n="$(cluster_pids "$id" "$name" | wc -l)"
        echo "$name: $n processes, temp dir $tmp"
    done <"$STATE/nodes"
    ray_env
    timeout 30 "$RAY" status --address "$HOST:$GCS_PORT"
}

cmd_env() {
    [[ -f "$STATE/cluster.env" ]] || die "no cluster in $STATE"
    cat "$STATE/cluster.env"
}

cmd_kill_worker() {
    local i="${1:-}" id
    [[ "$i" =~ ^[0-9]+$ ]] || usage
    id="$(cluster_id)"
    [[ -n "$id" ]] || die "no cluster in $STATE"
    cluster_pids "$id" "worker-$i" | signal_and_wait KILL 10 || die "worker-$i survived kill -9"
    echo "worker-$i killed"
}

cmd_down() {
    local keep=0 id
    [[ "${1:-}" == "--keep-logs" ]] && keep=1
    id="$(cluster_id)"
    if [[ -n "$id" ]]; then
        # TERM lets the raylets and the GCS exit cleanly; whatever lingers gets KILL.
        cluster_pids "$id" | signal_and_wait TERM 5 || cluster_pids "$id" | signal_and_wait KILL 10 \
            || die "some processes of cluster $id survived kill -9"
    fi
    if [[ -f "$STATE/ray_tmp" ]]; then
        local tmp
        tmp="$(cat "$STATE/ray_tmp")"
        if ((keep)); then
            echo "Ray session logs kept in $tmp"
        elif [[ "$tmp" == /tmp/lrsweep-ray.* ]]; then
            rm -rf "$tmp"
        fi
    fi
    rm -f "$STATE/cluster_id" "$STATE/nodes" "$STATE/ray_tmp" "$STATE/cluster.env" "$STATE/auth_token"
    echo "cluster down"
}

(($#)) || usage
command="$1"
shift
case "$command" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    kill-worker) cmd_kill_worker "$@" ;;
    *) usage ;;
esac
