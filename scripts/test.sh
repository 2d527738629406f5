#!/usr/bin/env bash
# scripts/test.sh: the one command that tests the SBC.
#
#   bash scripts/test.sh
#
# 1. Installs what the tests need, only when missing (Debian/Ubuntu
#    apt-get; as root directly, otherwise through sudo).
# 2. Checks formatting (gofmt -l), runs go vet, runs every test with the
#    race detector.
# 3. Prints a summary and exits non-zero if any step failed.
#
# Needs no TTY: apt-get runs non-interactively and sudo never prompts when
# stdin is not a terminal. Environment:
#   GO_TEST_FLAGS  extra flags for go test (e.g. "-run TestSIPp -v")
#   SKIP_INSTALL=1 never install anything (fail later if a tool is missing)
#   SBC_TEST_ARTIFACTS  where tests leave screenshots (default
#                  test/e2e/artifacts); listed at the end
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

# ---------------------------------------------------------------- helpers --

log() { printf '==> %s\n' "$*"; }

# as_root runs a command as root: directly when we are root, else via sudo
# (non-interactive without a TTY, so a password prompt fails fast).
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		if [ -t 0 ]; then sudo "$@"; else sudo -n "$@"; fi
	else
		echo "need root to run: $* (no sudo found)" >&2
		return 1
	fi
}

apt_updated=0
# apt_install installs Debian packages, running apt-get update once first.
apt_install() {
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "apt-get not found: install these packages yourself: $*" >&2
		return 1
	fi
	if [ "$apt_updated" -eq 0 ]; then
		log "apt-get update"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
		apt_updated=1
	fi
	log "apt-get install $*"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# need ensures command $1 exists, installing Debian package $2 if not.
need() {
	local cmd=$1 pkg=$2
	command -v "$cmd" >/dev/null 2>&1 && return 0
	if [ "${SKIP_INSTALL:-0}" = 1 ]; then
		echo "$cmd is missing and SKIP_INSTALL=1" >&2
		return 1
	fi
	apt_install "$pkg" || return 1
	command -v "$cmd" >/dev/null 2>&1 || { echo "$pkg installed but $cmd still missing" >&2; return 1; }
}

# need_pkg ensures the C library pkg-config knows as $1 is installed,
# installing Debian package $2 if not.
need_pkg() {
	local lib=$1 pkg=$2
	pkg-config --exists "$lib" 2>/dev/null && return 0
	if [ "${SKIP_INSTALL:-0}" = 1 ]; then
		echo "C library $lib is missing and SKIP_INSTALL=1" >&2
		return 1
	fi
	apt_install "$pkg" || return 1
	pkg-config --exists "$lib" || { echo "$pkg installed but pkg-config still finds no $lib" >&2; return 1; }
}

# need_postgres ensures the PostgreSQL server binaries (initdb, postgres)
# are installed under /usr/lib/postgresql/*/bin, with the postgres user the
# tests run them as when they run as root.
need_postgres() {
	if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
		if [ "${SKIP_INSTALL:-0}" = 1 ]; then
			echo "postgresql is missing and SKIP_INSTALL=1" >&2
			return 1
		fi
		apt_install postgresql || return 1
	fi
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "postgresql installed but initdb still missing" >&2; return 1; }
	if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
		echo "running as root, the PostgreSQL tests need the user postgres (created by the postgresql package)" >&2
		return 1
	fi
	log "postgresql: $(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' ')"
}

# need_web ensures web/node_modules matches web/package-lock.json (JsSIP
# for the web phone, playwright-core, puppeteer-core and SIP.js for the
# browser tests): `npm ci` runs
# when node_modules is missing or older than the lock file. npm ci leaves
# node_modules/.package-lock.json behind, whose age tells.
need_web() {
	local stamp=web/node_modules/.package-lock.json
	if [ -f "$stamp" ] && ! [ web/package-lock.json -nt "$stamp" ]; then
		return 0
	fi
	if [ "${SKIP_INSTALL:-0}" = 1 ]; then
		echo "web/node_modules is missing or stale and SKIP_INSTALL=1" >&2
		return 1
	fi
	log "npm ci (web/)"
	(cd web && npm ci --no-audit --no-fund) || return 1
	touch "$stamp"
}

# ------------------------------------------------------------ test steps --

declare -a step_names=() step_results=() step_secs=()
failed=0

# step NAME CMD...: runs CMD, records its outcome and duration.
step() {
	local name=$1; shift
	local start=$SECONDS rc
	log "$name"
	"$@"
	rc=$?
	step_names+=("$name")
	step_secs+=($((SECONDS - start)))
	if [ "$rc" -eq 0 ]; then
		step_results+=("ok")
	else
		step_results+=("FAIL (exit $rc)")
		failed=1
	fi
	return 0
}

