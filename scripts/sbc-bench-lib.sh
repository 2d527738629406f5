# sbc-bench-lib.sh: what the benchmark scripts share to run the SBC under
# the shared harness (../shared/bench/kamailio-rtpengine): its config (a UDP
# listener, every call to the harness's SIPp UAS on 127.0.0.1:25080, media
# ports, loopback trusted and exempt from rate limits, CDRs to a file) and
# starting and stopping it by PID. Sourced, not run. Uses OUT, SIP, ADMIN,
# RTP_PORTS; sets SBC_PID.

# field prints the value of key $2 in the harness's tab-separated result
# line $1.
field() { tr '\t' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -n 1; }

# bench_config writes $OUT/sbc.yaml with log level $1 and, if given, one
# more line under sip: ($2, e.g. "overload_delay: 20ms").
bench_config() {
	cat >"$OUT/sbc.yaml" <<YAML
node_id: bench-1
log: {level: $1, format: text}
sip:
  listeners:
    - {name: udp, transport: udp, addr: "$SIP"}
  ring_timeout: 30s
${2:+  $2}
media:
  bind_ip: 127.0.0.1
  rtp_ports: $RTP_PORTS
trunks:
  - {name: uas, uri: "sip:127.0.0.1:25080", options_interval: 0}
routes:
  - {name: everything, match: {}, target: trunks, trunks: [uas], trusted_sources: ["127.0.0.1"]}
policy:
  rate_limit: {exempt_cidrs: ["127.0.0.1"]}
  bans: {file: $OUT/bans.json}
cdr:
  - {type: jsonl, dir: $OUT/cdr}
cdr_spool: $OUT/spool
admin: {addr: "$ADMIN"}
YAML
}

SBC_PID=""

# start_sbc starts $OUT/sbc on $OUT/sbc.yaml with a fresh spool and waits
# until /readyz answers; it exits the script with the SBC's last log lines
# if it does not.
start_sbc() {
	rm -rf "$OUT/spool" "$OUT/cdr"
	env -u BINARY -u REVISION "$OUT/sbc" -config "$OUT/sbc.yaml" >>"$OUT/sbc.log" 2>&1 &
	SBC_PID=$!
	for _ in $(seq 1 100); do
		if curl -fsS "http://$ADMIN/readyz" >/dev/null 2>&1; then return 0; fi
		if ! kill -0 "$SBC_PID" 2>/dev/null; then break; fi
		sleep 0.2
	done
	echo "$(basename "$0"): the SBC did not become ready; its log: $OUT/sbc.log" >&2
	tail -n 5 "$OUT/sbc.log" >&2
	exit 1
}

# stop_sbc stops the SBC started by start_sbc and waits for it to exit.
stop_sbc() {
	if [ -n "$SBC_PID" ] && kill -0 "$SBC_PID" 2>/dev/null; then
		kill "$SBC_PID"
		wait "$SBC_PID" 2>/dev/null || true
	fi
	SBC_PID=""
}
