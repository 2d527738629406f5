#!/usr/bin/env bash
# scripts/bench-flood.sh: the policy chain under floods. A legitimate SIPp
# caller keeps placing calls through the SBC while a flooder on another
# loopback address sends INVITEs, REGISTERs, OPTIONS or random bytes; prints
# a markdown table of the legitimate caller's success rate, the SBC's CPU
# and what the flooder saw.
#
#   SIPp UAC legit (127.0.0.20) ─┐
#                                ├─▶ SBC (127.0.0.1) ──▶ SIPp UAS (127.0.0.3)
#   flooder        (127.0.0.10) ─┘
#
# Builds cmd/sbc and runs it as a separate process, started afresh for each
# row (so a ban from one flood does not carry into the next) with a config
# in a temporary directory: a trunk to the UAS trusted for calls from
# 127.0.0.20 only, a registrar route for flood* users, the policy chain at
# its defaults, the admin API on (for the ban list). CPU is the SBC
# process's utime+stime from /proc/<pid>/stat over the row, as % of one
# core. Every process is started by this script and stopped by its PID.
#
# Environment (defaults in brackets):
#   FLOOD_SECS   seconds of flood per row            [12]
#   SIP_RATE     SIPp flood requests per second      [2000]
#   GARBAGE_RATE random datagrams per second         [20000]
#   LEGIT_CPS    legitimate calls per second         [10]
#   HOLD_MS      legitimate call duration (SIPp -d)  [1000]
#   FLOODS       rows, in order  [none invite register options garbage]
#   SBC_PORT [25060]  UAS_PORT [25070]  ADMIN_PORT [25090]
#   KEEP=1 keeps the work directory
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

FLOOD_SECS=${FLOOD_SECS:-12}
SIP_RATE=${SIP_RATE:-2000}
GARBAGE_RATE=${GARBAGE_RATE:-20000}
LEGIT_CPS=${LEGIT_CPS:-10}
HOLD_MS=${HOLD_MS:-1000}
FLOODS=${FLOODS:-"none invite register options garbage"}
SBC_IP=127.0.0.1
UAS_IP=127.0.0.3
LEGIT_IP=127.0.0.20
FLOOD_IP=127.0.0.10
SBC_PORT=${SBC_PORT:-25060}
UAS_PORT=${UAS_PORT:-25070}
ADMIN_PORT=${ADMIN_PORT:-25090}
scenarios=$root/test/sipp
floods=$root/test/e2e/security/testdata

for tool in sipp python3 curl; do
	command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/sbc-flood.XXXXXX")
sbc_pid="" uas_pid="" flood_pid="" legit_pid=""

# stop, hexaddr, bound, wait_bound, column: shared with scripts/load.sh.
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

cleanup() {
	stop "$flood_pid" "$legit_pid" "$uas_pid" "$sbc_pid"
	if [ "${KEEP:-0}" = 1 ]; then
		echo "work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# seen COUNTS_CSV summarizes a flood scenario's -trace_counts: answers by
# status code and the requests left unanswered (receive timeouts).
seen() {
	awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) h[i] = $i; next } { for (i in h) v[i] = $i }
		END {
			for (i in h) {
				split(h[i], p, "_")
				if (p[3] == "Recv" && p[1] != "0") r[p[2]] += v[i]
				if (p[3] == "Timeout") silent += v[i]
			}
			out = ""
			for (c in r) if (r[c] > 0) out = out (out ? ", " : "") r[c] "×" c
			print out (out ? ", " : "") silent + 0 " unanswered"
		}' "$1"
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
now() { date +%s.%N; }
hz=$(getconf CLK_TCK)

echo "==> go build ./cmd/sbc" >&2
go build -o "$work/sbc" ./cmd/sbc

# ------------------------------------------------------------- the callee --

