#!/usr/bin/env bash
# API benchmark, Podium beside etcd 3.4 in one run on this machine.
#
# Starts `podium server` (SQLite, fsync on every commit) and `etcd` (its defaults: fsync on every
# commit) on free loopback ports with fresh data directories, drives both with bench/api_bench
# (the same clients, cycles of create+update+read, and one watcher), then prints each result,
# the ratios, and both servers' resident memory idle and after the load. Stops both by PID.
# With --store etcd, Podium keeps its state on that same etcd (--datastore): its writes/s and
# p99 beside etcd's own client on the etcd under it.
#
#   bench/api_bench.sh [--clients N] [--cycles N] [--store sqlite|etcd]
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=16
CYCLES=200
STORE=sqlite
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) CLIENTS=$2; shift 2 ;;
    --cycles) CYCLES=$2; shift 2 ;;
    --store) STORE=$2; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
BIN=build/podium
BENCH=build/bench/api_bench
[ -x "$BIN" ] && [ -x "$BENCH" ] || ./scripts/build.sh
command -v etcd >/dev/null || { echo "etcd is not installed (apt-get install etcd-server)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/podium-bench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS/ {print $2}' /proc/"$1"/status; }
hwm_kb() { awk '/^VmHWM/ {print $2}' /proc/"$1"/status; }

EPORT=$(free_port)
EPEER=$(free_port)
etcd --name bench --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$EPORT" \
  --advertise-client-urls "http://127.0.0.1:$EPORT" --listen-peer-urls "http://127.0.0.1:$EPEER" \
  --initial-advertise-peer-urls "http://127.0.0.1:$EPEER" --initial-cluster "bench=http://127.0.0.1:$EPEER" \
  --log-level error > "$WORK/etcd.log" 2>&1 &
EPID=$!
PIDS+=("$EPID")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$EPORT/health" >/dev/null && break; sleep 0.05; done
sleep 1

DATASTORE=""
[ "$STORE" = etcd ] && DATASTORE="--datastore etcd://127.0.0.1:$EPORT"
PPORT=$(free_port)
"$BIN" server --data-dir "$WORK/podium" --api-port "$PPORT" --registry-port "$(free_port)" --no-agent --log-level warn $DATASTORE > "$WORK/podium.log" 2>&1 &
PPID_=$!
PIDS+=("$PPID_")
for _ in $(seq 100); do [ -f "$WORK/podium/kubeconfig.yaml" ] && break; sleep 0.05; done

P_IDLE=$(rss_kb "$PPID_")
E_IDLE=$(rss_kb "$EPID")
T=$WORK/podium/tls
P_OUT=$("$BENCH" --target podium --url "https://127.0.0.1:$PPORT" --ca "$T/ca.crt" --cert "$T/admin.crt" --key "$T/admin.key" \
  --clients "$CLIENTS" --cycles "$CYCLES")
E_OUT=$("$BENCH" --target etcd --url "http://127.0.0.1:$EPORT" --clients "$CLIENTS" --cycles "$CYCLES")
P_HWM=$(hwm_kb "$PPID_")
E_HWM=$(hwm_kb "$EPID")

/usr/bin/python3 - "$P_OUT" "$E_OUT" "$P_IDLE" "$P_HWM" "$E_IDLE" "$E_HWM" "$STORE" <<'PY'
import json, sys
p, e = json.loads(sys.argv[1]), json.loads(sys.argv[2])
p_idle, p_hwm, e_idle, e_hwm = (int(x) / 1024 for x in sys.argv[3:7])
print("API benchmark: %d clients x %d cycles of create+update+read, one watcher; podium's store: %s" % (
    p["clients"], p["writes"] // 2 // p["clients"], sys.argv[7]))
print("%-8s %10s %10s %9s %9s %9s %9s %12s %7s" % ("target", "writes/s", "reads/s", "w p50ms", "w p99ms", "r p50ms", "r p99ms", "watch ev/s", "errors"))
for r in (p, e):
    print("%-8s %10.0f %10.0f %9.2f %9.2f %9.2f %9.2f %12.0f %7d" % (r["target"], r["writes_per_sec"], r["reads_per_sec"], r["write_p50_ms"],
          r["write_p99_ms"], r["read_p50_ms"], r["read_p99_ms"], r["watch_events_per_sec"], r["errors"]))
print("ratio podium/etcd: writes/s %.2fx, write p50 %.2fx, write p99 %.2fx, reads/s %.2fx, read p99 %.2fx" % (
    p["writes_per_sec"] / e["writes_per_sec"], p["write_p50_ms"] / e["write_p50_ms"], p["write_p99_ms"] / e["write_p99_ms"],
    p["reads_per_sec"] / e["reads_per_sec"], p["read_p99_ms"] / e["read_p99_ms"]))
print("watch: podium delivered %d events, etcd %d" % (p["watch_events"], e["watch_events"]))
print("RSS MiB: podium idle %.1f, peak %.1f; etcd idle %.1f, peak %.1f" % (p_idle, p_hwm, e_idle, e_hwm))
PY
