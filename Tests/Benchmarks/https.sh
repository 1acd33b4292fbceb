#!/usr/bin/env bash
# HTTPS proxy benchmark: Frontdoor against nginx and HAProxy terminating TLS, all on loopback, with the same
# ECDSA P-256 certificate and the same plain-HTTP nginx backend (pinned to core 1 with the load).
#
# Each proxy runs one worker pinned to core 0. Loads, taking turns over several rounds:
#   new      TLS 1.3 full handshakes, one "Connection: close" request each (tlsload.c, 4 threads)
#   resumed  the same, each connection resuming the thread's previous session (tickets or session cache)
#   tiny     wrk over one TLS connection per client: tiny responses, keep-alive
#   100k     the same with 100 KB responses
# For each: medians of requests (or connections) per second, p99, CPU microseconds per request or
# connection on the proxy (all its processes), and how busy each core was — a handshake costs the OpenSSL
# client about as much as the server, so for new and resumed the loader's core is the limit and CPU per
# connection is the figure to compare. Then 10,000 idle TLS keep-alive clients on Frontdoor and its RSS.
#   Tests/Benchmarks/https.sh [ROUNDS] [SECONDS] [CONNECTIONS]   (defaults 3, 10, 50)
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

for tool in nginx haproxy wrk taskset python3 gcc openssl; do
    command -v "$tool" >/dev/null || {
        echo "https.sh needs $tool (apt-get install nginx-light haproxy wrk util-linux python3 gcc openssl)"
        exit 1
    }
done
# Shared helpers: free_port, temp_paths, start, wait_port, ticks, core_times.
source Tests/Benchmarks/lib.sh
swift build -c release --product frontdoor >/dev/null
frontdoor="$PWD/.build/release/frontdoor"
gcc -O2 -o "$work/tlsload" Tests/Benchmarks/tlsload.c -lssl -lcrypto -lpthread
ulimit -n "$(ulimit -Hn)"  # 10,000 TLS clients and the proxies' connections

backend_port=$(free_port)
nginx_port=$(free_port)
haproxy_port=$(free_port)
frontdoor_port=$(free_port)
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root root;"

mkdir -p "$work/www" "$work/backend" "$work/nginx" "$work/conf/certs"
printf 'hello, world\n' > "$work/www/tiny.txt"
head -c 102400 /dev/urandom > "$work/www/100k.bin"

# One ECDSA P-256 certificate for bench.example.com, signed by a throw-away CA, for all three proxies.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench CA" \
    -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=bench.example.com" \
    -keyout "$work/conf/certs/bench.key" -out "$work/bench.csr" 2>/dev/null
printf 'subjectAltName=DNS:bench.example.com\n' > "$work/ext"
openssl x509 -req -in "$work/bench.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
    -extfile "$work/ext" -out "$work/conf/certs/bench.crt" 2>/dev/null
cat "$work/conf/certs/bench.crt" "$work/conf/certs/bench.key" > "$work/haproxy.pem"

backend_conf 16384 20000 > "$work/backend/nginx.conf"
cat > "$work/nginx/nginx.conf" <<EOF
daemon off;
$user_line
worker_processes 1;
worker_rlimit_nofile 16384;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 8000; }
http {
  access_log off;
$(temp_paths "$work/nginx")
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$backend_port; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $work/conf/certs/bench.crt;
    ssl_certificate_key $work/conf/certs/bench.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
    }
  }
}
EOF
cat > "$work/haproxy.cfg" <<EOF
global
  maxconn 8000
  nbthread 1
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  option forwardfor
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend web
  bind 127.0.0.1:$haproxy_port ssl crt $work/haproxy.pem alpn http/1.1
  http-request set-header X-Forwarded-Proto https
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
tls certs default bench.example.com
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
frontdoor_leader=$(start 0 "$frontdoor" run --config "$work/conf" --dns "127.0.0.1:$(free_port)" --http off \
    --https "127.0.0.1:$frontdoor_port" --workers 1)
leaders+=("$frontdoor_leader")
for port in "$nginx_port" "$haproxy_port" "$frontdoor_port"; do wait_port "$port"; done
proxies=(nginx haproxy frontdoor)
declare -A ports=([nginx]=$nginx_port [haproxy]=$haproxy_port [frontdoor]=$frontdoor_port)
declare -A groups=([nginx]=$nginx_leader [haproxy]=$haproxy_leader [frontdoor]=$frontdoor_leader)

# Every proxy must answer over TLS with the bench certificate before anything is measured.
for proxy in "${proxies[@]}"; do
    answer=$(curl -sS --cacert "$work/ca.crt" --resolve "bench.example.com:${ports[$proxy]}:127.0.0.1" \
        "https://bench.example.com:${ports[$proxy]}/tiny.txt")
    [ "$answer" = "hello, world" ] || { echo "$proxy does not answer over TLS: $answer"; exit 1; }
done