install_deps() {
	command -v go >/dev/null 2>&1 || { echo "go not found on PATH: install Go (see go.mod for the version)" >&2; return 1; }
	# SIP end-to-end tests (test/sipptest and the SBC tests using it).
	need sipp sip-tester || return 1
	# Scanner tests (test/e2e/security/policy_scan_test.go): svmap, svwar, svcrack.
	need svmap sipvicious || return 1
	# go test -race links the race runtime through cgo.
	need cc gcc || return 1
	# Opus transcoding (media/codec, build tag opus, see GO_TAGS): libopus
	# through cgo, found by pkg-config (the binding also links libopusfile
	# unless built with the tag nolibopusfile).
	need pkg-config pkg-config || return 1
	need_pkg opus libopus-dev || return 1
	need_pkg opusfile libopusfile-dev || return 1

	# ---- Later issues add their test dependencies here, one `need` each: ----
	# Cluster state in Redis (internal/cluster, test/redistest, test/cluster):
	# the tests start throwaway redis-server processes themselves.
	need redis-server redis-server || return 1
	# Calls that survive their node (test/takeover): network namespaces and a
	# moving service address, made with ip (as the Firefox tests' namespaces).
	need ip iproute2 || return 1
	# Browser tests (test/e2e/webphone, test/e2e/webconn): headless Chromium driven by
	# playwright-core from web/node_modules (npm brings node along).
	need chromium chromium || return 1
	need npm npm || return 1
	need node nodejs || return 1
	need_web || return 1
	# Interop with independent endpoints (test/interop/...): Firefox ESR
	# (driven by puppeteer-core from web/node_modules) and linphone-cli.
	need firefox-esr firefox-esr || return 1
	need linphonecsh linphone-cli || return 1
	# CDR PostgreSQL writer: the tests start throwaway servers themselves
	# (test/cdr/pgtest) from the package's binaries, which are not on PATH.
	need_postgres || return 1
	# Kamailio in front of and behind the SBC (test/interop/kamailio).
	need kamailio kamailio || return 1
	# Independent endpoints (test/interop/baresip, transfer included):
	# baresip, and sox for its tone files.
	need baresip baresip-core || return 1
	need sox sox || return 1
	# The alert rules and the Grafana dashboard's queries, checked and unit
	# tested by Prometheus's promtool (test/e2e/monitoring); its service is
	# not started.
	need promtool prometheus || return 1
	# ---------------------------------------------------------------------------
	log "sipp: $(sipp -v 2>/dev/null | grep -o 'SIPp v[^ ]*' | head -1)"
	log "$(chromium --version 2>/dev/null | head -1); node $(node --version)"
	log "$(go version)"
}

check_gofmt() {
	local out
	out=$(gofmt -l . 2>&1) || { echo "$out" >&2; return 1; }
	if [ -n "$out" ]; then
		echo "gofmt needed on:" >&2
		echo "$out" >&2
		return 1
	fi
}

# The tests build with Opus (cgo libopus, build tag opus) so the
# transcoding tests cover it; media/codec's TestOpusInCI fails when they
# do not (SBC_REQUIRE_OPUS). The static release build leaves the tag out.
GO_TAGS=opus
export SBC_REQUIRE_OPUS=1

run_vet() { go vet -tags "$GO_TAGS" ./...; }

run_tests() {
	# shellcheck disable=SC2086 # GO_TEST_FLAGS is a list of flags
	go test -race -tags "$GO_TAGS" -count=1 -timeout 22m ${GO_TEST_FLAGS:-} ./...
}

# show_artifacts names the files the tests left for people to look at
# (the browser tests' screenshots), since go test hides passing tests' logs.
show_artifacts() {
	local f found=0
	for f in "$SBC_TEST_ARTIFACTS"/*; do
		[ -e "$f" ] || continue
		[ "$found" -eq 1 ] || log "test artifacts:"
		found=1
		echo "    $f"
	done
	return 0
}

# The race detector makes allocation counts meaningless, so the tests that
# hold the per-packet paths to zero allocations skip themselves above; run
# them once more without it.
run_alloc_tests() {
	go test -tags "$GO_TAGS" -count=1 -run 'Alloc' ./media/...
}

# run_static checks the release build: static, without cgo and so without
# Opus. It builds, and the codec, config and SIP transcoding tests pass
# there (PCMU, PCMA and G.722 transcode; Opus is refused as the README
# says).
run_static() {
	CGO_ENABLED=0 go build -o /dev/null ./cmd/sbc || return 1
	SBC_REQUIRE_OPUS=0 CGO_ENABLED=0 go test -count=1 ./media/codec/ ./internal/config/ || return 1
	SBC_REQUIRE_OPUS=0 CGO_ENABLED=0 go test -count=1 -run 'TestSIPTranscodedAndCapped' ./test/e2e/transcode/
}

# ------------------------------------------------------------------ main --

# Screenshots of the browser tests go here (test/e2e/artifacts, ignored by
# git), fresh for each run.
export SBC_TEST_ARTIFACTS="${SBC_TEST_ARTIFACTS:-$PWD/test/e2e/artifacts}"
rm -f "$SBC_TEST_ARTIFACTS"/*.png

step "install test dependencies" install_deps
if [ "$failed" -ne 0 ]; then
	echo "dependencies missing: not running the checks" >&2
else
	step "gofmt -l" check_gofmt
	step "go vet ./..." run_vet
	step "go test -race ./..." run_tests
	step "allocation tests (no race)" run_alloc_tests
	step "static build, no Opus (CGO_ENABLED=0)" run_static
	show_artifacts
fi

echo
echo "================================ summary ================================"
for i in "${!step_names[@]}"; do
	printf '  %-30s %6ss  %s\n' "${step_names[$i]}" "${step_secs[$i]}" "${step_results[$i]}"
done
echo "========================================================================="
if [ "$failed" -ne 0 ]; then
	echo "FAILED"
	exit 1
fi
echo "PASSED"
