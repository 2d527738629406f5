#!/usr/bin/env bash
# load-media.sh: many concurrent calls with media through the SBC, measured
# by cmd/sbc-load. It builds the SBC and the tool, writes a config (UDP
# and WSS listeners, admin with metrics on loopback, every call routed to
# the tool's echo UAS, loopback exempt from the per-source limits), and for
# each mode starts a fresh SBC, runs the tool against it (the SBC's CPU
# read from /proc/<pid>/stat over the tool's steady window) and stops the
# SBC by PID. Not run in CI.
#
#   scripts/load-media.sh [webrtc|rtp|both]     (default both)
#
# Run it under the shared lock on a shared machine:
#   flock /work/bench.lock scripts/load-media.sh webrtc
#
# Knobs (environment):
#   WEBRTC_CALLS=500 RTP_CALLS=1000  concurrent calls per mode
#   HOLD=60s                          the measured window (all calls up)
#   RATE=50                           calls set up (and hung up) per second
#   SRC=127.0.0.1                     the callers' addresses (comma list)
#   METRIC=sbc_media_relayed_packets_total  the SBC's relayed-packets counter
#                                     (live: it moves during the window;
#                                     RTP and RTCP summed)
#   WEBRTC_PORT=0                     >0: media.webrtc_port, one UDP port
#                                     shared by every WebRTC side (0: one
#                                     port per call from rtp_ports)
#   PERF_SECONDS=0                    >0: perf-record the SBC (user space,
#                                     call graphs) for that long once the
#                                     calls are up; perf report on
#                                     $LOAD_OUT/.../perf-<mode>.data
#   PERF_EVENT=cpu-clock:u            perf's event (cpu-clock: the kernel too)
#   SYSCALL_SECONDS=0                 >0: perf stat the SBC's system calls
#                                     (io_uring_enter, epoll_pwait, sendto,
#                                     recvmmsg, futex) and context switches
#                                     for that long, from PPROF_AT seconds
#                                     after the load tool starts; printed
#                                     after the tool's report
#   PPROF_SECONDS=0                   >0: take a Go CPU profile of the SBC
#                                     (/debug/pprof/profile) for that long,
#                                     PPROF_AT=28 seconds after the load tool
#                                     starts; go tool pprof -top on
#                                     $LOAD_OUT/.../pprof-<mode>.pb.gz
#   TOOL_PPROF=0                      1: a Go CPU profile of sbc-load itself
#                                     over the window, in
#                                     $LOAD_OUT/.../tool-pprof-<mode>.pb.gz
#   LOAD_OUT=/tmp/sbc-load-media      where everything is written
#   PREBUILT=                         a directory holding sbc and sbc-load
#                                     built already (outside the lock): used
#                                     instead of building them
set -euo pipefail
cd "$(dirname "$0")/.."

MODES="${1:-both}"
[ "$MODES" = both ] && MODES="webrtc rtp"
WEBRTC_CALLS="${WEBRTC_CALLS:-500}"
RTP_CALLS="${RTP_CALLS:-1000}"
HOLD="${HOLD:-60s}"
RATE="${RATE:-50}"
SRC="${SRC:-127.0.0.1}"
METRIC="${METRIC:-sbc_media_relayed_packets_total}"
PERF_SECONDS="${PERF_SECONDS:-0}"
PERF_EVENT="${PERF_EVENT:-cpu-clock:u}"
SYSCALL_SECONDS="${SYSCALL_SECONDS:-0}"
PPROF_SECONDS="${PPROF_SECONDS:-0}"
PPROF_AT="${PPROF_AT:-28}"
TOOL_PPROF="${TOOL_PPROF:-0}"
WEBRTC_PORT="${WEBRTC_PORT:-0}"
OUT="${LOAD_OUT:-/tmp/sbc-load-media}/$(date -u +%Y%m%d-%H%M%S)"
SIP=127.0.0.1:27060
WSS=127.0.0.1:27443
ADMIN=127.0.0.1:27090
UAS=127.0.0.1:27080
mkdir -p "$OUT"

if [ -n "${PREBUILT:-}" ]; then
	echo "==> the SBC and sbc-load of $PREBUILT, in $OUT"
	cp "$PREBUILT/sbc" "$PREBUILT/sbc-load" "$OUT/"
else
	echo "==> building the SBC and sbc-load ($(git rev-parse --short HEAD)) into $OUT"
	go build -o "$OUT/sbc" ./cmd/sbc
	go build -o "$OUT/sbc-load" ./cmd/sbc-load
fi

cat >"$OUT/sbc.yaml" <<YAML
node_id: load-1
log: {level: warn, format: text}
sip:
  listeners:
    - {name: udp, transport: udp, addr: "$SIP"}
    - {name: wss, transport: wss, addr: "$WSS"}
  max_conns_per_ip: 0
  ring_timeout: 30s
media:
  bind_ip: 127.0.0.1
  rtp_ports: 30000-39999
  webrtc_port: $WEBRTC_PORT
trunks:
  - {name: uas, uri: "sip:$UAS", options_interval: 0}
