#!/usr/bin/env bash
# bench-vs-incumbent.sh: the SBC against Kamailio + rtpengine, side by
# side in one session on this machine, with the shared harness
# (../shared/bench/kamailio-rtpengine/run.sh). It builds the SBC, starts
# the incumbent from its Debian packages, runs both findcps series and
# both media runs, stops everything it started (by PID), and prints the
# ratios the performance issue asks for:
#   - the highest call rate each passes (0 failed calls) and their ratio;
#   - CPU per call at the highest rate both pass;
#   - media relay: packets relayed per CPU-second of the relay (rtpengine's
#     own counters; the SBC's sbc_media_relayed_packets_total over the run,
#     and over a steady window once every call is up).
#
# Long: about 20 s per rate and per target plus the media runs. Not run in
# CI. Knobs (environment):
#   RATES="400 600 800 1000 1200 1500 2000"  call rates tried, in order
#   FIND_DURATION=20                         seconds per rate
#   MEDIA_CALLS=400 MEDIA_SECONDS=30         concurrent G.711 calls, hold
#   HARNESS=../shared/bench/kamailio-rtpengine
#   BENCH_OUT=/tmp/sbc-bench                 where everything is written
set -euo pipefail
cd "$(dirname "$0")/.."

HARNESS="${HARNESS:-$(pwd)/../shared/bench/kamailio-rtpengine}"
RATES="${RATES:-400 600 800 1000 1200 1500 2000}"
export FIND_DURATION="${FIND_DURATION:-20}"
MEDIA_CALLS="${MEDIA_CALLS:-400}"
MEDIA_SECONDS="${MEDIA_SECONDS:-30}"
export BENCH_OUT="${BENCH_OUT:-/tmp/sbc-bench}"
OUT="$BENCH_OUT/vs-$(date -u +%Y%m%d-%H%M%S)"
SIP=127.0.0.1:26060
ADMIN=127.0.0.1:26090
RTP_PORTS=36000-39999
mkdir -p "$OUT"

if [ ! -x "$HARNESS/run.sh" ]; then
	echo "bench-vs-incumbent: no harness at $HARNESS (set HARNESS)" >&2
	exit 2
fi

echo "==> building the SBC ($(git rev-parse --short HEAD))"
go build -o "$OUT/sbc" ./cmd/sbc

. scripts/sbc-bench-lib.sh
bench_config warn

INCUMBENT=""
cleanup() {
	stop_sbc
	if [ -n "$INCUMBENT" ]; then "$HARNESS/run.sh" stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# cpu_ticks prints the user+system clock ticks a process has used.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# metric prints the sum of the samples of one metric of the running SBC.
metric() {
	curl -fsS "http://$ADMIN/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%d", s }'
}

# best prints the highest rate that passed in a findcps series (0: none).
best() { grep -h "	cps	" "$1" | awk '/\tPASS\t/ { for (i = 1; i <= NF; i++) if ($i ~ /^rate=/) { split($i, a, "="); r = a[2] } } END { print r + 0 }'; }

# cpu_at prints sbc_cpu% of a findcps series at one rate.
cpu_at() { grep -h "	rate=$2	" "$1" | head -n 1 | tr '\t' '\n' | sed -n 's/^sbc_cpu%=//p'; }

echo "==> the incumbent: Kamailio + rtpengine"
"$HARNESS/run.sh" start
INCUMBENT=1
# shellcheck disable=SC2086 # RATES is a list
"$HARNESS/run.sh" findcps kam-rtp $RATES | tee "$OUT/cps-incumbent.txt"

echo "==> the SBC"
start_sbc
# shellcheck disable=SC2086
SBC_PIDS="$SBC_PID" SBC_RTP_PORTS="$RTP_PORTS" LABEL=sbc "$HARNESS/run.sh" findcps "$SIP" $RATES | tee "$OUT/cps-sbc.txt"
stop_sbc

echo "==> media: $MEDIA_CALLS calls for ${MEDIA_SECONDS}s through the incumbent"
SETUP_RATE=50 "$HARNESS/run.sh" media "$MEDIA_CALLS" "$MEDIA_SECONDS" kam-rtp | tee "$OUT/media-incumbent.txt"

