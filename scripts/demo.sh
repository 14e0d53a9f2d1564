#!/bin/bash
# Builds a throwaway busybox bundle and runs it with the installed nucleus.
set -euo pipefail
NUCLEUS=${NUCLEUS:-$(command -v nucleus || echo bin/nucleus)}
dir=$(mktemp -d /tmp/nucleus-demo.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/rootfs/bin"
cp "$(command -v busybox)" "$dir/rootfs/bin/busybox"
for a in $("$dir/rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$dir/rootfs/bin/$a"; done
"$NUCLEUS" spec --bundle "$dir"
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo hello from nucleus in $(hostname); uname -r"/' "$dir/config.json"
"$NUCLEUS" run --bundle "$dir" "demo-$$"
