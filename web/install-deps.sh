#!/usr/bin/env bash
# Installs what web/'s tests need when it is missing: Debian's chromium, the
# Python websockets client, node and npm, and the pinned npm packages
# (playwright-core drives the system chromium; it downloads no browser).
set -euo pipefail
cd "$(dirname "$0")"

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
/usr/bin/python3 -c 'import websockets' 2>/dev/null || missing+=(python3-websockets)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
	echo "web/install-deps.sh: apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
pinned() { node -e 'const p=require("./package.json").devDependencies;for(const n in p){const m=require("./node_modules/"+n+"/package.json");if(m.version!==p[n])process.exit(1)}' 2>/dev/null; }
if ! pinned; then
	echo "web/install-deps.sh: npm ci"
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi
