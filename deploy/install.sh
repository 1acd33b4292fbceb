#!/usr/bin/env bash
# Builds Frontdoor as one static binary and installs it with its systemd unit.
#   sudo deploy/install.sh            build, install /usr/local/bin/frontdoor, the unit, and /etc/frontdoor
#                                     (the shipped example, only when /etc/frontdoor does not exist yet)
# Then edit /etc/frontdoor, check it with 'frontdoor check /etc/frontdoor', and
#   systemctl enable --now frontdoor
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (sudo)"; exit 1; }
command -v swift >/dev/null || { echo "install.sh: needs the Swift toolchain (https://swift.org/install)"; exit 1; }
dpkg-query -W -f='${Status}' libssl-dev 2>/dev/null | grep -q "install ok installed" || {
    echo "install.sh: installing libssl-dev (OpenSSL headers, for HTTPS to DynDNS providers)"
    apt-get install -y -q libssl-dev >/dev/null
}

swift build -c release --product frontdoor --static-swift-stdlib
strip .build/release/frontdoor 2>/dev/null || true
binary=.build/release/frontdoor
install -m 0755 "$binary" /usr/local/bin/frontdoor
echo "installed /usr/local/bin/frontdoor ($(du -h "$binary" | cut -f1))"

if [ ! -e /etc/frontdoor ]; then
    install -d -m 0755 /etc/frontdoor
    install -m 0644 zones/frontdoor.conf zones/*.zone /etc/frontdoor/
    # The example keeps its state beside itself; installed, it goes where the unit's StateDirectory= is.
    sed -i 's|^state-dir state$|state-dir /var/lib/frontdoor|' /etc/frontdoor/frontdoor.conf
    echo "installed the example model in /etc/frontdoor: edit it for your network"
else
    echo "kept /etc/frontdoor as it is"
fi
install -d /usr/local/share/doc/frontdoor
install -m 0644 README.md deploy/README.md /usr/local/share/doc/frontdoor/ 2>/dev/null || true
install -m 0644 deploy/frontdoor.service /etc/systemd/system/frontdoor.service
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    echo "unit installed: 'systemctl enable --now frontdoor' starts it; 'journalctl -u frontdoor' shows its log"
else
    echo "unit installed in /etc/systemd/system (systemd is not running here)"
fi
/usr/local/bin/frontdoor check /etc/frontdoor || echo "install.sh: /etc/frontdoor has errors; fix them before starting"
