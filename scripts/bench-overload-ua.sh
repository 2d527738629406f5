# bench-overload-ua.sh: the `ua` mode of scripts/bench-overload.sh, sourced
# by it (uses OUT, SIP, ADMIN, HARNESS, SBC_PID; defines ua_run, ua_stop).
# SIPp's UAC runs scripts/sipp/uac-503.xml (a 503 is ACKed and ends the
# call, as a real UA does) against the SBC at $SIP, which sends every call
# to the harness's UAS (its scenarios/uas.xml and options) on
# 127.0.0.1:25080. Every SIPp is bounded by call count and -timeout.

UA_UAS_PID=""
UA_MON_PID=""

# ticks prints the CPU time (user+system, clock ticks) of a PID so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# ua_stop stops the UAS and the metrics sampler started by ua_run, by PID.
ua_stop() {
	local pid sig=TERM # the sampler: a background subshell ignores SIGINT
	for pid in $UA_MON_PID $UA_UAS_PID; do
		[ "$pid" = "$UA_UAS_PID" ] && sig=INT # SIPp ends on SIGINT
		kill -0 "$pid" 2>/dev/null || continue
		kill -"$sig" "$pid" 2>/dev/null || true
		for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	UA_UAS_PID="" UA_MON_PID=""
}

# ua_sample prints, once a second for at most $1 seconds, the seconds since
# the epoch and the SBC's overload metrics on one line: refused INVITE
# copies, the share refused, the standing delay (ms), transport drops,
# active calls.
ua_sample() {
	for _ in $(seq "$1"); do
		curl -fsS -m 1 "http://$ADMIN/metrics" 2>/dev/null | awk -v t="$(date +%s.%N)" '
			/^sbc_overload_refused_total / { r = $2 }
			/^sbc_overload_shed_ratio / { s = $2 }
			/^sbc_sip_standing_delay_seconds / { d = $2 * 1000 }
			/^sbc_sip_transport_dropped_total/ { x += $2 }
			/^sbc_calls_active / { a = $2 }
			END { printf "%.3f %d %.3f %.1f %d %d\n", t, r, s, d, x, a }'
		sleep 1
	done
}

# ua_run RATE SECONDS offers RATE calls/s for SECONDS and prints the
# per-second table and a verdict line.
ua_run() {
	local rate="$1" dur="$2" n=$(( $1 * $2 ))
	local passing="${PASSING:-$(( rate / 2 ))}" settle="${SETTLE:-3}"
	local uac="$OUT/uac" sc
	sc="$(pwd)/scripts/sipp/uac-503.xml"
	mkdir -p "$uac"
	sipp -sf "$HARNESS/scenarios/uas.xml" -i 127.0.0.1 -p 25080 \
		-mi 127.0.0.1 -mp 34990 -rtp_echo -nostdin -default_behaviors all,-abortunexp \
		-trace_stat -stf "$uac/uas_stat.csv" -fd 1 \
		-trace_err -error_file "$uac/uas_errors.log" -max_log_size 1000000 \
		-timeout $(( dur + 60 )) >"$uac/uas_stdout.log" 2>&1 </dev/null &
	UA_UAS_PID=$!
	for _ in $(seq 50); do
		grep -q ':61A8 ' /proc/net/udp && break # 25080 bound
		kill -0 "$UA_UAS_PID" 2>/dev/null || { cat "$uac/uas_stdout.log" >&2; return 1; }
		sleep 0.1
	done
	ua_sample $(( dur + 50 )) >"$uac/metrics.txt" &
	UA_MON_PID=$!
	local t0 t1 c0 c1 b0 i0 b1 i1
	read -r b0 i0 < <(awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8, $5+$6}' /proc/stat)
	c0=$(ticks "$SBC_PID")
	t0=$(date +%s.%N)
	/usr/bin/time -f "%U %S" -o "$uac/uac_time.txt" \
		sipp -sf "$sc" -i 127.0.0.1 -p 25070 -mi 127.0.0.1 -mp 34000 \
		-r "$rate" -rp 1000 -m "$n" -l "${CPS_LIMIT:-5000}" -d "${HOLD_MS:-0}" \
		-recv_timeout 15000 -timeout $(( dur + 45 )) -nostdin -default_behaviors all,-abortunexp \
		-trace_stat -stf "$uac/uac_stat.csv" -fd 1 \
		-trace_err -error_file "$uac/uac_errors.log" -max_log_size 1000000 \
		"$SIP" >"$uac/uac_stdout.log" 2>&1 </dev/null || true
	t1=$(date +%s.%N)
	c1=$(ticks "$SBC_PID")
	read -r b1 i1 < <(awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8, $5+$6}' /proc/stat)
	sleep 3 # the UAS's 2 s timewait: its counters final
	ua_stop
	echo "==> ua $rate/s x $dur s = $n calls, P = $passing/s; raw files: $uac"
	ua_table "$uac/uac_stat.csv" "$uac/metrics.txt" "$t0" "$passing" "$settle" "$dur"
	# CPU in % of one core over the UAC's run: the SBC's, the UAC's, and
	# the whole machine's (2 cores: 200 %), the rest being the UAS and others.
	local hz wall
	hz=$(getconf CLK_TCK)
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
	awk -v c=$(( c1 - c0 )) -v hz="$hz" -v w="$wall" -v u="$(tail -n 1 "$uac/uac_time.txt" 2>/dev/null | awk '{print $1+$2}')" \
		-v b=$(( b1 - b0 )) -v i=$(( i1 - i0 )) -v n="$(nproc)" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" \
		'BEGIN { printf "wall %.1f s, sbc_cpu%% %.0f, uac_cpu%% %.0f, machine busy %.0f%% of %d cores, load %s\n", w, 100*c/hz/w, 100*u/w, 100*(b-i)/b, n, load }'
}

