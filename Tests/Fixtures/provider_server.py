#!/usr/bin/env python3
"""A stand-in for DynDNS providers in the tests, over HTTPS (with the test CA's certificate) or HTTP.

usage: provider_server.py PORT DIR [CERT KEY]
  GET  /ip                                   -> the text of DIR/ip (an address echo service)
  GET  /nic/update?hostname=H&myip=A         -> dyndns2: basic auth user:secret, else "badauth";
                                                the answer is DIR/answer if present, else "good A"
  GET  /client/v4/zones/Z/dns_records?type=T&name=N   Cloudflare-style API, token "cf-token"
  PATCH /client/v4/zones/Z/dns_records/ID {"content": A}
  POST  /client/v4/zones/Z/dns_records {"type","name","content",...}
  DELETE /client/v4/zones/Z/dns_records/ID
Every request is appended to DIR/requests as "METHOD PATH". Standard library only.
"""
import base64, json, os, ssl, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

port, directory = int(sys.argv[1]), sys.argv[2]
records = {}
lock = threading.Lock()


def read(name, default=None):
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read()
    except OSError:
        return default


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self):
        with lock, open(os.path.join(directory, "requests"), "a") as f:
            f.write(f"{self.command} {self.path}\n")

    def cloudflare(self):
        if self.headers.get("Authorization") != "Bearer cf-token":
            return self.reply(403, json.dumps({"success": False, "errors": [{"code": 9109, "message": "Invalid access token"}]}), "application/json")
        url = urlparse(self.path)
        parts = url.path.split("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        with lock:
            if self.command == "GET":
                query = parse_qs(url.query)
                found = [r for r in records.values()
                         if r["type"] == query.get("type", [""])[0] and r["name"] == query.get("name", [""])[0]]
                return self.reply(200, json.dumps({"success": True, "result": found}), "application/json")
            if self.command == "PATCH":
                rid = parts[-1]
                if rid not in records:
                    return self.reply(404, json.dumps({"success": False, "errors": [{"message": "Record not found"}]}), "application/json")
                records[rid].update(body)
                return self.reply(200, json.dumps({"success": True, "result": records[rid]}), "application/json")
            if self.command == "POST":
                rid = f"rec{len(records) + 1}"
                records[rid] = {"id": rid, "type": body["type"], "name": body["name"], "content": body["content"]}
                return self.reply(200, json.dumps({"success": True, "result": records[rid]}), "application/json")
            if self.command == "DELETE":
                rid = parts[-1]
                if records.pop(rid, None) is None:
                    return self.reply(404, json.dumps({"success": False, "errors": [{"message": "Record not found"}]}), "application/json")
                return self.reply(200, json.dumps({"success": True, "result": {"id": rid}}), "application/json")
        self.reply(405, "no")

    def handle_any(self):
        self.record()
        url = urlparse(self.path)
        if url.path == "/ip":
            return self.reply(200, read("ip", "") + "\n")
        if url.path == "/nic/update":
            auth = self.headers.get("Authorization", "")
            if auth != "Basic " + base64.b64encode(b"user:secret").decode():
                return self.reply(200, "badauth")
            answer = read("answer")
            query = parse_qs(url.query)
            return self.reply(200, answer if answer is not None else "good " + query.get("myip", [""])[0])
        if url.path.startswith("/client/v4/zones/"):
            return self.cloudflare()
        self.reply(404, "not found")

    do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = handle_any


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
if len(sys.argv) > 4:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[3], sys.argv[4])
    server.socket = context.wrap_socket(server.socket, server_side=True)
open(os.path.join(directory, "ready"), "w").close()
server.serve_forever()
