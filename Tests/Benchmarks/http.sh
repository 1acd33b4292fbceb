#!/usr/bin/env bash
# HTTP proxy benchmark: Frontdoor against nginx and HAProxy as reverse proxies, all on loopback.
#
# One nginx backend (one worker, pinned to core 1 with the load generator) answers a tiny response from
# its configuration (`return 200`) and serves a 100 KB file (sendfile, open-file cache). It is kept that cheap
# so that core 1 (wrk plus backend) is not the limit: serving the tiny response from a file, it was, and
# every proxy measured the same. Each proxy runs with one worker pinned to core 0, keeps backend connections
# alive, and is driven by the same wrk run (pinned to core 1): tiny responses over keep-alive, 100 KB
# responses over keep-alive, and tiny responses with "Connection: close". Proxies take turns, several
# rounds, with a "direct" run (wrk to the backend, no proxy: the bound no proxy can pass); the script prints
# medians of requests/s, p99 latency, CPU microseconds per request (all of the proxy's processes) and how
# busy each core was, then Frontdoor's ratios. Then it opens 10,000 idle
# keep-alive clients on Frontdoor and reports its RSS.
#   Tests/Benchmarks/http.sh [ROUNDS] [SECONDS] [CONNECTIONS]   (defaults 3, 10, 50)
# FRONTDOOR_BASELINE=PATH adds another frontdoor binary (an earlier build) as "baseline", run in the same
# rounds, and prints frontdoor/baseline: a before/after comparison interleaved with everything else.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
seconds="${2:-10}"
connections="${3:-50}"
work="$(mktemp -d)"
leaders=()
cleanup() {
    for pid in "${leaders[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

for tool in nginx haproxy wrk taskset python3; do
    command -v "$tool" >/dev/null || {
        echo "http.sh needs $tool (apt-get install nginx-light haproxy wrk util-linux python3)"
        exit 1
    }
done
# Shared helpers: free_port, temp_paths, start, wait_port, ticks, core_times.
source Tests/Benchmarks/lib.sh
swift build -c release --product frontdoor >/dev/null
frontdoor="$PWD/.build/release/frontdoor"

backend_port=$(free_port)
nginx_port=$(free_port)
haproxy_port=$(free_port)
frontdoor_port=$(free_port)
baseline="${FRONTDOOR_BASELINE:-}"
baseline_port=$(free_port)
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root root;"

mkdir -p "$work/www" "$work/backend" "$work/nginx" "$work/conf"
printf 'hello, world\n' > "$work/www/tiny.txt"
head -c 102400 /dev/urandom > "$work/www/100k.bin"

backend_conf 4096 "" > "$work/backend/nginx.conf"
cat > "$work/nginx/nginx.conf" <<EOF
daemon off;
$user_line
worker_processes 1;
worker_rlimit_nofile 20000;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 16384; }
http {
  access_log off;
$(temp_paths "$work/nginx")
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$backend_port; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
EOF
cat > "$work/haproxy.cfg" <<EOF
global
  maxconn 8000
  nbthread 1
defaults
  mode http
  option forwardfor
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend web
  bind 127.0.0.1:$haproxy_port
  default_backend app
backend app
  http-reuse always
  server s1 127.0.0.1:$backend_port
EOF
cat > "$work/conf/frontdoor.conf" <<EOF
view lan 127.0.0.0/8 recursion
view wan *
upstream 127.0.0.1:9
listen admin off
EOF
cat > "$work/conf/example.com.zone" <<EOF
\$ORIGIN example.com.
\$TTL 300
\$PROXY reverseproxy lan=127.0.0.1 wan=203.0.113.1
\$SITE bench http://127.0.0.1:$backend_port
EOF



leaders+=("$(start 1 nginx -c "$work/backend/nginx.conf" -p "$work/backend")")
wait_port "$backend_port"
nginx_leader=$(start 0 nginx -c "$work/nginx/nginx.conf" -p "$work/nginx")
leaders+=("$nginx_leader")
haproxy_leader=$(start 0 haproxy -f "$work/haproxy.cfg")
leaders+=("$haproxy_leader")
frontdoor_leader=$(start 0 "$frontdoor" run --config "$work/conf" --dns "127.0.0.1:$(free_port)" \
    --http "127.0.0.1:$frontdoor_port" --workers 1)
leaders+=("$frontdoor_leader")
for port in "$nginx_port" "$haproxy_port" "$frontdoor_port"; do wait_port "$port"; done
proxies=(direct nginx haproxy frontdoor)
baseline_leader=""
if [ -n "$baseline" ]; then
    cp -r "$work/conf" "$work/baseline-conf"
    baseline_leader=$(start 0 "$baseline" run --config "$work/baseline-conf" --dns "127.0.0.1:$(free_port)" \
        --http "127.0.0.1:$baseline_port" --workers 1)
    leaders+=("$baseline_leader")
    wait_port "$baseline_port"
    proxies+=(baseline)
fi

# "direct" is wrk talking to the backend itself, no proxy in between: the bound of this machine and pinning,
# which no proxy can pass (its CPU column is the backend's).
declare -A ports=([direct]=$backend_port [nginx]=$nginx_port [haproxy]=$haproxy_port [frontdoor]=$frontdoor_port
    [baseline]=$baseline_port)
declare -A groups=([direct]=${leaders[0]} [nginx]=$nginx_leader [haproxy]=$haproxy_leader [frontdoor]=$frontdoor_leader
    [baseline]=$baseline_leader)
hz=$(getconf CLK_TCK)
: > "$work/results"
for round in $(seq "$rounds"); do
    for load in tiny 100k close; do
        for proxy in "${proxies[@]}"; do
            path=/tiny.txt
            extra=()
            [ "$load" = 100k ] && path=/100k.bin
            [ "$load" = close ] && extra=(-H "Connection: close")
            before=$(ticks "${groups[$proxy]}")
            read -r busy0_before idle0_before busy1_before idle1_before < <(core_times)
            output=$(taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" --latency -H "Host: bench.example.com" \
                "${extra[@]}" "http://127.0.0.1:${ports[$proxy]}$path")
            read -r busy0 idle0 busy1 idle1 < <(core_times)
            after=$(ticks "${groups[$proxy]}")
            core0=$(( (busy0 - busy0_before) * 100 / (busy0 - busy0_before + idle0 - idle0_before + 1) ))
            core1=$(( (busy1 - busy1_before) * 100 / (busy1 - busy1_before + idle1 - idle1_before + 1) ))
            p99=$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms/, "", v)} else if (v ~ /s$/) {sub(/s/, "", v); v *= 1000}; print v}' <<< "$output")
            rps=$(awk '/Requests\/sec/ {print $2}' <<< "$output")
            requests=$(awk '/requests in/ {print $1}' <<< "$output")
            errors=$(awk '/Non-2xx|Socket errors/ {print}' <<< "$output" | tr '\n' ' ')
            [ -n "$errors" ] && echo "round $round $load $proxy: $errors"
            echo "$round $load $proxy $rps $requests $((after - before)) ${p99:-0} $core0 $core1" >> "$work/results"
        done
    done
    echo "round $round done"
