#!/usr/bin/env bash
# install-test-deps.sh: install what the project's tests drive for real and
# that Go does not fetch itself. Idempotent, and quick when everything is
# present: each need is checked first and installed only when missing.
#
# Usage: scripts/install-test-deps.sh   (as root, for apt; from anywhere)
#
# To add a need, write one line in main() below: `need_apt CHECK PACKAGE...`
# where CHECK is a command that succeeds when the need is met, or a function
# of its own for anything that is not a plain Debian package.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APT_UPDATED=0

log() { printf 'install-test-deps: %s\n' "$*" >&2; }

# apt_install PACKAGE...: install Debian packages without questions or
# recommends; run apt-get update only when the install fails without it
# (no package lists yet, or stale ones).
apt_install() {
	if ! command -v apt-get >/dev/null; then
		log "apt-get not found: install $* by hand"
		return 1
	fi
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		sudo="sudo"
	fi
	log "apt-get install $*"
	if $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"; then
		return 0
	fi
	if [ "$APT_UPDATED" -eq 1 ]; then
		return 1
	fi
	log "install failed; apt-get update, then again"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update
	APT_UPDATED=1
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

# need_apt CHECK PACKAGE...: install the packages unless CHECK (a shell
# command) succeeds.
need_apt() {
	local check="$1"
	shift
	if bash -c "$check" >/dev/null 2>&1; then
		return 0
	fi
	apt_install "$@"
	if ! bash -c "$check" >/dev/null 2>&1; then
		log "still missing after installing $*: $check fails"
		return 1
	fi
}

# Debian's python3-websockets, imported by tests/interop/py_client.py under
# /usr/bin/python3 (not whatever python3 comes first on PATH).
ensure_python_websockets() {
	need_apt "/usr/bin/python3 -c 'import websockets'" python3 python3-websockets
}

# node and npm, then the npm packages of tests/interop (ws, pinned in its
# package-lock.json) when node_modules lacks them.
ensure_node_interop() {
	need_apt "command -v node && command -v npm" nodejs npm
	local dir="$ROOT/tests/interop"
	if [ -f "$dir/node_modules/ws/package.json" ] &&
		[ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
		return 0
	fi
	log "npm ci in tests/interop"
	(cd "$dir" && npm ci --no-audit --no-fund)
}

# Hooks for later needs: one line each in main(), for example
#   need_apt "command -v chromium" chromium
#   need_apt "command -v chromedriver" chromium-driver
#   need_apt "command -v nats-server" nats-server
#   need_apt "command -v nginx" nginx
#   need_apt "command -v pushpin" pushpin
#   need_apt "command -v miniupnpd" miniupnpd miniupnpd-nftables nftables

# The port-mapping gateway tests (portmap/, cmd/switchboard TestPortmapGateway):
# miniupnpd as the router in network namespaces, nft for its rules, ip for
# the namespaces. They also need root.
ensure_portmap_gateway() {
	need_apt "command -v ip && command -v nft && command -v miniupnpd" iproute2 nftables miniupnpd miniupnpd-nftables
}

# Debian's chromium for the browser tests (web/), and web/'s pinned npm
# packages (playwright-core drives the system chromium; no browser download).
ensure_browser() {
	need_apt "test -x /usr/bin/chromium" chromium
	"$ROOT/web/install-deps.sh"
}

# Debian's nats-server binary, for the cluster test that runs the real one
# (the others embed nats-server as a Go module).
ensure_nats_server() {
	need_apt "command -v nats-server" nats-server
}

# Debian's websocketd: the same scripts run under it and under
# `switchboard listen --exec` (cmd/switchboard TestExecLikeWebsocketd).
# systemd-analyze checks the unit in dist/ (TestSystemdUnitVerifies).
ensure_cli_peers() {
	need_apt "command -v websocketd" websocketd
	# dist/TestPackageInstallsAndRuns: make package, dpkg, systemd-analyze.
	need_apt "command -v make && command -v dpkg-deb" make dpkg
	need_apt "command -v systemd-analyze" systemd
}

main() {
	ensure_cli_peers
	ensure_python_websockets
	ensure_node_interop
	ensure_browser
	ensure_nats_server
	ensure_portmap_gateway
	log "all test dependencies present"
}

main "$@"