echo "==> media: $MEDIA_CALLS calls for ${MEDIA_SECONDS}s through the SBC"
start_sbc
before=$(metric sbc_media_relayed_packets_total)
ticks0=$(cpu_ticks "$SBC_PID")
# The steady window: every call up (ramp at 50/s, + 2 s), 10 s long. The
# relayed-packet counter counts live calls, so it can be read at any time.
(
	sleep $((MEDIA_CALLS / 50 + 3))
	p0=$(metric sbc_media_relayed_packets_total) c0=$(cpu_ticks "$SBC_PID")
	sleep 10
	p1=$(metric sbc_media_relayed_packets_total) c1=$(cpu_ticks "$SBC_PID")
	echo "$((p1 - p0)) $((c1 - c0))" >"$OUT/media-sbc-steady.txt"
) &
steady_pid=$!
SETUP_RATE=50 SBC_PIDS="$SBC_PID" SBC_RTP_PORTS="$RTP_PORTS" LABEL=sbc \
	"$HARNESS/run.sh" media "$MEDIA_CALLS" "$MEDIA_SECONDS" "$SIP" | tee "$OUT/media-sbc.txt"
for _ in $(seq 1 150); do # calls count their packets when they end
	[ "$(metric sbc_calls_active)" = 0 ] && break
	sleep 0.2
done
wait "$steady_pid" || true
relayed=$(($(metric sbc_media_relayed_packets_total) - before))
ticks=$(($(cpu_ticks "$SBC_PID") - ticks0))
stop_sbc
"$HARNESS/run.sh" stop >/dev/null
INCUMBENT=""

inc_best=$(best "$OUT/cps-incumbent.txt")
sbc_best=$(best "$OUT/cps-sbc.txt")
common=$((inc_best < sbc_best ? inc_best : sbc_best))
inc_media=$(grep -h "	media	" "$OUT/media-incumbent.txt" | tail -n 1)
sbc_media=$(grep -h "	media	" "$OUT/media-sbc.txt" | tail -n 1)
inc_pps=$(field "$inc_media" run_relayed_per_rtpe_cpu_s)
# Both over the whole run, as the harness counts rtpengine's: packets
# relayed from the first call to the last, per CPU-second of the relay.
sbc_cpu_s=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }')
sbc_pps=$(awk -v p="$relayed" -v s="$sbc_cpu_s" 'BEGIN { if (s > 0) printf "%.0f", p / s; else print "n/a" }')

{
	echo
	echo "================ SBC ($(git rev-parse --short HEAD)) against Kamailio + rtpengine ================"
	echo "results: $OUT"
	echo "call rate passed (0 failed, ${FIND_DURATION}s per rate): incumbent $inc_best/s, SBC $sbc_best/s," \
		"ratio $(awk -v a="$sbc_best" -v b="$inc_best" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
	if [ "$common" -gt 0 ]; then
		echo "CPU per call at $common/s: incumbent $(awk -v c="$(cpu_at "$OUT/cps-incumbent.txt" "$common")" -v r="$common" 'BEGIN { printf "%.2f", c / 100 / r * 1000 }') ms," \
			"SBC $(awk -v c="$(cpu_at "$OUT/cps-sbc.txt" "$common")" -v r="$common" 'BEGIN { printf "%.2f", c / 100 / r * 1000 }') ms"
	fi
	echo "media relay, $MEDIA_CALLS calls: incumbent $inc_pps packets per rtpengine CPU-second," \
		"SBC $sbc_pps ($relayed packets over $sbc_cpu_s CPU-seconds), ratio" \
		"$(awk -v a="$sbc_pps" -v b="$inc_pps" 'BEGIN { if (b + 0 > 0 && a + 0 > 0) printf "%.2f", a / b; else print "n/a" }')"
	read -r st_pkts st_ticks <"$OUT/media-sbc-steady.txt" || true
	echo "media relay, steady 10 s: SBC $(awk -v p="${st_pkts:-0}" -v t="${st_ticks:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (t > 0) printf "%.0f", p / (t / hz); else print "n/a" }') packets per CPU-second" \
		"(${st_pkts:-?} packets); incumbent $(field "$inc_media" rtpe_pps_avg) packets/s at $(field "$inc_media" rtpengine_cpu%)% of a core"
	echo "media drops on the SBC's ports: $(field "$sbc_media" drops_sbc_ports), failed calls: $(field "$sbc_media" failed)"
} | tee "$OUT/summary.txt"
