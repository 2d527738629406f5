#!/bin/sh
# build.sh refreshes the web phone's vendored JsSIP:
# internal/webphone/static/vendor/jssip.min.js (committed, embedded in the
# sbc binary) and jssip.LICENSE.txt next to it.
#
# It runs `npm ci` when node_modules is missing or older than
# package-lock.json, then bundles JsSIP with bundle.sh. Run it after
# changing the pinned versions in package.json (`npm install` updates the
# lock file), or through `go generate ./internal/webphone`.
set -eu
cd "$(dirname "$0")"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	npm ci --no-audit --no-fund
fi
out=../internal/webphone/static/vendor
mkdir -p "$out"
./bundle.sh >"$out/jssip.min.js.tmp"
mv "$out/jssip.min.js.tmp" "$out/jssip.min.js"
{
	echo "jssip.min.js is JsSIP $(node -p 'require("./node_modules/jssip/package.json").version') bundled with its dependencies"
	echo "by web/bundle.sh. Their licenses follow."
	for p in jssip debug ms events sdp-transform; do
		v=$(node -p "require('./node_modules/$p/package.json').version")
		echo
		echo "==== $p $v ===="
		echo
		cat node_modules/$p/LICENSE* node_modules/$p/license* 2>/dev/null || true
	done
} >"$out/jssip.LICENSE.txt"
echo "wrote $out/jssip.min.js ($(wc -c <"$out/jssip.min.js") bytes) and jssip.LICENSE.txt"
