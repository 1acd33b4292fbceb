#!/usr/bin/env python3
"""A WebSocket echo backend for the proxy tests (RFC 6455 handshake, frames echoed unmasked).

usage: ws_echo.py PORT   -- listens on 127.0.0.1:PORT until killed.
Plain HTTP requests (no Upgrade) get 200 "plain". Standard library only.
"""
import base64, hashlib, socket, struct, sys, threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_exact(conn, count):
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def serve(conn):
    try:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        fields = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        key = fields.get(b"sec-websocket-key")
        if fields.get(b"upgrade", b"").lower() != b"websocket" or key is None:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nplain")
            return
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        buffer = rest

        class Reader:
            def __init__(self, data):
                self.data = data

            def take(self, count):
                while len(self.data) < count:
                    chunk = conn.recv(65536)
                    if not chunk:
                        raise EOFError
                    self.data += chunk
                out, self.data = self.data[:count], self.data[count:]
                return out

        reader = Reader(buffer)
        while True:
            first, second = reader.take(2)
            opcode = first & 0x0F
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", reader.take(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", reader.take(8))[0]
            mask = reader.take(4) if second & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(reader.take(length)))
            if length < 126:
                header = bytes([0x80 | opcode, length])
            elif length < 65536:
                header = bytes([0x80 | opcode, 126]) + struct.pack("!H", length)
            else:
                header = bytes([0x80 | opcode, 127]) + struct.pack("!Q", length)
            conn.sendall(header + payload)
            if opcode == 8:
                return
    except (EOFError, OSError):
        pass
    finally:
        conn.close()


def main():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", int(sys.argv[1])))
    server.listen(64)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
