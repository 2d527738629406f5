#!/bin/sh
# bundle.sh writes JsSIP, bundled for the browser, to stdout.
#
# JsSIP 3.13 no longer ships a dist/ build on npm, only CommonJS sources in
# lib/; this bundles lib/JsSIP.js with its dependencies (debug, events,
# sdp-transform) into one minified script that defines the global JsSIP,
# with the pinned esbuild. It needs web/node_modules (see build.sh) and
# never touches the network. internal/webphone's TestVendoredJsSIPIsBuilt
# runs it to check the committed copy.
set -eu
cd "$(dirname "$0")"
exec node_modules/.bin/esbuild node_modules/jssip/lib/JsSIP.js \
	--bundle --minify --format=iife --global-name=JsSIP \
	--platform=browser --target=es2019 --legal-comments=none \
	--log-level=warning