hz=$(getconf CLK_TCK)
: > "$work/results"
for round in $(seq "$rounds"); do
    for load in new resumed tiny 100k; do
        for proxy in "${proxies[@]}"; do
            before=$(ticks "${groups[$proxy]}")
            read -r busy0_before idle0_before busy1_before idle1_before < <(core_times)
            resumed=0
            case "$load" in
            new | resumed)
                mode=full
                [ "$load" = resumed ] && mode=resume
                read -r count resumed failures p99 < <(taskset -c 1 "$work/tlsload" 127.0.0.1 "${ports[$proxy]}" \
                    bench.example.com "$seconds" 4 "$mode")
                [ "$failures" != 0 ] && echo "round $round $load $proxy: $failures failed connections"
                rps=$(python3 -c "print($count / $seconds)")
                ;;
            *)
                path=/tiny.txt
                [ "$load" = 100k ] && path=/100k.bin
                output=$(taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" --latency \
                    -H "Host: bench.example.com" "https://127.0.0.1:${ports[$proxy]}$path")
                p99=$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms/, "", v)} else if (v ~ /s$/) {sub(/s/, "", v); v *= 1000}; print v}' <<< "$output")
                rps=$(awk '/Requests\/sec/ {print $2}' <<< "$output")
                count=$(awk '/requests in/ {print $1}' <<< "$output")
                errors=$(awk '/Non-2xx|Socket errors/ {print}' <<< "$output" | tr '\n' ' ')
                [ -n "$errors" ] && echo "round $round $load $proxy: $errors"
                ;;
            esac
            read -r busy0 idle0 busy1 idle1 < <(core_times)
            after=$(ticks "${groups[$proxy]}")
            core0=$(( (busy0 - busy0_before) * 100 / (busy0 - busy0_before + idle0 - idle0_before + 1) ))
            core1=$(( (busy1 - busy1_before) * 100 / (busy1 - busy1_before + idle1 - idle1_before + 1) ))
            echo "$round $load $proxy $rps $count $((after - before)) ${p99:-0} $core0 $core1 $resumed" >> "$work/results"
        done
    done
    echo "round $round done"
done

python3 - "$work/results" "$hz" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
hz = int(sys.argv[2])
table = {}
for _, load, proxy, rps, count, ticks, p99, core0, core1, resumed in rows:
    entry = table.setdefault((load, proxy), {"rps": [], "cpu": [], "p99": [], "core0": [], "core1": [], "resumed": []})
    entry["rps"].append(float(rps))
    entry["cpu"].append(int(ticks) / hz * 1e6 / max(1, int(count)))
    entry["p99"].append(float(p99))
    entry["core0"].append(int(core0))
    entry["core1"].append(int(core1))
    entry["resumed"].append(int(resumed) / max(1, int(count)))
median = statistics.median
print()
print(f"{'load':<9}{'proxy':<11}{'per s (median)':>16}{'p99 ms':>9}{'CPU us/each':>13}{'core 0 busy':>13}{'core 1 busy':>13}{'resumed':>9}")
loads = ("new", "resumed", "tiny", "100k")
for load in loads:
    for proxy in ("nginx", "haproxy", "frontdoor"):
        entry = table[(load, proxy)]
        resumed = f"{median(entry['resumed']) * 100:.0f}%" if load in ("new", "resumed") else "-"
        print(f"{load:<9}{proxy:<11}{median(entry['rps']):>16,.0f}{median(entry['p99']):>9.2f}"
              f"{median(entry['cpu']):>13.1f}{median(entry['core0']):>12.0f}%{median(entry['core1']):>12.0f}%{resumed:>9}")
print("(new, resumed: connections per second, each one TLS handshake and one request; tiny, 100k: requests per")
print(" second over keep-alive TLS connections)")
print()
for load in loads:
    ours = table[(load, "frontdoor")]
    for rival in ("nginx", "haproxy"):
        theirs = table[(load, rival)]
        print(f"{load:<9}frontdoor/{rival:<8} per s {median(ours['rps']) / median(theirs['rps']):.2f}x"
              f"   p99 {median(ours['p99']) / max(1e-9, median(theirs['p99'])):.2f}x"
              f"   CPU each {median(ours['cpu']) / median(theirs['cpu']):.2f}x")
PY

# 10,000 idle TLS keep-alive clients: each makes a full handshake, sends one request, reads the answer and
# stays connected; Frontdoor's RSS is read while they are all open.
taskset -c 1 python3 - "$frontdoor_port" "$frontdoor_leader" <<'PY'
import socket, ssl, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
before = rss()
clients = []
request = b"GET /tiny.txt HTTP/1.1\r\nHost: bench.example.com\r\n\r\n"
for _ in range(10000):
    raw = socket.create_connection(("127.0.0.1", port))
    client = context.wrap_socket(raw, server_hostname="bench.example.com")
    client.sendall(request)
    data = b""
    while not data.endswith(b"hello, world\n"):
        data += client.recv(4096)
    clients.append(client)
time.sleep(6)  # idle: past the health thread's interval, when Frontdoor gives freed heap pages back
after = rss()
print(f"frontdoor RSS: {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB with 10,000 idle TLS keep-alive "
      f"clients ({(after - before) / 10000:.1f} KiB each)")
PY
