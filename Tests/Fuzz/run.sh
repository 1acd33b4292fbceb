#!/usr/bin/env bash
# Builds a libFuzzer target and runs it.
#   Tests/Fuzz/run.sh [SECONDS] [lexer|dns]     (default 60 seconds, lexer)
#   lexer: zone and config text through the lexer, parsers, validator, compiler and exporter
#   dns:   any bytes as a DNS query to the responder (both views, UDP and TCP), to the message decoder, and
#          as a script of upstream behaviour for the forwarder's UpstreamExchange (its budget, its scrubbing)
# The corpus in Tests/Fuzz/corpus/<target> grows as it runs. Crashers land in Tests/Fuzz/crashes/; turn
# each into a fixture (Tests/Fixtures/zones/bad or a responder test) once fixed.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
target="${2:-lexer}"
case "$target" in
    lexer) product=LexerFuzzer; max_len=4096 ;;
    dns) product=DNSFuzzer; max_len=1500 ;;
    *) echo "usage: $0 [SECONDS] [lexer|dns]" >&2; exit 64 ;;
esac
export FRONTDOOR_FUZZ=1
# -sanitize=fuzzer on every module, so libFuzzer sees coverage in the libraries, not only the harness.
swift build -c debug --scratch-path .build-fuzz --product "$product" -Xswiftc -sanitize=fuzzer,address >/dev/null
corpus="Tests/Fuzz/corpus/$target"
mkdir -p Tests/Fuzz/crashes "$corpus"
if [ "$target" = lexer ]; then
    # Seed with every zone and config the project ships or tests.
    for f in zones/*.zone zones/*.conf Tests/Fixtures/zones/ok/* Tests/Fixtures/zones/bad/* Tests/Fixtures/conf/*; do
        cp -n "$f" "$corpus/seed-$(basename "$f")" 2>/dev/null || true
    done
else
    # Seed with real queries: what dig sends, with and without EDNS, over names of the fuzz model.
    python3 - "$corpus" <<'PY'
import struct, sys
def name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".") if l) + b"\0"
def query(qid, n, qtype, edns):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0) + name(n) + struct.pack(">HH", qtype, 1)
    if edns:
        q += b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0)
    return q
for i, (n, t) in enumerate([("myserver.example.com", 1), ("x.lab.example.com", 28), ("nas.example.com", 1),
                            ("example.com", 15), ("www.child.example.com", 1), ("out.example.com", 1),
                            ("nothing.example.com", 16), ("www.example.org", 1), ("example.com", 255)]):
    for edns in (False, True):
        open(f"{sys.argv[1]}/seed-{i}-{int(edns)}", "wb").write(query(i, n, t, edns))
PY
fi
exec ".build-fuzz/debug/$product" "$corpus" \
    -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix=Tests/Fuzz/crashes/ -print_final_stats=1
