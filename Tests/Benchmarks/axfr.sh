#!/usr/bin/env bash
# Zone transfer benchmark (issue 14): the 50,000-site model's wan view by AXFR from Frontdoor (the release
# build), NSD and Knot serving the same zone (`frontdoor export`), interleaved, each round timed as dig sees
# it (first query to last message) with its bytes and messages; then the transfer is compared record for
# record with `frontdoor export` (named-compilezone canonical form, sorted), and an IXFR after one change of
# the proxy's WAN address (a reload, the same recompile a WAN change does) is measured in bytes.
#   Tests/Benchmarks/axfr.sh [SITES] [ROUNDS]      (defaults 50000 and 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
sites="${1:-50000}"
rounds="${2:-5}"
for tool in nsd knotd dig named-compilezone python3; do
    command -v "$tool" >/dev/null || { echo "axfr.sh needs $tool (apt-get install nsd knot dnsutils bind9-utils python3)"; exit 1; }
done
source Tests/Benchmarks/lib.sh
work="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
swift build -c release --product frontdoor >/dev/null
frontdoor="$PWD/.build/release/frontdoor"

mkdir -p "$work/fd" "$work/nsd" "$work/knot/db"
python3 - "$work/fd" "$sites" <<'PY'
import sys
work, count = sys.argv[1], int(sys.argv[2])
zone = ["$ORIGIN example.com.", "$TTL 300", "$PROXY reverseproxy lan=192.0.2.42 wan=203.0.113.1",
        "@ MX 10 mail", "mail A 192.0.2.25", "@ TXT \"v=spf1 -all\""]
zone += [f"$SITE site{i} http://192.0.2.{i % 250 + 1}:80" for i in range(count)]
open(f"{work}/example.com.zone", "w").write("\n".join(zone) + "\n")
open(f"{work}/frontdoor.conf", "w").write(
    "view lan 192.0.2.0/24\nview wan *\nlisten http off\nlisten admin off\nstate-dir state\n"
    "secondary bench 127.0.0.1 view=wan notify=no\n")
PY
"$frontdoor" export --view wan "$work/fd" > "$work/example.com.export"
cp "$work/example.com.export" "$work/nsd/example.com.zone"
cp "$work/example.com.export" "$work/knot/example.com.zone"

fd_port=$(free_port); nsd_port=$(free_port); knot_port=$(free_port)
cat > "$work/nsd/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1@$nsd_port
  zonesdir: "$work/nsd"
  pidfile: "$work/nsd/nsd.pid"
  database: ""
  username: ""
  chroot: ""
  xfrdfile: "$work/nsd/xfrd.state"
  zonelistfile: "$work/nsd/zone.list"
  server-count: 1
  rrl-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: "example.com"
  zonefile: "example.com.zone"
  provide-xfr: 127.0.0.1 NOKEY
CONF
cat > "$work/knot/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$knot_port
    rundir: "$work/knot"
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$work/knot/db"
acl:
  - id: local
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: "$work/knot"
zone:
  - domain: example.com
    acl: local
CONF
# Each in its own process group (NSD serves transfers from a child), so its CPU time can be read.
setsid nsd -d -c "$work/nsd/nsd.conf" 2>"$work/nsd.log" & nsd_pid=$!; pids+=($nsd_pid)
setsid knotd -c "$work/knot/knot.conf" 2>"$work/knot.log" & knot_pid=$!; pids+=($knot_pid)
setsid "$frontdoor" run --config "$work/fd" --dns "127.0.0.1:$fd_port" --workers 1 2>"$work/frontdoor.log" &
fd_pid=$!; pids+=($fd_pid)
for port in $fd_port $nsd_port $knot_port; do
    for _ in $(seq 300); do
        # dig prints its errors on stdout too: wait for a line that is not a comment.
        dig @127.0.0.1 -p "$port" +time=1 +tries=1 +short example.com SOA 2>/dev/null | grep -qv '^;' && break
        sleep 0.1
    done
done

