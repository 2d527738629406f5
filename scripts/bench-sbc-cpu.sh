#!/usr/bin/env bash
# bench-sbc-cpu.sh: CPU per call of prebuilt SBC binaries alone (no
# incumbent), back to back, with the shared harness's `cps` run
# (../shared/bench/kamailio-rtpengine/run.sh): for each rate and round,
# each binary in turn is started on the config bench-vs-incumbent.sh uses
# (sbc-bench-lib.sh), driven at the rate for FIND_DURATION seconds, and
# stopped by PID. Prints one line per run: the binary, the rate, calls ok
# and failed, sbc_cpu% and CPU per call (sbc_cpu% / 100 / rate), the
# harness's other_cpu% and the load average before the run.
#
#   scripts/bench-sbc-cpu.sh BIN... (e.g. /tmp/sbc-main /tmp/sbc-branch)
#
# Knobs (environment):
#   RATES="800 1600"   calls per second tried
#   ROUNDS=1           times each binary runs at each rate, alternating
#   FIND_DURATION=20   seconds per run
#   STAT=0             1: perf stat the SBC's context switches and system
#                      calls for 10 s from 3 s after the first call (adds
#                      overhead: compare counts, not CPU, of such runs;
#                      per call = count / (rate x 10), so FIND_DURATION
#                      must leave 13 s of calls)
#   STAT_EVENTS=""     more perf events for STAT=1, comma-separated (e.g.
#                      uprobes made with perf probe -x BIN: the binary is
#                      hard-linked into the run's directory, same inode,
#                      so a probe on BIN fires)
#   HARNESS=../shared/bench/kamailio-rtpengine  BENCH_OUT=/tmp/sbc-bench
# Hold `flock /work/bench.lock` around it when the figures are reported.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: $0 SBC_BINARY..." >&2; exit 2; }
HARNESS="${HARNESS:-$(pwd)/../shared/bench/kamailio-rtpengine}"
RATES="${RATES:-800 1600}" ROUNDS="${ROUNDS:-1}" STAT="${STAT:-0}"
DUR="${FIND_DURATION:-20}"
export BENCH_OUT="${BENCH_OUT:-/tmp/sbc-bench}"
SIP=127.0.0.1:26060 ADMIN=127.0.0.1:26090 RTP_PORTS=36000-39999
if [ ! -x "$HARNESS/run.sh" ]; then
	echo "bench-sbc-cpu: no harness at $HARNESS (set HARNESS)" >&2
	exit 2
fi
. scripts/sbc-bench-lib.sh
trap stop_sbc EXIT

for rate in $RATES; do
	for round in $(seq 1 "$ROUNDS"); do
		for bin in "$@"; do
			OUT="$BENCH_OUT/sbc-cpu-$(date -u +%Y%m%d-%H%M%S)-$(basename "$bin")-$rate"
			mkdir -p "$OUT"
			ln -f "$bin" "$OUT/sbc" 2>/dev/null || cp "$bin" "$OUT/sbc"
			bench_config warn
			load=$(sed 's/ [^ ]*$//' /proc/loadavg | cut -d' ' -f1-3)
			start_sbc
			stat_pid=""
			if [ "$STAT" = 1 ]; then
				# from 3 s after the first call is seen (the harness waits
				# for a quiet machine first) for 10 s
				(for _ in $(seq 1 600); do
					a=$(curl -fsS "http://$ADMIN/metrics" 2>/dev/null | awk '$1 == "sbc_calls_active" { print $2 }')
					[ "${a:-0}" != 0 ] && break
					sleep 0.1
				done
				sleep $((DUR > 16 ? 3 : 1)) && exec perf stat -x, -o "$OUT/stat.csv" -p "$SBC_PID" \
					-e context-switches,task-clock,syscalls:sys_enter_nanosleep,syscalls:sys_enter_futex \
					-e syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_fsync,syscalls:sys_enter_sendto,syscalls:sys_enter_write \
					${STAT_EVENTS:+-e "$STAT_EVENTS"} \
					-- sleep 10) >"$OUT/perf.log" 2>&1 &
				stat_pid=$!
			fi
			line=$(SBC_PIDS="$SBC_PID" SBC_RTP_PORTS="$RTP_PORTS" LABEL=sbc-cpu \
				"$HARNESS/run.sh" cps "$rate" "$DUR" "$SIP" | grep "	cps	" || true)
			if [ -n "$stat_pid" ]; then wait "$stat_pid" || true; fi
			stop_sbc
			cpu=$(field "$line" 'sbc_cpu%')
			printf '%s rate=%s round=%s ok=%s failed=%s sbc_cpu%%=%s ms_per_call=%s other_cpu%%=%s load=%s\n' \
				"$(basename "$bin")" "$rate" "$round" "$(field "$line" ok)" "$(field "$line" failed)" "$cpu" \
				"$(awk -v c="$cpu" -v r="$rate" 'BEGIN { printf "%.2f", c / 100 / r * 1000 }')" \
				"$(field "$line" 'other_cpu%')" "$load"
			if [ "$STAT" = 1 ] && [ -f "$OUT/stat.csv" ]; then
				grep -v '^#' "$OUT/stat.csv" | awk -F, -v n="$((rate * 10))" 'NF > 2 && $1 != "" {
					sub(/^syscalls:sys_enter_/, "", $3); printf "  %s per call: %.2f\n", $3, $1 / n }'
			fi
		done
	done
done
