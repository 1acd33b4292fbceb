#!/usr/bin/env bash
# DNS benchmark: Frontdoor against NSD, Knot and a canned-reply "ceiling" responder, all on loopback.
#
# Every server answers the same model (Frontdoor serves it, NSD and Knot serve `frontdoor export` of it),
# is pinned to core 0 with one worker, and is driven by the same closed-loop sendmmsg/recvmmsg load
# generator pinned to core 1 (dnsperf tops out near 100k qps here). Servers take turns, several rounds,
# and the script prints per-server medians of qps, CPU microseconds per query and RSS, and the ratios.
# A second table repeats the run with two workers per server, unpinned.
#   Tests/Benchmarks/dns.sh [ROUNDS] [SECONDS] [SITES] [pinned]   (defaults 5, 5, 50000; "pinned" skips
#                                                                   the two-worker table)
# FRONTDOOR_BASELINE=PATH adds another frontdoor binary (an earlier build) as "baseline", run in the same
# rounds, and prints frontdoor/baseline: a before/after comparison interleaved with everything else.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-5}"
seconds="${2:-5}"
sites="${3:-50000}"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    pkill -f "$work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

for tool in nsd knotd gcc taskset python3; do
    command -v "$tool" >/dev/null || { echo "dns.sh needs $tool (apt-get install nsd knot gcc util-linux python3)"; exit 1; }
done
swift build -c release --product frontdoor >/dev/null
frontdoor="$PWD/.build/release/frontdoor"
gcc -O2 -o "$work/dnsload" Tests/Benchmarks/dnsload.c
gcc -O2 -o "$work/ceiling" Tests/Benchmarks/ceiling.c

# The model: the shipped example plus SITES generated sites; one view, and a two-view copy where the
# benchmark client (127.0.0.1) falls in the second view.
mkdir -p "$work/one" "$work/two"
python3 - "$work" "$sites" <<'PY'
import sys
work, count = sys.argv[1], int(sys.argv[2])
zone = ["$ORIGIN example.com.", "$TTL 300", "$PROXY reverseproxy wan=203.0.113.1",
        "@ MX 10 mail", "mail A 192.0.2.25", "@ TXT \"v=spf1 -all\"",
        "$SITE myserver http://192.0.2.69:80", "$SITE myapp http://192.0.2.70:80 http://192.0.2.71:80"]
zone += [f"$SITE site{i} http://192.0.2.{i % 250 + 1}:80" for i in range(count)]
text = "\n".join(zone) + "\n"
open(f"{work}/one/example.com.zone", "w").write(text)
open(f"{work}/two/example.com.zone", "w").write(text.replace("wan=203.0.113.1", "lan=192.0.2.42 wan=203.0.113.1"))
# DNS only: the proxy and the admin listener are off (they would bind :80 and :9053).
services = "listen http off\nlisten admin off\n"
open(f"{work}/one/frontdoor.conf", "w").write("view wan *\n" + services)
open(f"{work}/two/frontdoor.conf", "w").write(
    "view lan 192.0.2.0/24 198.51.100.0/24 2001:db8::/32 10.0.0.0/8\nview wan *\n" + services)
PY
"$frontdoor" export --view wan "$work/one" > "$work/example.com.zone"

# The query mix: sites through their CNAME chain, the proxy record, NODATA, NXDOMAIN, MX, TXT; with EDNS.
python3 - "$work/queries" "$sites" <<'PY'
import random, struct, sys
random.seed(7)
path, count = sys.argv[1], int(sys.argv[2])
def name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".") if l) + b"\0"
def query(n, qtype):
    q = struct.pack(">HHHHHH", 0, 0x0100, 1, 0, 0, 1) + name(n) + struct.pack(">HH", qtype, 1)
    return q + b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0)
