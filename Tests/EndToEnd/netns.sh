#!/usr/bin/env bash
# The whole story in a network of namespaces (root; iproute2, nftables, nsd, bind9, python3, dig, curl):
#
#   wan client 203.0.113.100 ─┐                         ┌─ Frontdoor  192.0.2.42
#   upstream   203.0.113.53  ─┤                         │
#   primary    203.0.113.54  ─┼─ brw ─ router ─ brl ────┼─ backend   192.0.2.69
#   ACME CA    203.0.113.60  ─┘   203.0.113.1  192.0.2.1 ├─ backend   192.0.2.70
#   (BIND + address echo,                                └─ lan client 192.0.2.100
#    BIND also the public secondary of the wan view; pebble the CA, asking DNS at the router's address)
#   wan client 11.22.33.100 ── wan1 11.22.33.44 (the router's second WAN link, for miniupnpd; see the end)
#
# The router forwards WAN :53 (udp+tcp), :80 and :443 to Frontdoor (DNAT) and masquerades the LAN, as a home
# router with port forwards does. Frontdoor learns its WAN address from an echo service on the WAN side and
# pushes it to the BIND primary with RFC 2136. At the end, the other path: the router runs miniupnpd, and a
# second Frontdoor learns the WAN address from it (PCP) and asks it for its port forward.
# Each check prints PASS or FAIL; the script exits 1 on a FAIL.
#   Tests/EndToEnd/netns.sh [FRONTDOOR-BINARY]
set -uo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
frontdoor="${1:-$root/.build/debug/frontdoor}"
if [ "$(id -u)" != 0 ]; then echo "SKIP: netns.sh needs root (ip netns)"; exit 0; fi
for tool in ip nft nsd named python3 dig curl; do
    command -v "$tool" >/dev/null || { echo "SKIP: netns.sh needs $tool"; exit 0; }
done
[ -x "$frontdoor" ] || swift build --product frontdoor >/dev/null
work="$(mktemp -d)"
prefix="fd$$"
namespaces=(wan up prim ca router front b1 b2 lan wan2)
failures=0
pids=()

ns() { local name="$1"; shift; ip netns exec "$prefix-$name" "$@"; }
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    sleep 0.3
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
    for name in "${namespaces[@]}"; do ip netns del "$prefix-$name" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
check() {
    local what="$1" expected="$2" got="$3"
    if [[ "$got" == *"$expected"* ]]; then
        echo "PASS: $what"
    else
        echo "FAIL: $what: expected '$expected', got '$got'"
        failures=$((failures + 1))
    fi
}
# Runs a command in a namespace in the background and remembers it.
daemon() {
    local name="$1"
    shift
    ip netns exec "$prefix-$name" "$@" &
    pids+=($!)
    disown $!
}

# --- The network ----------------------------------------------------------------------------------------
for name in "${namespaces[@]}"; do ip netns add "$prefix-$name"; ns "$name" ip link set lo up; done
ns router ip link add brw type bridge
ns router ip link add brl type bridge
ns router ip link set brw up
ns router ip link set brl up
ns router ip addr add 203.0.113.1/24 dev brw
ns router ip addr add 192.0.2.1/24 dev brl
ns router sysctl -qw net.ipv4.ip_forward=1
attach() { # namespace bridge address gateway
    local name="$1" bridge="$2" address="$3" gateway="$4"
    ip link add "v-$prefix-$name" type veth peer name eth0 netns "$prefix-$name"
    ip link set "v-$prefix-$name" netns "$prefix-router"
    ns router ip link set "v-$prefix-$name" master "$bridge" up
    ns "$name" ip addr add "$address" dev eth0
    ns "$name" ip link set eth0 up
    ns "$name" ip route add default via "$gateway"
}
attach wan brw 203.0.113.100/24 203.0.113.1
attach up brw 203.0.113.53/24 203.0.113.1
attach prim brw 203.0.113.54/24 203.0.113.1
attach ca brw 203.0.113.60/24 203.0.113.1
ns prim ip route add 192.0.2.0/24 via 203.0.113.1
attach front brl 192.0.2.42/24 192.0.2.1
attach b1 brl 192.0.2.69/24 192.0.2.1
attach b2 brl 192.0.2.70/24 192.0.2.1
attach lan brl 192.0.2.100/24 192.0.2.1
# The home router: port forwards to Frontdoor, masquerade for the LAN. Only traffic to the router's own
# address is forwarded ("fib daddr type local"): where br_netfilter is loaded, bridged WAN-to-WAN traffic
# passes these hooks too.
ns router nft -f - <<'NFT'
table ip nat {
    chain prerouting {
        type nat hook prerouting priority -100;
        iifname "brw" fib daddr type local udp dport 53 dnat to 192.0.2.42
        iifname "brw" fib daddr type local tcp dport { 53, 80, 443 } dnat to 192.0.2.42
    }
    chain postrouting {
        type nat hook postrouting priority 100;
        oifname "brw" ip saddr 192.0.2.0/24 masquerade
    }
}
NFT

