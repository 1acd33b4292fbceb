"""One HTTPS connection held open: a request, then a wait for a file, then a second request on the same
connection. Prints the server certificate's SHA-256 and each response's status line.

usage: tls_hold.py PORT NAME CAFILE GOFILE
"""
import hashlib
import os
import socket
import ssl
import sys
import time

port, name, cafile, gofile = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
context = ssl.create_default_context(cafile=cafile)
connection = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=name)
print("certificate", hashlib.sha256(connection.getpeercert(binary_form=True)).hexdigest(), flush=True)
reader = connection.makefile("rb")


def ask():
    connection.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())
    status = reader.readline().decode().strip()
    length = 0
    while True:
        line = reader.readline().decode().strip()
        if not line:
            break
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    reader.read(length)
    print("response", status, flush=True)


ask()
deadline = time.time() + 90
while not os.path.exists(gofile) and time.time() < deadline:
    time.sleep(0.05)
ask()