mix = []
for i in range(10000):
    r = random.random()
    if r < 0.30: mix.append((f"site{random.randrange(count)}.example.com", 1))
    elif r < 0.40: mix.append((random.choice(["myserver", "myapp"]) + ".example.com", 1))
    elif r < 0.55: mix.append(("reverseproxy.example.com", 1))
    elif r < 0.65: mix.append((f"site{random.randrange(count)}.example.com", 28))
    elif r < 0.80: mix.append((f"missing{random.randrange(10**6)}.example.com", 1))
    elif r < 0.90: mix.append(("example.com", 15))
    else: mix.append(("example.com", 16))
with open(path, "wb") as out:
    for n, t in mix:
        q = query(n, t)
        out.write(struct.pack(">H", len(q)) + q)
PY

port_base=$((20000 + RANDOM % 20000))
port_of() { case "$1" in ceiling) echo $port_base;; nsd) echo $((port_base+1));; knot) echo $((port_base+2));; frontdoor) echo $((port_base+3));; frontdoor-2views) echo $((port_base+4));; baseline) echo $((port_base+5));; esac; }
baseline="${FRONTDOOR_BASELINE:-}"
servers=(ceiling nsd knot frontdoor frontdoor-2views)
[ -n "$baseline" ] && servers+=(baseline)

# Starts every server with WORKERS workers (pinned to core 0 when PIN=1); records their pids by name.
declare -A server_pid
start_servers() {
    local workers=$1 pin=$2
    local prefix=""
    [ "$pin" = 1 ] && prefix="taskset -c 0"
    $prefix "$work/ceiling" "$(port_of ceiling)" & server_pid[ceiling]=$!; pids+=($!)

    mkdir -p "$work/nsd"
    cat > "$work/nsd/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1@$(port_of nsd)
  zonesdir: "$work"
  pidfile: "$work/nsd/nsd.pid"
  database: ""
  username: ""
  chroot: ""
  logfile: "$work/nsd/nsd.log"
  xfrdfile: "$work/nsd/xfrd.state"
  zonelistfile: "$work/nsd/zone.list"
  rrl-ratelimit: 0
  server-count: $workers
  reuseport: yes
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: example.com
  zonefile: example.com.zone
CONF
    $prefix nsd -d -c "$work/nsd/nsd.conf" & server_pid[nsd]=$!; pids+=($!)

    mkdir -p "$work/knot/db"
    cat > "$work/knot/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$(port_of knot)
    rundir: "$work/knot"
    udp-workers: $workers
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$work/knot/db"
log:
  - target: stderr
    any: error
zone:
  - domain: example.com
    file: "$work/example.com.zone"
    storage: "$work/knot"
CONF
    $prefix knotd -c "$work/knot/knot.conf" 2>"$work/knot/knot.log" & server_pid[knot]=$!; pids+=($!)

    $prefix "$frontdoor" run --config "$work/one" --dns "127.0.0.1:$(port_of frontdoor)" --workers "$workers" \
        --rate-limit 0 2>"$work/frontdoor.log" & server_pid[frontdoor]=$!; pids+=($!)
    $prefix "$frontdoor" run --config "$work/two" --dns "127.0.0.1:$(port_of frontdoor-2views)" --workers "$workers" \
        --rate-limit 0 2>"$work/frontdoor2.log" & server_pid[frontdoor-2views]=$!; pids+=($!)
    if [ -n "$baseline" ]; then
        $prefix "$baseline" run --config "$work/one" --dns "127.0.0.1:$(port_of baseline)" --workers "$workers" \
            --rate-limit 0 2>"$work/baseline.log" & server_pid[baseline]=$!; pids+=($!)
    fi
    sleep 2
    # Knot moves its threads: pin all of them again once it runs.
    if [ "$pin" = 1 ]; then
        for name in "${!server_pid[@]}"; do taskset -a -p -c 0 "${server_pid[$name]}" >/dev/null 2>&1 || true; done
        for child in $(pgrep -f "$work/nsd/nsd.conf"); do taskset -a -p -c 0 "$child" >/dev/null 2>&1 || true; done
    fi
    for name in "${servers[@]}"; do
        "$work/dnsload" "$(port_of $name)" "$work/queries" 0.5 >/dev/null
    done
}

