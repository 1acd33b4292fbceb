#!/usr/bin/env bash
# Builds a libFuzzer target and runs it.
#   Tests/Fuzz/run.sh [SECONDS] [lexer|dns|tls|router]     (default 60 seconds, lexer)
#   lexer: zone and config text through the lexer, parsers, validator, compiler and exporter
#   dns:   any bytes as a DNS query to the responder (both views, UDP and TCP), to the message decoder, and
#          as a script of upstream behaviour for the forwarder's UpstreamExchange (its budget, its scrubbing)
#   tls:   any bytes as a client's bytes to the HTTPS listener's TLS server (OpenSSL's record layer and
#          handshake through Frontdoor's socket BIO, SNI and ALPN callbacks and ticket keys), before or after a
#          real handshake, and to the ClientHello reader of SNI passthrough
#   router: any bytes as what a router sends: XML (device descriptions, SOAP replies), SSDP replies, PCP answers;
#          and as the kernel's interface notices (netlink) and a default-route table
# The corpus in Tests/Fuzz/corpus/<target> grows as it runs. Crashers land in Tests/Fuzz/crashes/; turn
# each into a fixture (Tests/Fixtures/zones/bad or a responder test) once fixed.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
target="${2:-lexer}"
case "$target" in
    lexer) product=LexerFuzzer; max_len=4096 ;;
    dns) product=DNSFuzzer; max_len=1500 ;;
    tls) product=TLSFuzzer; max_len=4096 ;;
    router) product=RouterFuzzer; max_len=8192 ;;
    *) echo "usage: $0 [SECONDS] [lexer|dns|tls|router]" >&2; exit 64 ;;
esac
export FRONTDOOR_FUZZ=1
# -sanitize=fuzzer on every module, so libFuzzer sees coverage in the libraries, not only the harness.
swift build -c debug --scratch-path .build-fuzz --product "$product" -Xswiftc -sanitize=fuzzer,address >/dev/null
corpus="Tests/Fuzz/corpus/$target"
mkdir -p Tests/Fuzz/crashes "$corpus"
if [ "$target" = router ]; then
    # Seed with miniupnpd's own device description and a SOAP answer.
    cp -n Tests/Fixtures/upnp/miniupnpd-rootDesc.xml "$corpus/seed-rootDesc.xml" 2>/dev/null || true
    printf '<s:Envelope><s:Body><u:R><NewExternalIPAddress>11.22.33.44</NewExternalIPAddress></u:R></s:Body></s:Envelope>' \
        >"$corpus/seed-soap.xml"
    printf 'HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: http://192.0.2.1:5000/rootDesc.xml\r\n\r\n' \
        >"$corpus/seed-ssdp"
elif [ "$target" = lexer ]; then
    # Seed with every zone and config the project ships or tests.
    for f in zones/*.zone zones/*.conf Tests/Fixtures/zones/ok/* Tests/Fixtures/zones/bad/* Tests/Fixtures/conf/*; do
        cp -n "$f" "$corpus/seed-$(basename "$f")" 2>/dev/null || true
    done
elif [ "$target" = tls ]; then
    # Seed with real ClientHellos (curl and openssl; TLS 1.2 and 1.3; with and without SNI and ALPN), each as a
    # first flight handed over whole or split after a few bytes (mode byte 2*cut), plus records for after the
    # handshake (mode byte 1). A client that is missing adds no seed.
    python3 - "$corpus" <<'PY'
import socket, subprocess, sys
corpus = sys.argv[1]
clients = {
    "s13": ["openssl", "s_client", "-connect", "127.0.0.1:{}", "-servername", "www.example.com", "-alpn", "h2,http/1.1"],
    "s12": ["openssl", "s_client", "-connect", "127.0.0.1:{}", "-servername", "x.lab.example.com", "-tls1_2"],
    "nosni": ["openssl", "s_client", "-connect", "127.0.0.1:{}", "-noservername"],
    "curl": ["curl", "-sk", "--max-time", "2", "--connect-to", "www.example.com:443:127.0.0.1:{}", "https://www.example.com/"],
}
for name, command in clients.items():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(3)
    port = listener.getsockname()[1]
    try:
        client = subprocess.Popen([part.format(port) for part in command], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except FileNotFoundError:
        continue
    data = b""
    try:
        connection, _ = listener.accept()
        connection.settimeout(0.5)
        while len(data) < 4096:
            chunk = connection.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    client.kill()
    client.wait()
    for cut in (0, 5, 9, 60):
        open(f"{corpus}/seed-{name}-{cut}", "wb").write(bytes([cut * 2]) + data)
open(f"{corpus}/seed-record", "wb").write(b"\x01\x17\x03\x03\x00\x05hello")
open(f"{corpus}/seed-alert", "wb").write(b"\x01\x15\x03\x03\x00\x02\x01\x00")
PY
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