routes:
  - {name: everything, match: {}, target: trunks, trunks: [uas], trusted_sources: ["127.0.0.0/8"]}
policy:
  rate_limit: {exempt_cidrs: ["127.0.0.0/8"]}
  bans: {file: $OUT/bans.json, exempt_cidrs: ["127.0.0.0/8"]}
cdr:
  - {type: jsonl, dir: $OUT/cdr}
cdr_spool: $OUT/spool
admin: {addr: "$ADMIN"}
YAML
"$OUT/sbc" -check -config "$OUT/sbc.yaml"

SBC_PID=""
stop_sbc() {
	if [ -n "$SBC_PID" ] && kill -0 "$SBC_PID" 2>/dev/null; then
		kill "$SBC_PID"
		wait "$SBC_PID" 2>/dev/null || true
	fi
	SBC_PID=""
}
trap stop_sbc EXIT

start_sbc() {
	rm -rf "$OUT/spool" "$OUT/cdr"
	"$OUT/sbc" -config "$OUT/sbc.yaml" >>"$OUT/sbc.log" 2>&1 &
	SBC_PID=$!
	for _ in $(seq 1 100); do
		if curl -fsS "http://$ADMIN/readyz" >/dev/null 2>&1; then return 0; fi
		kill -0 "$SBC_PID" 2>/dev/null || break
		sleep 0.2
	done
	echo "load-media: the SBC did not become ready; its log: $OUT/sbc.log" >&2
	tail -n 5 "$OUT/sbc.log" >&2
	exit 1
}

status=0
for mode in $MODES; do
	calls=$WEBRTC_CALLS
	[ "$mode" = rtp ] && calls=$RTP_CALLS
	echo "==> $mode: $calls calls at $RATE/s, held $HOLD"
	start_sbc
	PERF_PID=""
	if [ "$PERF_SECONDS" -gt 0 ]; then
		# from about when the last call is up (the ramp plus a margin)
		(sleep $((calls / RATE + 5)) && exec perf record -q -F 499 -g -e "$PERF_EVENT" -p "$SBC_PID" \
			-o "$OUT/perf-$mode.data" -- sleep "$PERF_SECONDS") >"$OUT/perf-$mode.log" 2>&1 &
		PERF_PID=$!
	fi
	PPROF_PID=""
	if [ "$PPROF_SECONDS" -gt 0 ]; then
		(sleep "$PPROF_AT" && exec curl -fsS -o "$OUT/pprof-$mode.pb.gz" \
			"http://$ADMIN/debug/pprof/profile?seconds=$PPROF_SECONDS") >"$OUT/pprof-$mode.log" 2>&1 &
		PPROF_PID=$!
	fi
	STAT_PID=""
	if [ "$SYSCALL_SECONDS" -gt 0 ]; then
		(sleep "$PPROF_AT" && exec perf stat -x, -o "$OUT/syscalls-$mode.csv" -p "$SBC_PID" \
			-e syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_sendto \
			-e syscalls:sys_enter_recvmmsg,syscalls:sys_enter_futex,context-switches \
			-- sleep "$SYSCALL_SECONDS") >"$OUT/syscalls-$mode.log" 2>&1 &
		STAT_PID=$!
	fi
	TOOL_FLAGS=()
	[ "$TOOL_PPROF" = 1 ] && TOOL_FLAGS=(-cpuprofile "$OUT/tool-pprof-$mode.pb.gz")
	"$OUT/sbc-load" "${TOOL_FLAGS[@]}" -mode "$mode" -calls "$calls" -rate "$RATE" -hold "$HOLD" -timeout 5m \
		-sip "$SIP" -wss "$WSS" -uas "$UAS" -src "$SRC" -sbc-pid "$SBC_PID" \
		-metrics "http://$ADMIN/metrics" -metric "$METRIC" | tee "$OUT/$mode.txt" || status=$?
	if [ -n "$PERF_PID" ]; then wait "$PERF_PID" || true; fi
	if [ -n "$PPROF_PID" ]; then wait "$PPROF_PID" || true; fi
	if [ -n "$STAT_PID" ]; then
		wait "$STAT_PID" || true
		# "count,,event,..." lines: the count and the event's name.
		grep -v '^#' "$OUT/syscalls-$mode.csv" 2>/dev/null | awk -F, -v s="$SYSCALL_SECONDS" \
			'NF > 2 && $1 != "" { sub(/^syscalls:sys_enter_/, "", $3); printf "  %s in %s s: %s\n", $3, s, $1 }' \
			| tee -a "$OUT/$mode.txt" || true
	fi
	# The WebRTC transports' own counters (early, not_ready, unrouted,
	# mux_direct, ...), for where a lost packet went.
	curl -fsS "http://$ADMIN/metrics" 2>/dev/null | grep '^sbc_webrtc_packets_total' \
		| sed 's/^sbc_webrtc_packets_total{kind="\(.*\)"} /\1=/' | sort | tr '\n' ' ' \
		| sed 's/^/  sbc webrtc counters: /; s/ $/\n/' | tee -a "$OUT/$mode.txt" || true
	stop_sbc
done
echo "==> results in $OUT"
exit "$status"
