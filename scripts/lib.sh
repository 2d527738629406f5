# scripts/lib.sh: shell helpers shared by the load and flood scripts
# (scripts/load.sh, scripts/bench-flood.sh). Source it; it defines
# functions only. wait_bound reads "$work/<name>.log", so the sourcing
# script must set $work to its work directory.

# stop PID...: TERM, then KILL after 5 s; only PIDs the caller started.
stop() {
	local pid
	for pid in "$@"; do
		[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "$@"; do
		[ -n "$pid" ] || continue
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}

# hexaddr IP PORT prints the /proc/net/{udp,tcp} form of a local IPv4 address.
hexaddr() {
	local IFS=.
	# shellcheck disable=SC2086 # split the IP into octets
	set -- $1 "$2"
	printf '%02X%02X%02X%02X:%04X' "$4" "$3" "$2" "$1" "$5"
}

# bound PROTO IP PORT succeeds if a socket is bound there (a listener for tcp).
bound() {
	local want
	want=$(hexaddr "$2" "$3")
	awk -v a="$want" -v tcp="$([ "$1" = tcp ] && echo 1 || echo 0)" \
		'NR > 1 && $2 == a && (!tcp || $4 == "0A") { found = 1 } END { exit !found }' "/proc/net/$1"
}

# wait_bound PROTO IP PORT PID NAME waits up to 10 s for a socket of PID;
# if PID exits first, it prints $work/NAME.log.
wait_bound() {
	for _ in $(seq 100); do
		bound "$1" "$2" "$3" && return 0
		kill -0 "$4" 2>/dev/null || { echo "$5 exited; its log:" >&2; cat "$work/$5.log" >&2; return 1; }
		sleep 0.1
	done
	echo "$5 did not bind $1 $2:$3 within 10 s" >&2
	return 1
}

# column FILE NAME prints column NAME of the last line of a SIPp stats CSV.
column() {
	awk -F';' -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next }
		{ last = $c } END { if (!c) exit 1; print last + 0 }' "$1"
}
