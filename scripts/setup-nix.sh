#!/bin/sh
# setup-nix.sh: configure Debian's nix-bin for offline, daemonless use as root:
# an /etc/nix/nix.conf with flakes on, no build-users group (there is no nixbld
# group without recommends), the build sandbox on, no substituters (no
# retries against the public cache), a local empty flake registry (Nix would
# download one) and a single download attempt. Idempotent: each file is
# written only if it is missing or differs, so running it again changes
# nothing.
set -eu

NIX_CONF_DIR=${NIX_CONF_DIR:-/etc/nix}

want_conf='experimental-features = nix-command flakes
build-users-group =
sandbox = true
substituters =
flake-registry = '"$NIX_CONF_DIR"'/registry.json
download-attempts = 1'
want_registry='{"flakes":[],"version":2}'

# put FILE CONTENT: write CONTENT (plus a newline) to FILE unless it is already there.
put() {
	if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then
		return 0
	fi
	printf '%s\n' "$2" > "$1.tmp.$$"
	mv -f "$1.tmp.$$" "$1"
	echo "setup-nix: wrote $1"
}

if ! command -v nix >/dev/null 2>&1; then
	echo "setup-nix: nix not found (apt-get install nix-bin)" >&2
	exit 1
fi
mkdir -p "$NIX_CONF_DIR"
put "$NIX_CONF_DIR/nix.conf" "$want_conf"
put "$NIX_CONF_DIR/registry.json" "$want_registry"
