#!/bin/sh
# apt-install.sh PKG...: install Debian packages without starting their
# services (docker.io's dockerd would add a docker0 bridge and firewall
# rules; the tests start their own daemons, privately).
set -eu
made_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	made_policy=1
fi
trap '[ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d' EXIT
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
