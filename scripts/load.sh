#!/usr/bin/env bash
# scripts/load.sh: how many calls per second the SBC completes without a
# single failure, measured with SIPp.
#
#   SIPp UAC (127.0.0.2) ──▶ SBC (127.0.0.1) ──▶ SIPp UAS (127.0.0.3)
#
# Builds cmd/sbc, writes a config routing every call to one trunk (the UAS),
# starts the SBC and the UAS, then runs call_caller_bye_uac.xml at rising
# rates. Each step places RATE*STEP_SECS calls; the run stops at the first
# step with a failure. Prints a table and the highest rate completed with
# zero failed calls. Bounded: each step is killed after STEP_TIMEOUT seconds
# and no new step starts after MAX_SECS.
#
# Environment (defaults in brackets):
#   RATES        calls per second, in order   [50 100 200 400 800 1600]
#   STEP_SECS    seconds of traffic per step  [10]
#   HOLD_MS      call duration (SIPp -d)      [500]
#   TRANSPORT    u1 (UDP) or t1 (TCP)         [u1]
#   TARGET       sbc, or uas to call the UAS directly without building or
#                starting the SBC (checks this script and SIPp itself) [sbc]
#   SBC_PORT, UAS_PORT, UAC_PORT   SIP ports  [15060, 15070, 15080 + step]
#   STEP_TIMEOUT [40]   MAX_SECS [240]   KEEP=1 keeps the work directory
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

RATES=${RATES:-"50 100 200 400 800 1600"}
STEP_SECS=${STEP_SECS:-10}
HOLD_MS=${HOLD_MS:-500}
TRANSPORT=${TRANSPORT:-u1}
TARGET=${TARGET:-sbc}
SBC_IP=127.0.0.1
UAS_IP=127.0.0.3
UAC_IP=127.0.0.2
SBC_PORT=${SBC_PORT:-15060}
UAS_PORT=${UAS_PORT:-15070}
UAC_PORT=${UAC_PORT:-15080}
STEP_TIMEOUT=${STEP_TIMEOUT:-40}
MAX_SECS=${MAX_SECS:-240}
scenarios=$root/test/sipp

case $TRANSPORT in
u1) proto=udp ;;
t1) proto=tcp ;;
*) echo "TRANSPORT must be u1 or t1, not $TRANSPORT" >&2; exit 2 ;;
esac
case $TARGET in
sbc | uas) ;;
*) echo "TARGET must be sbc or uas, not $TARGET" >&2; exit 2 ;;
esac
command -v sipp >/dev/null || { echo "sipp not found: install sip-tester (scripts/test.sh does)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/sbc-load.XXXXXX")
sbc_pid="" uas_pid=""