# One AXFR: milliseconds (wall clock around dig), the server's CPU milliseconds (its process group's
# ticks), bytes, messages and records as dig reports them.
transfer() {
    local port=$1 out=$2 group=$3 start end before after
    before=$(ticks "$group")
    start=$(date +%s%N)
    dig @127.0.0.1 -p "$port" example.com AXFR +onesoa +nocmd +nocomments > "$out"
    end=$(date +%s%N)
    sleep 0.05
    after=$(ticks "$group")
    local size; size=$(grep -o 'XFR size: .*' "$out") || { echo "the transfer from port $port failed:" >&2; tail -3 "$out" >&2; exit 1; }
    echo "$(( (end - start) / 1000000 )) $(( (after - before) * 1000 / $(getconf CLK_TCK) )) $(sed -E 's/.*bytes ([0-9]+)\).*/\1/' <<<"$size") $(sed -E 's/.*messages ([0-9]+),.*/\1/' <<<"$size") $(sed -E 's/XFR size: ([0-9]+) records.*/\1/' <<<"$size")"
}
echo "AXFR of example.com (wan view, $sites sites), $rounds interleaved rounds: ms cpu-ms bytes messages records"
: > "$work/results"
for round in $(seq "$rounds"); do
    for server in frontdoor nsd knot; do
        case $server in
            frontdoor) port=$fd_port; group=$fd_pid;; nsd) port=$nsd_port; group=$nsd_pid;;
            knot) port=$knot_port; group=$knot_pid;;
        esac
        line=$(transfer "$port" "$work/$server.axfr" "$group") || exit 1
        echo "$server $line" >> "$work/results"
        echo "  round $round $server: $line"
    done
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, ms, cpu, size, messages, records = line.split()
    rows.setdefault(name, []).append((int(ms), int(cpu), int(size), int(messages), int(records)))
med = {n: (statistics.median(r[0] for r in v), statistics.mean(r[1] for r in v), v[0][2], v[0][3], v[0][4])
       for n, v in rows.items()}
print(f"{'server':10} {'median ms':>10} {'cpu ms':>7} {'bytes':>10} {'messages':>9} {'records':>8}")
for n in ["frontdoor", "nsd", "knot"]:
    ms, cpu, size, messages, records = med[n]
    print(f"{n:10} {ms:10.0f} {cpu:7.0f} {size:10d} {messages:9d} {records:8d}")
fd = med["frontdoor"]
for n in ["nsd", "knot"]:
    print(f"  frontdoor vs {n:5} time {fd[0] / max(1, med[n][0]):5.2f}x   server cpu {fd[1] / max(1, med[n][1]):5.2f}x"
          f"   bytes {fd[2] / med[n][2]:5.2f}x")
print("(time is dig's, first query to last record printed: the client's parsing is most of it; cpu is the server's")
print(" process group over the transfer, in 10 ms ticks, averaged)")
PY

# Same records as the export?
canonical() { grep -v '^;' "$1" | sed '/^$/d' > "$1.zone"; named-compilezone -q -i none -s full -o - example.com "$1.zone" | sort; }
canonical "$work/frontdoor.axfr" > "$work/a.sorted"
canonical "$work/example.com.export" > "$work/b.sorted"
if diff -q "$work/a.sorted" "$work/b.sorted" >/dev/null; then
    echo "transfer = export: $(wc -l < "$work/a.sorted") records, identical"
else
    echo "transfer differs from export:"; diff "$work/a.sorted" "$work/b.sorted" | head -20; exit 1
fi

# IXFR after one change of the proxy's WAN address.
serial=$(dig @127.0.0.1 -p "$fd_port" +short example.com SOA | awk '{print $3}')
sed -i 's/wan=203.0.113.1/wan=203.0.113.2/' "$work/fd/example.com.zone"
kill -HUP "$fd_pid"
for _ in $(seq 300); do
    now=$(dig @127.0.0.1 -p "$fd_port" +short example.com SOA | awk '{print $3}')
    [ -n "$now" ] && [ "$now" != "$serial" ] && break
    sleep 0.1
done
dig @127.0.0.1 -p "$fd_port" example.com "IXFR=$serial" +nocmd +nocomments > "$work/ixfr"
echo "IXFR from serial $serial after one WAN change: $(grep -o 'XFR size: .*' "$work/ixfr")"
grep -v '^;' "$work/ixfr" | sed '/^$/d'
