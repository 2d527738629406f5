#!/usr/bin/env bash
# bench-overload.sh: the SBC under the shared harness
# (../shared/bench/kamailio-rtpengine/run.sh) with the overload control
# set by OVERLOAD_DELAY (sip.overload_delay; 0 = off), for the
# congestion-collapse measure of the performance issue: find the passing
# rate P, then offer 2P with and without the control.
#
#   scripts/bench-overload.sh findcps RATE...   run.sh findcps over the rates
#   scripts/bench-overload.sh cps RATE SECONDS  run.sh cps once
#   scripts/bench-overload.sh ua RATE SECONDS   the same calls from a UAC that
#       behaves as a real UA on 503 (scripts/sipp/uac-503.xml: ACK, call over;
#       the harness's UAC ignores the 503 and retransmits), to the harness's
#       UAS (scenarios/uas.xml, started here by PID); prints per second the
#       calls completed, refused with 503 and failed (SIPp's stat CSV) beside
#       the SBC's overload metrics, and passes when in every second after the
#       first SETTLE (3) at least 90 % of PASSING (RATE/2) calls completed.
#
# After the run it prints the SBC's overload metrics (new calls refused
# with 503, datagrams the kernel dropped from the socket buffer or our
# queues dropped). Run it under the shared lock: flock /work/bench.lock ...
# Knobs: OVERLOAD_DELAY=50ms (the default), BINARY (a built sbc; default: build one) and REVISION (its commit),
# BENCH_OUT=/tmp/sbc-bench, HARNESS=../shared/bench/kamailio-rtpengine, RTP_PORTS=36000-39999 (the SBC's
# media ports; under 2x load at 4000/s they ran out: "no free RTP ports", a 503 after set-up)
set -euo pipefail
cd "$(dirname "$0")/.."

HARNESS="${HARNESS:-$(pwd)/../shared/bench/kamailio-rtpengine}"
export BENCH_OUT="${BENCH_OUT:-/tmp/sbc-bench}"
OVERLOAD_DELAY="${OVERLOAD_DELAY:-50ms}"
OUT="$BENCH_OUT/overload-$(date -u +%Y%m%d-%H%M%S)"
SIP=127.0.0.1:26060
ADMIN=127.0.0.1:26090
RTP_PORTS="${RTP_PORTS:-36000-39999}" # the SBC's media ports: 2 s of quarantine each after a call
mkdir -p "$OUT"

if [ -n "${BINARY:-}" ]; then # a binary built before (the worktree may have moved on)
	cp "$BINARY" "$OUT/sbc"
else
	go build -o "$OUT/sbc" ./cmd/sbc
fi
. scripts/sbc-bench-lib.sh
bench_config info "overload_delay: $OVERLOAD_DELAY"
. scripts/bench-overload-ua.sh
trap 'ua_stop; ua_stop_sbc' EXIT
start_sbc

echo "==> SBC ${REVISION:-$(git rev-parse --short HEAD)}, sip.overload_delay=$OVERLOAD_DELAY"
case "$1" in
findcps) shift; args=(findcps "$SIP" "$@") ;;
cps) args=(cps "$2" "$3" "$SIP") ;;
ua) ua_run "$2" "$3" | tee "$OUT/run.txt" || true; args=() ;;
*) echo "usage: $0 findcps RATE... | cps RATE SECONDS | ua RATE SECONDS" >&2; exit 2 ;;
esac
if [ "${#args[@]}" -gt 0 ]; then
	SBC_PIDS="$SBC_PID" SBC_RTP_PORTS="$RTP_PORTS" LABEL="sbc-overload-$OVERLOAD_DELAY" \
		"$HARNESS/run.sh" "${args[@]}" | tee "$OUT/run.txt" || true
fi

curl -fsS "http://$ADMIN/metrics" | grep -E '^sbc_(overload|overloaded|sip_standing|sip_transport_dropped_total|calls_active|sip_queue_delay_seconds_(count|sum|bucket\{le="(0.005|0.02|0.1|0.5)"))' || true
grep -E 'overload' "$OUT/sbc.log" | head -n 20 || true
# 503s the overload control did not send: calls refused once set up, by cause
echo "calls refused after set-up: $(grep -c 'msg="call refused"' "$OUT/sbc.log" || true), of them no free RTP ports: $(grep -c 'no free RTP ports' "$OUT/sbc.log" || true)"
