#!/usr/bin/env bash
# Compile-time and memory benchmark of the model: generates a 50,000-site model (two views, a LAN-only
# site in every ten, a handful of ordinary records per hundred) and runs `frontdoor check --stats` on it
# several times with the release build. Prints each run and the medians.
#   Tests/Benchmarks/model.sh [SITES] [RUNS]      (defaults 50000 and 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
sites="${1:-50000}"
runs="${2:-5}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

swift build -c release --product frontdoor >/dev/null
binary=.build/release/frontdoor

cat > "$work/frontdoor.conf" <<CONF
view lan 192.0.2.0/24 2001:db8:1::/48 recursion
view wan *
upstream 192.0.2.1
wan interface eth0
CONF
python3 - "$work/bench.example.zone" "$sites" <<'PY'
import sys
path, count = sys.argv[1], int(sys.argv[2])
with open(path, "w") as zone:
    zone.write("$ORIGIN bench.example.\n$TTL 300\n$PROXY reverseproxy lan=192.0.2.42,2001:db8:1::42 wan=auto\n")
    for i in range(count):
        a, b = divmod(i, 250)
        views = " views=lan" if i % 10 == 0 else ""
        zone.write(f"$SITE site{i} http://192.0.2.{b + 1}:{8000 + a % 1000}{views}\n")
        if i % 100 == 0:
            zone.write(f"host{i} A 192.0.2.{b + 1}\nhost{i} AAAA 2001:db8:1::{i:x}\nalias{i} CNAME site{i + 1}\nmx{i} MX 10 host{i}\n")
PY
echo "model: $sites sites, $(wc -l < "$work/bench.example.zone") zone lines"
times=(); rss=(); snap=()
for run in $(seq "$runs"); do
    line=$("$binary" check --stats --wan 203.0.113.1 "$work" 2>&1 | grep '^stats:')
    echo "run $run: $line"
    load=$(sed -E 's/.*load ([0-9.]+) ms.*/\1/' <<<"$line")
    compile=$(sed -E 's/.*validate\+compile ([0-9.]+) ms.*/\1/' <<<"$line")
    times+=("$(python3 -c "print(f\"{$load + $compile:.1f}\")")")
    rss+=("$(sed -E 's/.*rss ([0-9]+) MiB.*/\1/' <<<"$line")")
    snap+=("$(sed -E 's/.*snapshot ~([0-9]+) MiB.*/\1/' <<<"$line")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "median: load+compile $(median "${times[@]}") ms (goal < 1000), resident after compile $(median "${rss[@]}") MiB, snapshot ~$(median "${snap[@]}") MiB (goal < 100)"
