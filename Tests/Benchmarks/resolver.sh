#!/usr/bin/env bash
# LAN-resolver benchmark (issue 18): Frontdoor, Unbound and dnsmasq forwarding to the same NSD (a generated zone
# of NAMES names plus a wildcard), each on one pinned core (core 0) with one worker, interleaved.
#  1. Cache hits: every name asked once to warm the cache, then ROUNDS × SECONDS of the same questions from the
#     batched generator on core 1 (dnsload, sendmmsg/recvmmsg): queries/s and CPU per query (the resolver's
#     own process, all threads), medians and ratios.
#  2. Cache misses: 400 names never asked before, one at a time, through each resolver to NSD: p50 and p99
#     latency as the client sees it (the same Python client for all, so its own cost is the same for all).
#   Tests/Benchmarks/resolver.sh [ROUNDS] [SECONDS] [NAMES]      (defaults 3, 5, 10000)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
seconds="${2:-5}"
names="${3:-10000}"
for tool in nsd unbound dnsmasq gcc taskset python3 dig; do
    command -v "$tool" >/dev/null || { echo "resolver.sh needs $tool (apt-get install nsd unbound dnsmasq-base gcc util-linux python3 dnsutils)"; exit 1; }
done
work="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
swift build -c release --product frontdoor >/dev/null
frontdoor="$PWD/.build/release/frontdoor"
gcc -O2 -o "$work/dnsload" Tests/Benchmarks/dnsload.c

port_base=$((20000 + RANDOM % 20000))
nsd_port=$port_base
declare -A port=([frontdoor]=$((port_base + 1)) [unbound]=$((port_base + 2)) [dnsmasq]=$((port_base + 3))
    [baseline]=$((port_base + 4)))
resolvers=(frontdoor unbound dnsmasq)
# FRONTDOOR_BASELINE=PATH (an earlier build) runs beside them as "baseline".
baseline="${FRONTDOOR_BASELINE:-}"
[ -n "$baseline" ] && resolvers+=(baseline)

# The upstream zone, the hit questions (each name, type A, with EDNS) and the miss names.
python3 - "$work" "$names" <<'PY'
import random, struct, sys
work, count = sys.argv[1], int(sys.argv[2])
zone = ["$ORIGIN bench.test.", "$TTL 3600", "@ SOA ns hostmaster 1 3600 900 1209600 3600", "@ NS ns",
        "ns A 192.0.2.53", "* A 198.51.100.1"]
zone += [f"host{i} A 198.51.100.{i % 250 + 1}" for i in range(count)]
open(f"{work}/bench.test.zone", "w").write("\n".join(zone) + "\n")
def name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".") if l) + b"\0"
random.seed(18)
with open(f"{work}/queries", "wb") as out:
    for i in random.sample(range(count), count):
        q = struct.pack(">HHHHHH", 0, 0x0100, 1, 0, 0, 1) + name(f"host{i}.bench.test") + struct.pack(">HH", 1, 1)
        q += b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0)
        out.write(struct.pack(">H", len(q)) + q)
PY
cat > "$work/latency.py" <<'PY'
import socket, struct, sys, time
port, prefix, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".") if l) + b"\0"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
times = []
for i in range(count):
    q = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + name(f"{prefix}{i}.bench.test") + struct.pack(">HH", 1, 1)
    start = time.perf_counter()
    s.sendto(q, ("127.0.0.1", port))
    try:
        reply = s.recv(4096)
        ok = len(reply) > 12 and reply[3] & 0x0F == 0 and (reply[6] << 8 | reply[7]) > 0
        times.append((time.perf_counter() - start) * 1e6 if ok else 2e6)
    except socket.timeout:
        times.append(2e6)
times.sort()
print(f"{times[len(times) // 2]:.0f} {times[int(len(times) * 0.99)]:.0f}")
PY

mkdir -p "$work/nsd" "$work/fd" "$work/unbound" "$work/dnsmasq"
cat > "$work/nsd/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1@$nsd_port
  zonesdir: "$work"
  pidfile: "$work/nsd/nsd.pid"
  database: ""
  username: ""
  chroot: ""
  logfile: "$work/nsd/nsd.log"
  xfrdfile: "$work/nsd/xfrd.state"
  zonelistfile: "$work/nsd/zone.list"
  rrl-ratelimit: 0
  server-count: 1
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: bench.test
  zonefile: bench.test.zone
CONF
printf 'view lan 127.0.0.0/8 recursion\nview wan *\nupstream 127.0.0.1:%s\nlisten http off\nlisten admin off\n' \
    "$nsd_port" > "$work/fd/frontdoor.conf"
printf '$ORIGIN home.arpa.\n$TTL 60\n@ NS ns\nns A 192.0.2.1\n' > "$work/fd/home.arpa.zone"
cat > "$work/unbound/unbound.conf" <<CONF
server:
  interface: 127.0.0.1@${port[unbound]}
  port: ${port[unbound]}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$work/unbound"
  pidfile: "$work/unbound/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  num-threads: 1
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  msg-cache-size: 32m
  rrset-cache-size: 64m
  ratelimit: 0
  qname-minimisation: no
  # test. is one of Unbound's built-in local zones (RFC 6761), answered NXDOMAIN without asking anyone.
  local-zone: "test." nodefault
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$nsd_port
CONF

taskset -c 1 nsd -d -c "$work/nsd/nsd.conf" & pids+=($!)
taskset -c 0 "$frontdoor" run --config "$work/fd" --dns "127.0.0.1:${port[frontdoor]}" --workers 1 \
    2>"$work/frontdoor.log" & declare -A pid=([frontdoor]=$!); pids+=($!)