sipp -sf "$scenarios/call_caller_bye_uas.xml" -t u1 -i "$UAS_IP" -p "$UAS_PORT" -bind_local \
	-ci "$UAS_IP" -cp "$((UAS_PORT + 1))" -nostdin -trace_err -error_file "$work/uas_errors.log" \
	-max_recv_loops 10000 -max_sched_loops 10000 \
	</dev/null >/dev/null 2>"$work/uas.log" &
uas_pid=$!
wait_bound udp "$UAS_IP" "$UAS_PORT" "$uas_pid" uas

# start_sbc ROW starts a fresh SBC with its own bans file.
start_sbc() {
	local dir=$work/$1
	mkdir -p "$dir"
	cat >"$dir/sbc.yaml" <<EOF
node_id: flood-1
log:
  level: warn
  format: text
sip:
  listeners:
    - {name: udp, transport: udp, addr: "$SBC_IP:$SBC_PORT"}
  ring_timeout: 30s
media:
  bind_ip: $SBC_IP
  rtp_ports: 30000-39999
trunks:
  - name: pbx
    uri: "sip:$UAS_IP:$UAS_PORT"
    options_interval: 0
users:
  - {username: alice, password: "not-the-flooders-business"}
routes:
  - name: users
    match: {ruri_user: "^(alice|flood.*)\$"}
    target: registered
  - name: pbx
    match: {}
    target: trunks
    trunks: [pbx]
    trusted_sources: ["$LEGIT_IP/32"]
policy:
  bans:
    file: $dir/bans.json
cdr: []
cdr_spool: $dir/cdr-spool
admin:
  addr: "$SBC_IP:$ADMIN_PORT"
EOF
	"$work/sbc" -check -config "$dir/sbc.yaml" >/dev/null
	"$work/sbc" -config "$dir/sbc.yaml" </dev/null >"$work/sbc.log" 2>&1 &
	sbc_pid=$!
	wait_bound udp "$SBC_IP" "$SBC_PORT" "$sbc_pid" sbc
}

