#!/usr/bin/env python3
"""A misbehaving upstream resolver for Frontdoor's forwarding tests (loopback only).

    fake_upstream.py PORT LOGFILE

Answers over UDP and TCP on 127.0.0.1:PORT and logs "udp|tcp SOURCEPORT ID NAME" per query to LOGFILE.
- spoof.test.: first a reply with the wrong ID, then one for another question, then the real answer.
- big.test.:   over UDP only TC=1 with no records; over TCP the full answer (30 TXT records).
- slow.test.:  the answer after half a second (so identical questions pile up and must be coalesced).
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

def answer(qid, question, records, tc=False):
    flags = 0x8180 | (0x0200 if tc else 0)
    msg = struct.pack(">HHHHHH", qid, flags, 1, len(records), 0, 0) + question
    for rtype, rdata in records:
        msg += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 60, len(rdata)) + rdata
    return msg

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
            reply = answer(qid, question, records(name))
            threading.Timer(0.5, sock.sendto, args=(reply, peer)).start()
            continue
        sock.sendto(answer(qid, question, records(name)), peer)

def tcp_client(conn, peer):
    with conn:
        length = struct.unpack(">H", conn.recv(2))[0]
        data = b""
        while len(data) < length:
            data += conn.recv(length - len(data))
        qid, name, question, qtype = parse(data)
        log.write(f"tcp {peer[1]} {qid} {name}\n")
        reply = answer(qid, question, records(name))
        conn.sendall(struct.pack(">H", len(reply)) + reply)

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
