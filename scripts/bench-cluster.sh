#!/usr/bin/env bash
# bench-cluster.sh: what sharing state in Redis costs per call. With the
# shared harness (../shared/bench/kamailio-rtpengine, `cps`), in one
# session: the SBC alone (no cluster section), then the same SBC as node 1
# of a three-node cluster on this machine (redis-server from Debian, two
# more SBC processes idle but heartbeating and sharing), calls entering
# node 1 toward the harness's UAS. Prints the CPU per call of the node
# taking the calls, and of the rest of the cluster (two SBCs and Redis).
#
# The machine has two cores: three nodes and Redis on it measure what
# sharing costs, not how a cluster scales. Not run in CI. Knobs:
#   RATE=400 DURATION=20   calls per second and seconds per run
#   HARNESS=../shared/bench/kamailio-rtpengine  BENCH_OUT=/tmp/sbc-bench
set -euo pipefail
cd "$(dirname "$0")/.."

HARNESS="${HARNESS:-$(pwd)/../shared/bench/kamailio-rtpengine}"
RATE="${RATE:-400}"
DURATION="${DURATION:-20}"
export BENCH_OUT="${BENCH_OUT:-/tmp/sbc-bench}"
OUT="$BENCH_OUT/cluster-$(date -u +%Y%m%d-%H%M%S)"
SIP=127.0.0.1:26060
ADMIN=127.0.0.1:26090
RTP_PORTS=36000-39999
REDIS_IP=127.0.0.15 REDIS_PORT=26379
mkdir -p "$OUT"
command -v redis-server >/dev/null || { echo "bench-cluster: redis-server missing (apt-get install redis-server)" >&2; exit 2; }
[ -x "$HARNESS/run.sh" ] || { echo "bench-cluster: no harness at $HARNESS (set HARNESS)" >&2; exit 2; }

echo "==> building the SBC ($(git rev-parse --short HEAD))"
go build -o "$OUT/sbc" ./cmd/sbc
. scripts/sbc-bench-lib.sh

REDIS_PID="" PEER_PIDS=""
cleanup() {
	stop_sbc
	for p in $PEER_PIDS $REDIS_PID; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT

# cluster_section prints the cluster keys of a node whose internal SIP
# port is $1.
cluster_section() {
	cat <<YAML
cluster:
  redis: {addrs: ["$REDIS_IP:$REDIS_PORT"]}
  internal_addr: 127.0.0.1:$1
  secret: bench-cluster-secret-0123456789
YAML
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
per_call() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$2" 'BEGIN { if (n > 0) printf "%.3f", t / hz / n * 1000; else print "n/a" }'; }
line() { grep -h "	cps	" "$1" | tail -n 1; }

run_cps() { # label
	SBC_PIDS="$SBC_PID" SBC_RTP_PORTS="$RTP_PORTS" LABEL="$1" "$HARNESS/run.sh" cps "$RATE" "$DURATION" "$SIP" | tee "$OUT/cps-$1.txt"
}

echo "==> one node, no cluster"
bench_config warn
start_sbc
run_cps single
stop_sbc

echo "==> node 1 of three, Redis at $REDIS_IP:$REDIS_PORT"
redis-server --bind "$REDIS_IP" --port "$REDIS_PORT" --save "" --appendonly no --daemonize no --loglevel warning >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 1 50); do
	redis-cli -h "$REDIS_IP" -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
	sleep 0.1
done
for i in 2 3; do
	cat >"$OUT/peer$i.yaml" <<YAML
node_id: bench-$i
log: {level: warn, format: text}
sip:
  listeners: [{name: udp, transport: udp, addr: "127.0.0.1:2606$i"}]
media: {bind_ip: 127.0.0.1, rtp_ports: 3${i}000-3${i}999}
cdr: []
cdr_spool: $OUT/spool$i
policy: {bans: {file: $OUT/bans$i.json}}
admin: {addr: ""}
$(cluster_section "2607$i")
YAML
	"$OUT/sbc" -config "$OUT/peer$i.yaml" >"$OUT/peer$i.log" 2>&1 &
	PEER_PIDS="$PEER_PIDS $!"
done
bench_config warn
cluster_section 26071 >>"$OUT/sbc.yaml"
start_sbc
peer0=0
for p in $PEER_PIDS; do peer0=$((peer0 + $(cpu_ticks "$p"))); done
redis0=$(cpu_ticks "$REDIS_PID")
run_cps cluster
peer1=0
for p in $PEER_PIDS; do peer1=$((peer1 + $(cpu_ticks "$p"))); done
redis1=$(cpu_ticks "$REDIS_PID")
nodes=$(curl -fsS "http://$ADMIN/api/v1/cluster" | grep -o '"id"' | wc -l)
stop_sbc

single=$(line "$OUT/cps-single.txt")
clustered=$(line "$OUT/cps-cluster.txt")
c_ok=$(field "$clustered" ok)
ms() { awk -v c="$1" -v r="$RATE" 'BEGIN { printf "%.3f", c / 100 / r * 1000 }'; }
{
	echo
	echo "================ cluster cost ($(git rev-parse --short HEAD), $RATE calls/s for ${DURATION}s) ================"
	echo "results: $OUT"
	echo "one node, no cluster: ok=$(field "$single" ok) failed=$(field "$single" failed), $(ms "$(field "$single" sbc_cpu%)") ms CPU per call"
	echo "node 1 of $nodes nodes listed (Redis shared): ok=$c_ok failed=$(field "$clustered" failed), $(ms "$(field "$clustered" sbc_cpu%)") ms CPU per call on node 1"
	echo "the rest of the cluster over the same run: the other two nodes $(per_call $((peer1 - peer0)) "$c_ok") ms per call, Redis $(per_call $((redis1 - redis0)) "$c_ok") ms per call"
} | tee "$OUT/summary.txt"