taskset -c 0 unbound -d -c "$work/unbound/unbound.conf" 2>"$work/unbound.log" & pid[unbound]=$!; pids+=($!)
taskset -c 0 dnsmasq -k -C /dev/null --no-resolv --no-hosts --server="127.0.0.1#$nsd_port" \
    --listen-address=127.0.0.1 --port="${port[dnsmasq]}" --bind-interfaces --cache-size=10000 \
    --dns-forward-max=1000 --pid-file="$work/dnsmasq/pid" --user=root 2>"$work/dnsmasq.log" & pid[dnsmasq]=$!; pids+=($!)
if [ -n "$baseline" ]; then
    taskset -c 0 "$baseline" run --config "$work/fd" --dns "127.0.0.1:${port[baseline]}" --workers 1 \
        2>"$work/baseline.log" & pid[baseline]=$!; pids+=($!)
fi
for name in "${resolvers[@]}"; do
    for _ in $(seq 100); do
        dig @127.0.0.1 -p "${port[$name]}" +time=1 +tries=1 +short host1.bench.test A 2>/dev/null | grep -qv '^;' && break
        sleep 0.2
    done
    # Everything on core 0 (some start threads later).
    taskset -a -p -c 0 "${pid[$name]}" >/dev/null 2>&1 || true
    # Each really forwards: the upstream's answer for a name and for one under the wildcard.
    got="$(dig @127.0.0.1 -p "${port[$name]}" +short host1.bench.test A) $(dig @127.0.0.1 -p "${port[$name]}" +short check.bench.test A)"
    [ "$got" = "198.51.100.2 198.51.100.1" ] || { echo "$name does not forward as expected: $got"; exit 1; }
done

hz=$(getconf CLK_TCK)
cpu_ticks() {
    local total=0
    for stat in /proc/"$1"/task/*/stat; do
        [ -r "$stat" ] || continue
        total=$((total + $(sed -E 's/^.*\) //' "$stat" | awk '{print $12 + $13}')))
    done
    echo "$total"
}

# Warm every cache with every name (twice over).
for name in "${resolvers[@]}"; do taskset -c 1 "$work/dnsload" "${port[$name]}" "$work/queries" 2 8 1 >/dev/null; done

echo "cache hits: $names names, ${rounds} interleaved rounds of ${seconds}s, each resolver on core 0, load on core 1"
: > "$work/results"
for round in $(seq "$rounds"); do
    for name in "${resolvers[@]}"; do
        before=$(cpu_ticks "${pid[$name]}")
        line=$(taskset -c 1 "$work/dnsload" "${port[$name]}" "$work/queries" "$seconds" 64 4)
        after=$(cpu_ticks "${pid[$name]}")
        qps=$(awk '{print $2}' <<<"$line")
        responses=$(awk '{print $6}' <<<"$line")
        servfail=$(awk '{print $12 + $10}' <<<"$line")
        cpu_us=$(python3 -c "print(f'{($after - $before) / $hz * 1e6 / max(1, $responses):.2f}')")
        echo "$name $qps $cpu_us $servfail" >> "$work/results"
        echo "  round $round $name: qps $qps cpu/query ${cpu_us}us servfail+nxdomain $servfail"
    done
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, qps, cpu, bad = line.split()
    rows.setdefault(name, []).append((float(qps), float(cpu), int(bad)))
med = {n: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v)) for n, v in rows.items()}
print(f"{'resolver':10} {'qps':>10} {'cpu us/q':>9}")
names = [n for n in ["frontdoor", "unbound", "dnsmasq", "baseline"] if n in med]
for n in names:
    print(f"{n:10} {med[n][0]:10.0f} {med[n][1]:9.2f}")
fd = med["frontdoor"]
for n in names[1:]:
    print(f"  frontdoor vs {n:8} qps {fd[0] / med[n][0]:5.2f}x   cpu/query {fd[1] / max(0.01, med[n][1]):5.2f}x")
PY

echo "cache misses: 400 new names each, one at a time (latency in microseconds as the client sees it)"
for round in $(seq "$rounds"); do
    for name in "${resolvers[@]}"; do
        echo "$name $(taskset -c 1 python3 "$work/latency.py" "${port[$name]}" "miss-$round-$name-" 400) $round" >> "$work/latency"
    done
done
python3 - "$work/latency" <<'PY'
import statistics, sys
rows, rounds = {}, {}
for line in open(sys.argv[1]):
    name, p50, p99, round_ = line.split()
    rows.setdefault(name, []).append((float(p50), float(p99)))
    rounds.setdefault(round_, {})[name] = float(p50)
med = {n: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v)) for n, v in rows.items()}
print(f"{'resolver':10} {'p50 us':>8} {'p99 us':>8}")
names = [n for n in ["frontdoor", "unbound", "dnsmasq", "baseline"] if n in med]
for n in names:
    print(f"{n:10} {med[n][0]:8.0f} {med[n][1]:8.0f}")
# The machine's own latency drifts between rounds (a shared VM): the ratio within each round, then its median,
# is the steadier comparison.
for n in names[1:]:
    paired = statistics.median(r["frontdoor"] / r[n] for r in rounds.values())
    print(f"  frontdoor vs {n:8} p50 {med['frontdoor'][0] / med[n][0]:5.2f}x   p99 {med['frontdoor'][1] / med[n][1]:5.2f}x"
          f"   p50 within each round {paired:5.2f}x")
PY