done

python3 - "$work/results" "$hz" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
hz = int(sys.argv[2])
table = {}
for _, load, proxy, rps, requests, ticks, p99, core0, core1 in rows:
    entry = table.setdefault((load, proxy), {"rps": [], "cpu": [], "p99": [], "core0": [], "core1": []})
    entry["rps"].append(float(rps))
    entry["cpu"].append(int(ticks) / hz * 1e6 / max(1, int(requests)))
    entry["p99"].append(float(p99))
    entry["core0"].append(int(core0))
    entry["core1"].append(int(core1))
median = statistics.median
print()
print(f"{'load':<7}{'proxy':<11}{'req/s (median)':>16}{'p99 ms':>9}{'CPU us/req':>12}{'core 0 busy':>13}{'core 1 busy':>13}")
proxies = [p for p in ("direct", "nginx", "haproxy", "frontdoor", "baseline") if ("tiny", p) in table]
for load in ("tiny", "100k", "close"):
    for proxy in proxies:
        entry = table[(load, proxy)]
        print(f"{load:<7}{proxy:<11}{median(entry['rps']):>16,.0f}{median(entry['p99']):>9.2f}"
              f"{median(entry['cpu']):>12.1f}{median(entry['core0']):>12.0f}%{median(entry['core1']):>12.0f}%")
print("(direct: wrk to the backend with no proxy, the most any proxy can reach here)")
print()
for load in ("tiny", "100k", "close"):
    ours = table[(load, "frontdoor")]
    for rival in [p for p in ("nginx", "haproxy", "baseline") if p in proxies]:
        theirs = table[(load, rival)]
        print(f"{load:<7}frontdoor/{rival:<8} req/s {median(ours['rps']) / median(theirs['rps']):.2f}x"
              f"   p99 {median(ours['p99']) / max(1e-9, median(theirs['p99'])):.2f}x"
              f"   CPU per request {median(ours['cpu']) / median(theirs['cpu']):.2f}x")
    bound = table[(load, "direct")]
    print(f"{load:<7}frontdoor/direct   req/s {median(ours['rps']) / median(bound['rps']):.2f}x"
          f"   (nginx {median(table[(load, 'nginx')]['rps']) / median(bound['rps']):.2f}x,"
          f" haproxy {median(table[(load, 'haproxy')]['rps']) / median(bound['rps']):.2f}x)")
PY

# 10,000 idle keep-alive clients: each sends one request, reads the answer and stays connected; RSS is read
# while they are all open.
python3 - "$frontdoor_port" "$frontdoor_leader" <<'PY'
import socket, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
before = rss()
sockets = []
request = b"GET /tiny.txt HTTP/1.1\r\nHost: bench.example.com\r\n\r\n"
for _ in range(10000):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(request)
    data = b""
    while not data.endswith(b"hello, world\n"):
        data += s.recv(4096)
    sockets.append(s)
time.sleep(1)
after = rss()
print(f"frontdoor RSS: {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB with 10,000 idle keep-alive clients"
      f" ({(after - before) / 10000:.1f} KiB each)")
PY