# stop, hexaddr, bound, wait_bound, column: shared with scripts/bench-flood.sh.
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# cleanup stops only the processes this script started, by PID.
cleanup() {
	stop "$uas_pid" "$sbc_pid"
	if [ "${KEEP:-0}" = 1 ]; then
		echo "work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

require_free() {
	if bound "$1" "$2" "$3"; then
		echo "$1 $2:$3 is in use: set ${4}_PORT to a free port" >&2
		exit 1
	fi
}

# ------------------------------------------------------------- the callee --

require_free "$proto" "$UAS_IP" "$UAS_PORT" UAS
log_uas=$work/uas.log
sipp -sf "$scenarios/call_caller_bye_uas.xml" -t "$TRANSPORT" -i "$UAS_IP" -p "$UAS_PORT" -bind_local \
	-ci "$UAS_IP" -cp "$((UAS_PORT + 1))" -nostdin \
	-trace_stat -stf "$work/uas.csv" -fd 1 -trace_err -error_file "$work/uas_errors.log" \
	-max_recv_loops 10000 -max_sched_loops 10000 \
	</dev/null >/dev/null 2>"$log_uas" &
uas_pid=$!
wait_bound "$proto" "$UAS_IP" "$UAS_PORT" "$uas_pid" uas

# ---------------------------------------------------------------- the SBC --

if [ "$TARGET" = sbc ]; then
	require_free udp "$SBC_IP" "$SBC_PORT" SBC
	require_free tcp "$SBC_IP" "$SBC_PORT" SBC
	echo "==> go build ./cmd/sbc"
	go build -o "$work/sbc" ./cmd/sbc
	cat >"$work/sbc.yaml" <<EOF
node_id: load-1
log:
  level: warn
  format: text
sip:
  listeners:
    - {name: udp, transport: udp, addr: "$SBC_IP:$SBC_PORT"}
    - {name: tcp, transport: tcp, addr: "$SBC_IP:$SBC_PORT"}
  ring_timeout: 30s
media:
  bind_ip: $SBC_IP
  rtp_ports: 30000-39999
trunks:
  - name: uas
    uri: "sip:$UAS_IP:$UAS_PORT;transport=$proto"
    options_interval: 0
routes:
  - name: everything
    match: {}
    target: trunks
    trunks: [uas]
    # The load generator stands for a trusted PBX: no digest on its calls.
    trusted_sources: ["$UAC_IP"]
# One source placing up to 1600 calls/s: exempt from the per-source rate
# limits (as a PBX would be), bans kept in the work directory.
policy:
  rate_limit:
    exempt_cidrs: ["$UAC_IP"]
  bans:
    file: $work/bans.json
cdr:
  - type: jsonl
    dir: $work/cdr
admin:
  addr: ""
EOF
	"$work/sbc" -check -config "$work/sbc.yaml"
	"$work/sbc" -config "$work/sbc.yaml" </dev/null >"$work/sbc.log" 2>&1 &
	sbc_pid=$!
	wait_bound "$proto" "$SBC_IP" "$SBC_PORT" "$sbc_pid" sbc
	remote=$SBC_IP:$SBC_PORT
else
	remote=$UAS_IP:$UAS_PORT
fi

# ------------------------------------------------------------ the callers --

echo "==> $TARGET over $TRANSPORT: rates $RATES cps, $STEP_SECS s per step, calls of $HOLD_MS ms"
best=0
step=0
uas_failed_before=0
rows=()
for rate in $RATES; do
	if [ "$SECONDS" -ge "$MAX_SECS" ]; then
		echo "time budget of ${MAX_SECS}s spent: no step at $rate cps"
		break
	fi
	step=$((step + 1))
	calls=$((rate * STEP_SECS))
	limit=$((rate * 3 + 100)) # concurrent calls: room for 3 s of latency
	port=$((UAC_PORT + 2 * step)) # a fresh port per step: no TCP TIME_WAIT clash
	stats=$work/uac_$rate.csv
	start=$SECONDS
	set +e
	timeout --kill-after=5 "$STEP_TIMEOUT" \
		sipp "$remote" -sf "$scenarios/call_caller_bye_uac.xml" -t "$TRANSPORT" \
		-i "$UAC_IP" -p "$port" -bind_local -ci "$UAC_IP" -cp "$((port + 1))" -nostdin \
		-s load -d "$HOLD_MS" -r "$rate" -m "$calls" -l "$limit" \
		-timeout "$((STEP_TIMEOUT - 5))" -timeout_error \
		-max_recv_loops 10000 -max_sched_loops 10000 \
		-trace_stat -stf "$stats" -trace_err -error_file "$work/uac_${rate}_errors.log" \
		</dev/null >/dev/null 2>"$work/uac_$rate.log"
	code=$?
	set -e
	elapsed=$((SECONDS - start))
	ok=$(column "$stats" 'SuccessfulCall(C)' 2>/dev/null || echo 0)
	failed=$(column "$stats" 'FailedCall(C)' 2>/dev/null || echo "?")
	retrans=$(column "$stats" 'Retransmissions(C)' 2>/dev/null || echo "?")
	sleep 1.5 # the UAS dumps its counters every second
	uas_failed_now=$(column "$work/uas.csv" 'FailedCall(C)' 2>/dev/null || echo 0)
	uas_failed=$((uas_failed_now - uas_failed_before))
	uas_failed_before=$uas_failed_now
	verdict=FAIL
	if [ "$code" -eq 0 ] && [ "$ok" -eq "$calls" ] && [ "$failed" = 0 ] && [ "$uas_failed" -eq 0 ]; then
		verdict=ok
		best=$rate
	fi
	case $code in
	124 | 137) code="$code (killed)" ;;
	esac
	rows+=("$(printf '%6s %7s %10s %7s %8s %11s %12s %8s  %s' "$rate" "$calls" "$ok" "$failed" "$retrans" \
		"$uas_failed" "$code" "$elapsed" "$verdict")")
	echo "${rows[-1]}"
	[ "$verdict" = ok ] || break
done

echo
echo "SIPp load: $TARGET over $TRANSPORT, calls of $HOLD_MS ms"
printf '%6s %7s %10s %7s %8s %11s %12s %8s  %s\n' cps calls successful failed retrans "uas failed" "sipp exit" seconds verdict
for row in "${rows[@]}"; do echo "$row"; done
echo
if [ "$best" -gt 0 ]; then
	echo "highest rate with zero failed calls: $best cps"
else
	echo "no rate completed without failures (logs: KEEP=1 keeps $work)"
	exit 1
fi