# --- The peers ------------------------------------------------------------------------------------------
# Upstream resolver (for names outside Frontdoor's zones): NSD with outside.test.
mkdir -p "$work/up"
cat > "$work/up/outside.test.zone" <<'ZONE'
$ORIGIN outside.test.
$TTL 60
@   SOA ns hostmaster 1 3600 600 86400 60
@   NS  ns
ns  A   203.0.113.53
www A   198.51.100.80
ZONE
cat > "$work/up/nsd.conf" <<CONF
server:
  ip-address: 203.0.113.53
  zonesdir: "$work/up"
  pidfile: "$work/up/nsd.pid"
  database: ""
  username: ""
  chroot: ""
  logfile: "$work/up/nsd.log"
  xfrdfile: "$work/up/xfrd.state"
  zonelistfile: "$work/up/zone.list"
remote-control:
  control-enable: no
zone:
  name: "outside.test"
  zonefile: "outside.test.zone"
CONF
daemon up nsd -d -c "$work/up/nsd.conf"

# The outside primary that takes RFC 2136 updates, and a "what is my address" echo beside it.
mkdir -p "$work/prim"
secret="q5c8TqIqv5CtcWw5XJ0fS2oFvHS3UQmx8aD7Xlh1Y8s="
printf 'key "frontdoor-key" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n' "$secret" > "$work/prim/update.key"
chmod 600 "$work/prim/update.key"
cat > "$work/prim/example.net.zone" <<'ZONE'
$TTL 60
@    SOA ns.example.net. admin.example.net. 1 3600 600 86400 60
@    NS  ns.example.net.
ns   A   203.0.113.54
home A   192.0.2.1
ZONE
cat > "$work/prim/named.conf" <<CONF
options {
  directory "$work/prim";
  listen-on port 53 { 203.0.113.54; };
  listen-on-v6 { none; };
  pid-file "$work/prim/named.pid";
  session-keyfile "$work/prim/session.key";
  allow-query { any; };
  recursion no;
  dnssec-validation no;
  notify no;
};
controls { };
include "$work/prim/update.key";
zone "example.net" { type primary; file "$work/prim/example.net.zone"; allow-update { key "frontdoor-key"; }; };
// The public secondary of Frontdoor's wan view (hidden primary). It reaches Frontdoor at 192.0.2.42 through
// the router, as it would through a WireGuard tunnel: a home address that moves is no primary address.
// NOTIFY comes from wherever the router masquerades it, so it is accepted by its key.
key "xfr-key" { algorithm hmac-sha256; secret "$secret"; };
zone "example.com" {
  type secondary;
  primaries { 192.0.2.42 key "xfr-key"; };
  file "$work/prim/example.com.copy";
  allow-notify { key "xfr-key"; };
};
CONF
daemon prim named -g -c "$work/prim/named.conf" >"$work/prim/named.log" 2>&1
cat > "$work/prim/echo.py" <<'PY'
from http.server import BaseHTTPRequestHandler, HTTPServer
class Echo(BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.client_address[0] + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
HTTPServer(("203.0.113.54", 8080), Echo).serve_forever()
PY
daemon prim python3 "$work/prim/echo.py"

# The ACME CA: pebble, validating DNS-01 by asking the router's public address (its DNAT of port 53 to
# Frontdoor), its API over TLS with a certificate of our own (Frontdoor trusts it with ca-file=).
acme=""
if command -v pebble >/dev/null && command -v openssl >/dev/null; then
    mkdir -p "$work/ca"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=pebble \
        -addext subjectAltName=IP:203.0.113.60 -keyout "$work/ca/key.pem" -out "$work/ca/cert.pem" 2>/dev/null
    cat > "$work/ca/pebble.json" <<CONF
{"pebble": {"listenAddress": "203.0.113.60:14000", "managementListenAddress": "203.0.113.60:15000",
 "certificate": "$work/ca/cert.pem", "privateKey": "$work/ca/key.pem", "httpPort": 80, "tlsPort": 443,
 "ocspResponderURL": "", "externalAccountBindingRequired": false}}
CONF
    daemon ca env PEBBLE_VA_NOSLEEP=1 pebble -config "$work/ca/pebble.json" -dnsserver 203.0.113.1:53 >"$work/ca/log" 2>&1
    acme="acme https://203.0.113.60:14000/dir agree-terms email=admin@example.com ca-file=$work/ca/cert.pem"
else
    echo "SKIP: no pebble (apt-get install pebble): the ACME checks are left out"
fi

# Two small HTTP backends.
for host in b1:69 b2:70; do
    name="${host%%:*}"
    mkdir -p "$work/$name"
    echo "page from backend 192.0.2.${host##*:}" > "$work/$name/index.html"
    daemon "$name" python3 -m http.server 80 --bind "192.0.2.${host##*:}" --directory "$work/$name" \
        >"$work/$name.log" 2>&1
    [ "$name" = b1 ] && backend69=${pids[-1]}
done

# Wait until every peer answers.
for _ in $(seq 100); do
    ns lan curl -s --max-time 1 -o /dev/null http://192.0.2.69/ && ns lan curl -s --max-time 1 -o /dev/null http://192.0.2.70/ \
        && ns wan curl -s --max-time 1 -o /dev/null http://203.0.113.54:8080/ \
        && [ -n "$(ns wan dig @203.0.113.54 +short +time=1 +tries=1 home.example.net A)" ] \
        && [ -n "$(ns wan dig @203.0.113.53 +short +time=1 +tries=1 www.outside.test A)" ] \
        && { [ -z "$acme" ] || ns wan curl -s --max-time 1 -o /dev/null --cacert "$work/ca/cert.pem" https://203.0.113.60:14000/dir; } \
        && break
    sleep 0.1
done

# --- Frontdoor ------------------------------------------------------------------------------------------
mkdir -p "$work/front/state"
cat > "$work/front/frontdoor.conf" <<CONF
view lan 192.0.2.0/24 recursion
view wan *
listen dns 192.0.2.42:53
listen http 192.0.2.42:80
listen https 192.0.2.42:443
internal-ca secure.example.com
listen admin 127.0.0.1:9053 192.0.2.42:9053
upstream 203.0.113.53
state-dir $work/front/state
wan http http://203.0.113.54:8080/
wan interval 2s
wan confirm 2s
wan test-addresses
provider primary rfc2136 server=203.0.113.54 zone=example.net record=home.example.net key=$work/prim/update.key
secondary vps 203.0.113.54 view=wan key=$work/front/xfr.key
$acme
CONF
printf 'key "xfr-key" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n' "$secret" > "$work/front/xfr.key"
chmod 600 "$work/front/xfr.key"
cat > "$work/front/example.com.zone" <<'ZONE'
$ORIGIN example.com.
$TTL 60
$PROXY reverseproxy lan=192.0.2.42 wan=auto ttl=5
$SITE myserver http://192.0.2.69:80 http://192.0.2.70:80 health=/ https=off
$SITE nas      http://192.0.2.69:80 views=lan https=off
$SITE secure   http://192.0.2.69:80 http://192.0.2.70:80
ZONE
# A TXT answer of 860 bytes: larger than the 552-byte path MTU a forged ICMP claims below.
long=$(printf 'x%.0s' $(seq 200))
echo "big TXT \"$long\" \"$long\" \"$long\" \"$long\"" >> "$work/front/example.com.zone"
daemon front "$frontdoor" run --config "$work/front" --workers 2 2>"$work/front/log"
for _ in $(seq 100); do grep -q "serving http" "$work/front/log" 2>/dev/null && break; sleep 0.1; done
for _ in $(seq 50); do
    ns lan dig @192.0.2.42 +short +time=1 +tries=1 reverseproxy.example.com >/dev/null 2>&1 && break
    sleep 0.1
done
# Until the first WAN poll the wan view has no address; wait for it.
for _ in $(seq 100); do
    [ -n "$(ns wan dig @203.0.113.1 +short +time=1 +tries=1 reverseproxy.example.com A)" ] && break
    sleep 0.1
done

# --- The story ------------------------------------------------------------------------------------------
lan_chain=$(ns lan dig @192.0.2.42 +short +time=2 +tries=1 myserver.example.com A | tr '\n' ' ')
check "LAN client: myserver.example.com is a CNAME chain ending at the proxy's LAN address" \
    "reverseproxy.example.com. 192.0.2.42" "$lan_chain"
check "LAN client gets the page through Frontdoor" "page from backend" \
    "$(ns lan curl -s --max-time 5 -H 'Host: myserver.example.com' http://192.0.2.42/)"
wan_chain=$(ns wan dig @203.0.113.1 +short +time=2 +tries=1 myserver.example.com A | tr '\n' ' ')
check "WAN client (through the router's DNAT) gets the chain to the WAN address" \
    "reverseproxy.example.com. 203.0.113.1" "$wan_chain"
check "WAN client gets the same page through the router's DNAT" "page from backend" \
    "$(ns wan curl -s --max-time 5 -H 'Host: myserver.example.com' http://203.0.113.1/)"
check "the LAN-only site is NXDOMAIN from the WAN" "status: NXDOMAIN" \
    "$(ns wan dig @203.0.113.1 +time=2 +tries=1 nas.example.com A)"
check "the LAN-only site answers 403 to the WAN" "403" \
    "$(ns wan curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Host: nas.example.com' http://203.0.113.1/)"
check "the LAN-only site works on the LAN" "page from backend 192.0.2.69" \
    "$(ns lan curl -s --max-time 5 -H 'Host: nas.example.com' http://192.0.2.42/)"
# HTTPS with a certificate from Frontdoor's internal CA (its root made in state-dir at start): the WAN client
# through the router's DNAT of 443, the LAN client directly, both verifying against that root, each at the
# address its own view of DNS gives.
ca_root="$work/front/state/ca/root.crt"
wan_secure=$(ns wan dig @203.0.113.1 +short +time=2 +tries=1 secure.example.com A | tail -1)
lan_secure=$(ns lan dig @192.0.2.42 +short +time=2 +tries=1 secure.example.com A | tail -1)
check "WAN client gets the page over HTTPS at $wan_secure (the router's DNAT of 443), certificate verified" "page from backend" \
    "$(ns wan curl -sS --max-time 5 --cacert "$ca_root" --resolve "secure.example.com:443:$wan_secure" https://secure.example.com/ 2>&1)"
check "LAN client gets the page over HTTPS at $lan_secure directly, certificate verified" "page from backend" \
    "$(ns lan curl -sS --max-time 5 --cacert "$ca_root" --resolve "secure.example.com:443:$lan_secure" https://secure.example.com/ 2>&1)"
check "plain HTTP to the HTTPS site is redirected to https" "308 https://secure.example.com/x?y" \
    "$(ns wan curl -s -o /dev/null -w '%{http_code} %{redirect_url}' --max-time 5 -H 'Host: secure.example.com' 'http://203.0.113.1/x?y')"
# A certificate from the ACME CA: the wildcard for example.com, proved by DNS-01 from Frontdoor's own zone;
# the CA asked the router's public address, as a CA on the internet does.
if [ -n "$acme" ]; then
    for _ in $(seq 600); do grep -q "acme: issued example.com" "$work/front/log" && break; sleep 0.1; done
    check "the ACME CA issued the wildcard certificate, proved by DNS-01 through the router's DNAT of 53" \
        "acme: issued example.com (example.com, *.example.com)" "$(grep 'acme: ' "$work/front/log")"
    check "... once the public secondary served the proof too" "acme: secondary vps serves the proofs" \
        "$(grep 'acme: secondary' "$work/front/log")"
    check "... the CA's DNS questions reached Frontdoor's wan view" "yes" \
        "$(grep -q 'set VALID by completed challenge' "$work/ca/log" && echo yes)"
    ns ca curl -sS --max-time 5 --cacert "$work/ca/cert.pem" -o "$work/ca/root.pem" https://203.0.113.60:15000/roots/0
    wan_site=$(ns wan dig @203.0.113.1 +short +time=2 +tries=1 myserver.example.com A | tail -1)
    check "WAN client gets myserver over HTTPS at $wan_site with the CA's certificate, verified" "page from backend" \
        "$(ns wan curl -sS --max-time 5 --cacert "$work/ca/root.pem" --resolve "myserver.example.com:443:$wan_site" https://myserver.example.com/ 2>&1)"
    check "LAN client gets the LAN-only site over HTTPS with the same wildcard, verified" "page from backend 192.0.2.69" \
        "$(ns lan curl -sS --max-time 5 --cacert "$work/ca/root.pem" --resolve "nas.example.com:443:192.0.2.42" https://nas.example.com/ 2>&1)"
    left=$(ns wan dig @203.0.113.1 +short +time=2 +tries=1 _acme-challenge.example.com TXT | tr '\n' ' ')
    check "the challenge record is gone from the wan view" "records: none" "records: ${left:-none}"
fi
# From one source port both times, so SO_REUSEPORT hands both to the same worker (and its cache).
check "a LAN query for a name outside the zone is forwarded and answered" "198.51.100.80" \
    "$(ns lan dig @192.0.2.42 -b '192.0.2.100#35353' +short +time=3 +tries=1 www.outside.test A)"
check "asked again, it comes from the cache" "198.51.100.80" \
    "$(ns lan dig @192.0.2.42 -b '192.0.2.100#35353' +short +time=3 +tries=1 www.outside.test A)"
check "the same query from the WAN is REFUSED (never an open resolver)" "status: REFUSED" \
    "$(ns wan dig @203.0.113.1 +time=2 +tries=1 www.outside.test A)"
check "the primary got the WAN address by RFC 2136" "203.0.113.1" \
    "$(ns wan dig @203.0.113.54 +short +time=2 +tries=1 home.example.net A)"
for _ in $(seq 100); do
    [ -n "$(ns wan dig @203.0.113.54 +short +time=1 +tries=1 reverseproxy.example.com A)" ] && break
    sleep 0.1
done
check "the public secondary copied the wan view by AXFR (TSIG) and serves it" "203.0.113.1" \
    "$(ns wan dig @203.0.113.54 +short +time=2 +tries=1 reverseproxy.example.com A)"
check "... without the LAN-only site" "status: NXDOMAIN" \
    "$(ns wan dig @203.0.113.54 +time=2 +tries=1 nas.example.com A)"

# Fragmentation attack: a forged ICMP "fragmentation needed, MTU 552" names a reply Frontdoor sent to
# 192.0.2.100:35354. A socket that believes it fragments its later answers there, and forged fragments are
# how caches get poisoned. Frontdoor's UDP sockets ignore path MTU news (IP_PMTUDISC_OMIT), so the
# 860-byte answer still arrives whole: the client's IP layer has nothing to reassemble.
cat > "$work/icmp.py" <<'PY'
import socket, struct
def checksum(data):
    if len(data) % 2: data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16: total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
quoted_ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 1000, 0, 0x4000, 64, 17, 0,
                        socket.inet_aton("192.0.2.42"), socket.inet_aton("192.0.2.100"))
quoted_ip = quoted_ip[:10] + struct.pack("!H", checksum(quoted_ip)) + quoted_ip[12:]
quoted_udp = struct.pack("!HHHH", 53, 35354, 980, 0)
body = struct.pack("!BBHHH", 3, 4, 0, 0, 552) + quoted_ip + quoted_udp
body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
for _ in range(3): sock.sendto(body, ("192.0.2.42", 0))
PY
# Ip: ReasmReqds, the fragments the LAN client's IP layer was asked to reassemble.
reassembled() { ns lan awk '/^Ip:/ { if (seen) { print $15; exit } seen = 1 }' /proc/net/snmp; }
whole=$(ns lan dig @192.0.2.42 -b '192.0.2.100#35354' +time=2 +tries=1 big.example.com TXT | grep -o 'rcvd: [0-9]*')
before=$(reassembled)
ns lan python3 "$work/icmp.py"
sleep 0.2
big=$(ns lan dig @192.0.2.42 -b '192.0.2.100#35354' +time=2 +tries=1 +ignore big.example.com TXT)
check "after a forged ICMP 'fragmentation needed' the TXT answer still arrives whole (${whole:-no first answer})" \
    "${whole:-the first answer}" "$big"
check "... unfragmented (fragments reassembled at the client: $before before, $(reassembled) after)" \
    "=$before=" "=$(reassembled)="

# The ISP moves the router's WAN address: the wan answer and the primary follow within 10 s.
ns router ip addr del 203.0.113.1/24 dev brw
ns router ip addr add 203.0.113.2/24 dev brw
ns wan ip route replace default via 203.0.113.2
ns up ip route replace default via 203.0.113.2
ns prim ip route replace default via 203.0.113.2
ns prim ip route replace 192.0.2.0/24 via 203.0.113.2
ns router conntrack -F >/dev/null 2>&1 || true
moved_at=$(date +%s)
followed=""
for _ in $(seq 100); do
    followed=$(ns wan dig @203.0.113.2 +short +time=1 +tries=1 reverseproxy.example.com A)
    [ "$followed" = "203.0.113.2" ] && break
    sleep 0.1
done
took=$(( $(date +%s) - moved_at ))
check "after the WAN address moved, the wan answer followed (in ${took}s)" "203.0.113.2" "$followed"
[ "$took" -le 10 ] || { echo "FAIL: it took ${took}s (more than 10)"; failures=$((failures + 1)); }
check "the primary followed too" "203.0.113.2" \
    "$(ns wan dig @203.0.113.54 +short +time=2 +tries=1 home.example.net A)"
secondary=""
for _ in $(seq 100); do
    secondary=$(ns wan dig @203.0.113.54 +short +time=1 +tries=1 reverseproxy.example.com A)
    [ "$secondary" = "203.0.113.2" ] && break
    sleep 0.1
done
check "the public secondary followed by NOTIFY and IXFR (its SOA refresh is an hour)" "203.0.113.2" "$secondary"
check "... Frontdoor logged the IXFR" "IXFR of example.com." "$(grep 'secondary vps' "$work/front/log")"
check "the LAN answer did not move" "192.0.2.42" \
    "$(ns lan dig @192.0.2.42 +short +time=2 +tries=1 reverseproxy.example.com A)"

# A backend dies: traffic goes to the other, and Frontdoor reports it down.
kill "$backend69" 2>/dev/null
all_70=yes
for _ in $(seq 6); do
    page=$(ns lan curl -s --max-time 5 -H 'Host: myserver.example.com' http://192.0.2.42/)
    [ "$page" = "page from backend 192.0.2.70" ] || all_70="no ($page)"
done
check "with 192.0.2.69 killed every request is served by 192.0.2.70" "yes" "$all_70"
for _ in $(seq 60); do grep -q "backend 192.0.2.69:80 is down" "$work/front/log" && break; sleep 0.1; done
check "Frontdoor reports the dead backend down" "myserver.example.com backend 192.0.2.69:80 is down" \
    "$(grep 'is down' "$work/front/log")"
check "the admin status page shows the dead backend down" '192.0.2.69:80 <span class="down">down</span>' \
    "$(ns front curl -s --max-time 5 http://127.0.0.1:9053/)"
check "the admin status page shows the other backend up" '192.0.2.70:80 <span class="up">up</span>' \
    "$(ns front curl -s --max-time 5 http://127.0.0.1:9053/)"
check "/metrics counts the requests by site and status" 'frontdoor_http_requests_total{site="myserver.example.com",status="200"}' \
    "$(ns front curl -s --max-time 5 http://127.0.0.1:9053/metrics)"
check "the admin page answers a LAN client" "200" \
    "$(ns lan curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://192.0.2.42:9053/status)"
check "the admin page refuses a WAN client" "403" \
    "$(ns wan curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://192.0.2.42:9053/status)"
metrics=$(ns front curl -s --max-time 5 http://127.0.0.1:9053/metrics)
check "/metrics counts the provider's pushes" 'frontdoor_provider_pushes_total{provider="primary"} 2' "$metrics"
check "/metrics counts DNS by view and rcode" 'frontdoor_dns_responses_total{view="wan",rcode="REFUSED"} 1' "$metrics"
check "/metrics counts the cache hit" 'frontdoor_dns_cache_hits_total 1' "$metrics"
check "/metrics has the upstream latency" 'frontdoor_dns_upstream_seconds_count 1' "$metrics"
transfers=$(grep -o 'frontdoor_dns_transfers_total{secondary="vps"} [0-9]*' <<<"$metrics" | awk '{print $2}')
check "/metrics counts the secondary's transfers (an AXFR, then IXFRs: ${transfers:-none})" "yes" \
    "$([ "${transfers:-0}" -ge 2 ] && echo yes)"
check "the status page shows the secondary's last transfer" "IXFR of example.com." \
    "$(ns front curl -s --max-time 5 http://127.0.0.1:9053/ | grep -o '<h2>Secondaries</h2>.*</table>' | head -c 2000)"
# The status page in a real browser: a headless Chromium screenshot (kept where NETNS_SCREENSHOT says).
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$browser" ]; then
    ns front timeout 60 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,800 \
        --screenshot="$work/status.png" http://127.0.0.1:9053/ >"$work/chromium.log" 2>&1
    size=$(stat -c %s "$work/status.png" 2>/dev/null || echo 0)
    check "Chromium renders the status page (screenshot of $size bytes)" "yes" "$([ "$size" -gt 10000 ] && echo yes)"
    [ -n "${NETNS_SCREENSHOT:-}" ] && cp "$work/status.png" "$NETNS_SCREENSHOT"
else
    echo "SKIP: no chromium for the status page screenshot (apt-get install chromium)"
fi
check "frontdoor status shows the WAN history and the push" "primary: updated; has 203.0.113.2" \
    "$("$frontdoor" status "$work/front")"

# A new user's first step: 'frontdoor init' in the Frontdoor namespace finds the LAN (192.0.2.42/24 on the
# default route's interface) and the router (192.0.2.1); its model passes check and serves, on spare ports.
init_out=$(ns front "$frontdoor" init "$work/init" --domain example.org --site www=http://192.0.2.70:80 2>&1)
check "frontdoor init writes a model from the namespace's network" "view lan 192.0.2.0/24 127.0.0.1/32 recursion" \
    "$(cat "$work/init/frontdoor.conf" 2>/dev/null) $init_out"
check "... with the router as upstream and WAN source" "wan router 192.0.2.1" \
    "$(grep -E '^(upstream|wan router) ' "$work/init/frontdoor.conf" 2>/dev/null | tr '\n' ' ')"
check "... that check accepts" "0 error(s), 0 warning(s)" "$("$frontdoor" check "$work/init" 2>&1)"
check "a second init into the same directory refuses" "init never overwrites" \
    "$(ns front "$frontdoor" init "$work/init" --domain example.org 2>&1; echo "exit $?")"
daemon front "$frontdoor" run --config "$work/init" --dns 192.0.2.42:5353 --http 192.0.2.42:8081 --admin off \
    --wan 203.0.113.1 2>"$work/init.log"
for _ in $(seq 50); do grep -q "serving http" "$work/init.log" 2>/dev/null && break; sleep 0.1; done
check "... and run serves it: the LAN gets www.example.org at Frontdoor's LAN address" \
    "reverseproxy.example.org. 192.0.2.42" \
    "$(ns lan dig @192.0.2.42 -p 5353 +short +time=2 +tries=1 www.example.org A | tr '\n' ' ')"
check "... and the page through its proxy" "page from backend 192.0.2.70" \
    "$(ns lan curl -s --max-time 5 -H 'Host: www.example.org' http://192.0.2.42:8081/)"

# --- The other path: the router protocol ------------------------------------------------------------------
# The router runs miniupnpd (PCP, NAT-PMP, UPnP IGD), and a second Frontdoor uses 'wan router auto' (the
# default route's gateway) instead of the echo service, and 'router forward' instead of the manual DNAT.
# miniupnpd refuses a documentation address as its WAN address, so it gets a second WAN link of its own:
# 11.22.33.44 on a veth pair whose two ends are both in this script's namespaces (router and wan2), with no
# route out of them — nothing is ever sent to that range outside the test.
if command -v miniupnpd >/dev/null; then
    ip link add "u-$prefix" type veth peer name eth0 netns "$prefix-wan2"
    ip link set "u-$prefix" netns "$prefix-router"
    ns router ip link set "u-$prefix" name wan1
    ns router ip addr add 11.22.33.44/24 dev wan1
    ns router ip link set wan1 up
    ns wan2 ip addr add 11.22.33.100/24 dev eth0
    ns wan2 ip link set eth0 up
    mkdir -p "$work/upnp" "$work/router/state"
    # The chains miniupnpd's nftables backend fills, as Debian's nft_init.sh would make them.
    ns router nft -f "$root/Tests/Fixtures/upnp/miniupnpd-tables.nft"
    cat > "$work/upnp/miniupnpd.conf" <<UPNP
ext_ifname=wan1
listening_ip=brl
enable_natpmp=yes
enable_upnp=yes
http_port=5000
secure_mode=yes
uuid=8a2b2a4c-1f0e-4d8e-9c55-1234567890ac
lease_file=$work/upnp/leases
allow 1-65535 192.0.2.42/32 1-65535
deny 0-65535 0.0.0.0/0 0-65535
UPNP
    daemon router miniupnpd -d -f "$work/upnp/miniupnpd.conf" >"$work/upnp/log" 2>&1
    for _ in $(seq 50); do ns router ss -lun | grep -q ':5351' && break; sleep 0.1; done
    cat > "$work/router/frontdoor.conf" <<CONF
view lan 192.0.2.0/24
view wan *
listen dns 192.0.2.42:5354
listen http 192.0.2.42:8082
state-dir $work/router/state
wan router auto
wan interval 1h
wan confirm 2s
router forward tcp/8082
CONF
    printf '$ORIGIN example.com.\n$TTL 60\n$PROXY reverseproxy lan=192.0.2.42 wan=auto\n$SITE myserver http://192.0.2.70:80 https=off\n' \
        > "$work/router/example.com.zone"
    daemon front "$frontdoor" run --config "$work/router" --admin off --workers 1 2>"$work/router/log"
    router_pid=${pids[-1]}
    for _ in $(seq 100); do grep -q "router: forwarding" "$work/router/log" 2>/dev/null && break; sleep 0.1; done
    check "wan router auto: the router (the default route's gateway) answers over PCP" \
        "wan: the router at 192.0.2.1 answers over pcp" "$(cat "$work/router/log")"
    check "... and the wan view answers the address the router named" "11.22.33.44" \
        "$(ns wan dig @192.0.2.42 -p 5354 +short +time=2 +tries=1 reverseproxy.example.com A)"
    check "Frontdoor asked the router for its port forward" "router: forwarding tcp/8082 on 192.0.2.1 to this host over pcp" \
        "$(cat "$work/router/log")"
    check "... which is in miniupnpd's nftables chain" "dport 8082 dnat ip to 192.0.2.42:8082" \
        "$(ns router nft list chain inet filter prerouting_miniupnpd)"
    check "a WAN client gets the page through the forward Frontdoor asked for" "page from backend 192.0.2.70" \
        "$(ns wan2 curl -s --max-time 5 -H 'Host: myserver.example.com' http://11.22.33.44:8082/)"
    kill "$router_pid" 2>/dev/null
    for _ in $(seq 50); do grep -q "router: removed the forward" "$work/router/log" && break; sleep 0.1; done
    check "Frontdoor stopped: the forward is gone from the router" "no forward" \
        "$(ns router nft list chain inet filter prerouting_miniupnpd | grep -q 8082 && echo still there || echo no forward)"
else
    echo "SKIP: no miniupnpd (apt-get install miniupnpd miniupnpd-nftables): the router protocol checks are left out"
fi

if [ "$failures" -gt 0 ]; then
    echo "netns.sh: $failures check(s) failed; Frontdoor's log:"
    cat "$work/front/log"
    echo "--- named:"
    tail -20 "$work/prim/named.log"
    ns wan dig @203.0.113.54 +time=2 +tries=1 home.example.net A
    exit 1
fi
echo "netns.sh: all checks passed"
