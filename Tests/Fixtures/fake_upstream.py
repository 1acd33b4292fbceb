#!/usr/bin/env python3
"""A misbehaving upstream resolver for Frontdoor's forwarding tests (loopback only).

    fake_upstream.py PORT LOGFILE

Answers over UDP and TCP on 127.0.0.1:PORT and logs "udp|tcp SOURCEPORT ID NAME" per query to LOGFILE.
- spoof.test.: first a reply with the wrong ID, then one for another question, then the real answer.
- big.test.:   over UDP only TC=1 with no records; over TCP the full answer (30 TXT records).
- slow.test.:  the answer after half a second (so identical questions pile up and must be coalesced).
- servfail.test., refused.test.: SERVFAIL or REFUSED, over UDP and TCP (a hostile or broken upstream).
- junk.test.:  its A record plus records nobody asked for in every section (they must be scrubbed).
- anything else: one A record 198.51.100.1.
"""
import socket, struct, sys, threading

port, logpath = int(sys.argv[1]), sys.argv[2]
log = open(logpath, "a", buffering=1)

def parse(data):
    qid, flags, qd = struct.unpack(">HHH", data[:6])
    pos, labels = 12, []
    while data[pos]:
        labels.append(data[pos + 1:pos + 1 + data[pos]].decode())
        pos += 1 + data[pos]
    qtype, qclass = struct.unpack(">HH", data[pos + 1:pos + 5])
    return qid, ".".join(labels) + ".", data[12:pos + 5], qtype

RCODES = {"servfail.test.": 2, "refused.test.": 5}

def wire(name):
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".") if label) + b"\x00"

def answer(qid, question, records, tc=False, rcode=0, extra=()):
    """records: (type, rdata) at the question's name; extra: (section, owner, type, rdata) elsewhere."""
    flags = 0x8180 | (0x0200 if tc else 0) | rcode
    counts = [len(records) + sum(1 for e in extra if e[0] == 0), sum(1 for e in extra if e[0] == 1),
              sum(1 for e in extra if e[0] == 2)]
    msg = struct.pack(">HHHHHH", qid, flags, 1, *counts) + question
    for rtype, rdata in records:
        msg += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 60, len(rdata)) + rdata
    for section in range(3):
        for _, owner, rtype, rdata in (e for e in extra if e[0] == section):
            msg += wire(owner) + struct.pack(">HHIH", rtype, 1, 60, len(rdata)) + rdata
    return msg

def reply(qid, name, question):
    if name in RCODES:
        return answer(qid, question, [], rcode=RCODES[name])
    if name == "junk.test.":
        return answer(qid, question, records(name), extra=[
            (0, "www.bank.example.", 1, bytes([203, 0, 113, 66])),
            (1, "bank.example.", 2, wire("ns.evil.example.")),
            (2, "ns.evil.example.", 1, bytes([203, 0, 113, 53])),
        ])
    return answer(qid, question, records(name))

def records(name):
    if name == "big.test.":
        return [(16, bytes([40]) + b"x" * 36 + b"%04d" % i) for i in range(30)]
    return [(1, bytes([198, 51, 100, 1]))]

def udp():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    while True:
        data, peer = sock.recvfrom(4096)
        qid, name, question, qtype = parse(data)
        log.write(f"udp {peer[1]} {qid} {name}\n")
        if name == "spoof.test.":
            sock.sendto(answer((qid + 1) & 0xFFFF, question, records(name)), peer)
            other = b"\x05other\x04test\x00" + question[-4:]
            sock.sendto(answer(qid, other, records(name)), peer)
        if name == "big.test.":
            sock.sendto(answer(qid, question, [], tc=True), peer)
            continue
        if name == "slow.test.":
            late = answer(qid, question, records(name))
            threading.Timer(0.5, sock.sendto, args=(late, peer)).start()
            continue
        sock.sendto(reply(qid, name, question), peer)

def tcp_client(conn, peer):
    with conn:
        length = struct.unpack(">H", conn.recv(2))[0]
        data = b""
        while len(data) < length:
            data += conn.recv(length - len(data))
        qid, name, question, qtype = parse(data)
        log.write(f"tcp {peer[1]} {qid} {name}\n")
        message = reply(qid, name, question)
        conn.sendall(struct.pack(">H", len(message)) + message)

def tcp():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(16)
    while True:
        conn, peer = server.accept()
        threading.Thread(target=tcp_client, args=(conn, peer), daemon=True).start()

threading.Thread(target=tcp, daemon=True).start()
log.write("ready\n")
udp()
