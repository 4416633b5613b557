"""An HTTPS server for the Duo broker's attack tests (mfa-sender/tests/duo/redirects.rs).

With --to URL it answers every request with a redirect to URL + the request's path (302 for
GET, 307 for POST, which keeps the method and the body). Without it, it is the sink: it logs
each request (method, path, body, whether it carried credentials) as a JSON line to --log
and answers as Duo would allow anything ({"stat": "OK", "response": {...}}).

Binds 127.0.0.1 on a free port and writes the port to --ready once it listens.
"""

import argparse
import http.server
import json
import os
import ssl


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ready", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--to", default="")
    p.add_argument("--log", default="")
    a = p.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self, method):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
            if a.to:
                self.send_response(302 if method == "GET" else 307)
                self.send_header("Location", a.to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with open(a.log, "a") as f:
                f.write(json.dumps({
                    "method": method,
                    "path": self.path,
                    "body": body,
                    "credentials": bool(self.headers.get("Authorization")),
                }) + "\n")
            out = json.dumps({"stat": "OK", "response": {
                "time": 42, "result": "allow", "status": "allow",
                "status_msg": "answered by another host", "txid": "t-1",
            }}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def do_GET(self):
            self.answer("GET")

        def do_POST(self):
            self.answer("POST")

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(a.ready + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(a.ready + ".tmp", a.ready)
    srv.serve_forever()


if __name__ == "__main__":
    main()
