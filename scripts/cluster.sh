#!/usr/bin/env bash
# A private three-node RabbitMQ cluster on this machine, for the cluster tests and the bench.
#
#   scripts/cluster.sh start            start three nodes and join them (idempotent)
#   scripts/cluster.sh stop             stop them and delete their data
#   scripts/cluster.sh status           the nodes, their pids and the cluster's view
#   scripts/cluster.sh urls             the AMQP_URL to use (three comma-separated URLs)
#   scripts/cluster.sh pid N            node N's OS pid (for a SIGKILL)
#   scripts/cluster.sh kill N           SIGKILL node N
#   scripts/cluster.sh start-node N     start node N again (after a kill or a stop)
#   scripts/cluster.sh stop-node N      stop node N cleanly
#   scripts/cluster.sh ctl N ARGS...    rabbitmqctl against node N
#
# The nodes have their own names (wanotify-c1..3@localhost), ports (AMQP CLUSTER_BASE_PORT+1..3,
# default 5681-5683; Erlang distribution +20000), data folders and Erlang cookie (a private HOME
# under CLUSTER_DIR, default /tmp/wanotify-cluster). The machine's main broker (rabbit@localhost,
# 5672/15672/15692) is never touched: no management or prometheus plugin runs on these nodes.
# Needs the rabbitmq-server Debian package (3.10) and root, or a user who can run its scripts.
set -euo pipefail

CLUSTER_DIR=${CLUSTER_DIR:-/tmp/wanotify-cluster}
BASE_PORT=${CLUSTER_BASE_PORT:-5680}
NODES=(1 2 3)
SBIN=$(ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin 2>/dev/null | sort -V | tail -n 1 || true)

die() { echo "cluster.sh: $*" >&2; exit 1; }
[ -n "$SBIN" ] || die "RabbitMQ is not installed (no /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin): apt-get install rabbitmq-server"

node_name() { echo "wanotify-c$1@localhost"; }
amqp_port() { echo $((BASE_PORT + $1)); }
node_dir() { echo "$CLUSTER_DIR/node$1"; }

# Everything a node's scripts read, private to the node (and HOME private to the cluster, so the
# three share an Erlang cookie that is not the main broker's).
node_env() {
  local n=$1 dir
  dir=$(node_dir "$n")
  export HOME="$CLUSTER_DIR/home"
  export RABBITMQ_NODENAME
  RABBITMQ_NODENAME=$(node_name "$n")
  export RABBITMQ_NODE_PORT
  RABBITMQ_NODE_PORT=$(amqp_port "$n")
  export RABBITMQ_DIST_PORT=$((RABBITMQ_NODE_PORT + 20000))
  export RABBITMQ_MNESIA_BASE="$dir/mnesia"
  export RABBITMQ_LOG_BASE="$dir/log"
  export RABBITMQ_PID_FILE="$dir/pid"
  export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
  export RABBITMQ_CONF_ENV_FILE=/dev/null  # the machine's env file pins the main node's name
  export RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
  export ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_SERVER_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

# Every rabbitmqctl call is bounded: one that hangs on a wedged node must not hang the caller.
ctl() {
  local n=$1; shift
  (node_env "$n" && timeout "${CTL_TIMEOUT:-60}" "$SBIN/rabbitmqctl" -n "$(node_name "$n")" "$@")
}

prepare_node() {
  local n=$1 dir
  dir=$(node_dir "$n")
  mkdir -p "$dir/mnesia" "$dir/log" "$CLUSTER_DIR/home"
  cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.local = 127.0.0.1:$(amqp_port "$n")
loopback_users = none
# A node that loses the majority pauses instead of serving a minority view.
cluster_partition_handling = pause_minority
EOF
  echo "[]." >"$dir/enabled_plugins"
  echo "[]." >"$dir/advanced.config"
}

# A live process: a SIGKILLed VM lingers as a zombie until it is reaped, which kill -0 accepts.
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# A live Erlang VM of this cluster (its -home is the cluster's): after a reboot a stale pid file
# may name an unrelated process, which must be neither trusted nor killed.
ours() {
  alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "-home $CLUSTER_DIR/home "
}

node_pid() {
  local file
  file="$(node_dir "$1")/pid"
  [ -s "$file" ] && ours "$(cat "$file")" && cat "$file"
}

kill_node() {
  local pid
  pid=$(node_pid "$1") || die "node $1 is not running"
  kill -KILL "$pid"
  for _ in $(seq 1 100); do alive "$pid" || return 0; sleep 0.1; done
  die "node $1 (pid $pid) did not die within 10 s of SIGKILL"
}

start_node() {
  local n=$1
  if node_pid "$n" >/dev/null; then return 0; fi
  prepare_node "$n"
  (node_env "$n" && "$SBIN/rabbitmq-server" -detached) >>"$(node_dir "$n")/start.out" 2>&1
  wait_node "$n"
}

wait_node() {
  local n=$1
  local deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if CTL_TIMEOUT=10 ctl "$n" await_startup --timeout 5 >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  die "node $(node_name "$n") did not start within a minute: see $(node_dir "$n")/log and start.out"
}

joined() { ctl 1 cluster_status --formatter json 2>/dev/null | grep -q "\"$(node_name "$1")\""; }

join_node() {
  local n=$1
  joined "$n" && return 0
  ctl "$n" stop_app >/dev/null
  ctl "$n" join_cluster "$(node_name 1)" >/dev/null
  ctl "$n" start_app >/dev/null
}

stop_node() {
  local n=$1 pid
  pid=$(node_pid "$n" || true)
  [ -n "$pid" ] || return 0
  CTL_TIMEOUT=20 ctl "$n" stop >/dev/null 2>&1 || kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do alive "$pid" || return 0; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
}

urls() {
  local list=() n
  for n in "${NODES[@]}"; do list+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/"); done
  (IFS=,; echo "${list[*]}")
}

case "${1:-}" in
  start)
    # Nothing of ours running: whatever the folder holds is left by a run that died (pid files,
    # a half-joined cluster's data), so start from nothing.
    running=0
    for n in "${NODES[@]}"; do node_pid "$n" >/dev/null && running=1; done
    [ "$running" = 1 ] || rm -rf "$CLUSTER_DIR"
    for n in "${NODES[@]}"; do start_node "$n"; done
    for n in 2 3; do join_node "$n"; done
    echo "cluster up: $(urls)" >&2
    ;;
  stop)
    for n in "${NODES[@]}"; do stop_node "$n"; done
    rm -rf "$CLUSTER_DIR"
    ;;
  status)
    for n in "${NODES[@]}"; do
      echo "$(node_name "$n") amqp 127.0.0.1:$(amqp_port "$n") pid $(node_pid "$n" || echo down)"
    done
    ctl 1 cluster_status 2>/dev/null || ctl 2 cluster_status
    ;;
  urls) urls ;;
  pid) node_pid "${2:?node number}" || die "node ${2} is not running" ;;
  kill) kill_node "${2:?node number}" ;;
  start-node) start_node "${2:?node number}" ;;
  stop-node) stop_node "${2:?node number}" ;;
  ctl) n=${2:?node number}; shift 2; ctl "$n" "$@" ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