# garbage_flood RATE SECS sends random datagrams of 1..1400 bytes from
# FLOOD_IP, paced per 10 ms, and prints how many answers came back.
garbage_flood() {
	python3 - "$FLOOD_IP" "$SBC_IP" "$SBC_PORT" "$1" "$2" <<'PY'
import os, random, socket, sys, time
src, dst, port, rate, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
s.setblocking(False)
pool = [os.urandom(random.randint(1, 1400)) for _ in range(4096)]
sent = answers = 0
per_tick = max(1, rate // 100)
start = time.monotonic()
tick = start
while time.monotonic() - start < secs:
    for _ in range(per_tick):
        try:
            s.sendto(pool[sent % len(pool)], (dst, port))
            sent += 1
        except BlockingIOError:
            pass
    try:
        while True:
            s.recv(65536)
            answers += 1
    except BlockingIOError:
        pass
    tick += 0.01
    d = tick - time.monotonic()
    if d > 0:
        time.sleep(d)
print(f"{sent} {answers} {time.monotonic() - start:.1f}")
PY
}

# --------------------------------------------------------------- the rows --

legit_calls=$((LEGIT_CPS * FLOOD_SECS))
echo "==> $FLOOD_SECS s per row; legitimate caller $LEGIT_CPS cps, calls of $HOLD_MS ms; SIP floods $SIP_RATE/s, garbage $GARBAGE_RATE/s" >&2
rows=()
port=26000
for kind in $FLOODS; do
	port=$((port + 10))
	start_sbc "$kind"
	t0=$(now)
	c0=$(cpu_ticks "$sbc_pid")
	offered="–"
	case $kind in
	none) ;;
	invite | register | options)
		offered="$SIP_RATE/s"
		( cd "$work" && exec sipp "$SBC_IP:$SBC_PORT" -sf "$floods/${kind}_flood.xml" -t u1 -i "$FLOOD_IP" -p "$port" -bind_local \
			-ci "$FLOOD_IP" -cp "$((port + 1))" -nostdin -nr -s "$([ "$kind" = register ] && echo flood || echo 1000)" \
			-r "$SIP_RATE" -m "$((SIP_RATE * FLOOD_SECS))" -l 100000 -timeout "$((FLOOD_SECS + 20))" \
			-max_recv_loops 10000 -max_sched_loops 10000 -trace_counts \
			</dev/null >/dev/null 2>"$work/flood_$kind.log" ) &
		flood_pid=$!
		;;
	garbage)
		offered="$GARBAGE_RATE/s"
		garbage_flood "$GARBAGE_RATE" "$FLOOD_SECS" >"$work/garbage.out" 2>"$work/flood_garbage.log" &
		flood_pid=$!
		;;
	*) echo "unknown flood $kind" >&2; exit 2 ;;
	esac
	( cd "$work" && exec sipp "$SBC_IP:$SBC_PORT" -sf "$scenarios/call_caller_bye_uac.xml" -t u1 -i "$LEGIT_IP" \
		-p "$((port + 2))" -bind_local -ci "$LEGIT_IP" -cp "$((port + 3))" -nostdin \
		-s 1000 -d "$HOLD_MS" -r "$LEGIT_CPS" -m "$legit_calls" -timeout "$((FLOOD_SECS + 30))" \
		-trace_stat -stf "$work/legit_$kind.csv" -trace_err -error_file "$work/legit_${kind}_errors.log" \
		</dev/null >/dev/null 2>"$work/legit_$kind.log" ) &
	legit_pid=$!
	wait "$legit_pid" || true
	legit_pid=""
	if [ -n "$flood_pid" ]; then
		wait "$flood_pid" || true
		flood_pid=""
	fi
	tf=$(now)
	c1=$(cpu_ticks "$sbc_pid")
	t1=$(now)
	ok=$(column "$work/legit_$kind.csv" "SuccessfulCall(C)")
	failed=$(column "$work/legit_$kind.csv" "FailedCall(C)")
	cpu=$(awk -v c="$((c1 - c0))" -v hz="$hz" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.1f", 100 * c / hz / (t1 - t0) }')
	pct=$(awk -v ok="$ok" -v n="$legit_calls" 'BEGIN { printf "%.1f", 100 * ok / n }')
	saw="–"
	case $kind in
	invite | register | options)
		counts=$(ls "$work"/${kind}_flood_*_counts.csv 2>/dev/null | head -n1 || true)
		if [ -n "$counts" ]; then
			sent=$(column "$counts" "0_$(tr a-z A-Z <<<"$kind")_Sent")
			# SIPp exits 1 s after its last request (the receive timeout).
			offered="$SIP_RATE/s (sent $(awk -v n="$sent" -v t0="$t0" -v t1="$tf" 'BEGIN { printf "%d/s", n / (t1 - t0 - 1) }'))"
			saw="$(seen "$counts")"
		fi
		;;
	garbage)
		read -r gsent gans gsecs <"$work/garbage.out" || true
		offered="$GARBAGE_RATE/s (sent $(awk -v n="${gsent:-0}" -v t="${gsecs:-1}" 'BEGIN { printf "%d/s", n / t }'))"
		saw="${gans:-?} answers"
		;;
	esac
	if [ "$kind" != none ]; then
		if curl -fsS "http://$SBC_IP:$ADMIN_PORT/api/v1/bans" | grep -q "\"$FLOOD_IP\""; then
			saw="$saw; banned"
		else
			saw="$saw; not banned"
		fi
	fi
	rows+=("| $kind | $offered | $ok/$legit_calls ($pct %), $failed failed | $cpu | $saw |")
	echo "row $kind: legit $ok/$legit_calls, CPU $cpu %, flooder: $saw" >&2
	stop "$sbc_pid"
	sbc_pid=""
done

echo
echo "| flood | offered | legitimate calls completed | SBC CPU (% of one core) | what the flooder saw |"
echo "|---|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