stop_servers() {
    for name in "${!server_pid[@]}"; do kill "${server_pid[$name]}" 2>/dev/null || true; done
    pkill -f "$work/nsd/nsd.conf" 2>/dev/null || true
    sleep 1
}

# CPU seconds (user + system, all threads) of every process belonging to a server.
server_pids() {
    case "$1" in
        nsd) pgrep -f "$work/nsd/nsd.conf" ;;
        *) echo "${server_pid[$1]}" ;;
    esac
}
cpu_ticks() {
    local total=0
    for pid in $(server_pids "$1"); do
        for stat in /proc/"$pid"/task/*/stat; do
            [ -r "$stat" ] || continue
            # Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
            total=$((total + $(sed -E 's/^.*\) //' "$stat" | awk '{print $12 + $13}')))
        done
    done
    echo "$total"
}
rss_kb() {
    local total=0
    for pid in $(server_pids "$1"); do
        total=$((total + $(awk '/VmRSS/ {print $2}' /proc/"$pid"/status 2>/dev/null || echo 0)))
    done
    echo "$total"
}

hz=$(getconf CLK_TCK)
run_table() {
    local label=$1 workers=$2 pin=$3
    local load_prefix=""
    [ "$pin" = 1 ] && load_prefix="taskset -c 1"
    start_servers "$workers" "$pin"
    : > "$work/results"
    for round in $(seq "$rounds"); do
        for name in "${servers[@]}"; do
            before=$(cpu_ticks "$name")
            line=$($load_prefix "$work/dnsload" "$(port_of $name)" "$work/queries" "$seconds" 64 4)
            after=$(cpu_ticks "$name")
            qps=$(awk '{print $2}' <<<"$line")
            responses=$(awk '{print $6}' <<<"$line")
            bad=$(awk '{print $12 + $14}' <<<"$line")
            cpu_us=$(python3 -c "print(f'{($after - $before) / $hz * 1e6 / max(1, $responses):.2f}')")
            echo "$name $qps $cpu_us $(rss_kb "$name") $bad" >> "$work/results"
            echo "  round $round $name: $line cpu/query ${cpu_us}us"
        done
    done
    stop_servers
    python3 - "$work/results" "$label" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, qps, cpu, rss, bad = line.split()
    rows.setdefault(name, []).append((float(qps), float(cpu), int(rss), int(bad)))
med = {n: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v), max(r[2] for r in v), sum(r[3] for r in v))
       for n, v in rows.items()}
print(f"\n{sys.argv[2]} (medians of {len(rows['frontdoor'])} rounds)")
print(f"{'server':18} {'qps':>10} {'cpu us/q':>9} {'rss MiB':>8} {'SERVFAIL+REFUSED':>17}")
for name in [n for n in ["ceiling", "nsd", "knot", "frontdoor", "frontdoor-2views", "baseline"] if n in med]:
    q, c, r, b = med[name]
    print(f"{name:18} {q:10.0f} {c:9.2f} {r/1024:8.1f} {b:17d}")
fd = med["frontdoor"]
print("ratios (frontdoor / other):")
for name in [n for n in ["ceiling", "nsd", "knot", "baseline"] if n in med]:
    q, c, r, b = med[name]
    print(f"  vs {name:8} qps {fd[0]/q:5.2f}x   cpu/query {fd[1]/max(c, 0.01):5.2f}x   rss {fd[2]/max(1,r):5.2f}x")
two = med["frontdoor-2views"]
print(f"  two views vs one: qps {two[0]/fd[0]:5.2f}x  cpu/query {two[1]/max(fd[1], 0.01):5.2f}x")
PY
}

echo "model: $sites sites; query mix of $(python3 -c "import os;print(os.path.getsize('$work/queries'))") bytes; $rounds rounds of ${seconds}s"
run_table "one pinned worker each (server on core 0, load on core 1)" 1 1
[ "${4:-}" = pinned ] || run_table "two workers each, unpinned" 2 0