# ua_stop_sbc stops the SBC at once (a second signal skips the drain,
# which would wait up to 30 s for calls the load left half-done).
ua_stop_sbc() {
	if [ -n "$SBC_PID" ] && kill -0 "$SBC_PID" 2>/dev/null; then
		kill -TERM "$SBC_PID"
		sleep 0.5
		kill -TERM "$SBC_PID" 2>/dev/null || true
	fi
	stop_sbc
}

# ua_table UAC_STAT METRICS T0 PASSING SETTLE SECONDS prints one row per
# second of SIPp's stat CSV (offered, completed, refused, failed,
# retransmissions: that second's counts) with the SBC's metrics sampled
# nearest its end (refused copies that second, shed share, standing delay,
# transport drops that second), totals, and the verdict.
ua_table() {
	awk -F';' -v mfile="$2" -v t0="$3" -v p="$4" -v settle="$5" -v dur="$6" '
	BEGIN {
		while ((getline l < mfile) > 0) { split(l, f, " "); m++; mt[m] = f[1]; mr[m] = f[2]; ms[m] = f[3]; md[m] = f[4]; mx[m] = f[5] }
		printf "%4s %8s %9s %8s %7s %8s | %8s %5s %9s %6s\n", "s", "offered", "completed", "refused", "failed", "retrans", "503s", "shed", "standing", "drops"
	}
	NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	{
		s = NR - 2 # the first line is at 0 s
		off = $c["OutgoingCall(P)"]; ok = $c["GenericCounter2(P)"]; rf = $c["GenericCounter1(P)"]
		fl = $c["FailedCall(P)"]; rt = $c["Retransmissions(P)"]
		# the metrics sample nearest to t0 + s seconds
		best = 0; for (j = 1; j <= m; j++) if (!best || (mt[j] - t0 - s)^2 < (mt[best] - t0 - s)^2) best = j
		d503 = best > 1 ? mr[best] - mr[best - 1] : mr[best]; dx = best > 1 ? mx[best] - mx[best - 1] : mx[best]
		printf "%4d %8d %9d %8d %7d %8d | %8d %5.2f %7.1fms %6d\n", s, off, ok, rf, fl, rt, d503, ms[best], md[best], dx
		tok += ok; trf += rf; tfl += fl; toff += off
		if (s > settle && s <= dur) { if (min == "" || ok < min) { min = ok; mins = s }; if (ok < 0.9 * p) low++ }
	}
	END {
		printf "total: offered %d, completed %d, refused %d, failed %d\n", toff, tok, trf, tfl
		printf "seconds %d-%d: fewest completed %d (second %d), %d seconds under 0.9 x P = %d: %s\n", settle + 1, dur, min, mins, low, 0.9 * p, low ? "FAIL" : "PASS"
	}' "$1"
}
