#!/usr/bin/python3
"""A local stand-in for Duo's Auth API v2 (https://duo.com/docs/authapi), for mfa's tests
(mfa-sender/tests/duo, pam_mfa/tests/pam/duo.rs, the sshd tests) and bench/duo_bench.sh.
Python standard library only; run it with /usr/bin/python3.

    mock_duo.py --ready FILE --cert PEM --key PEM --ikey IKEY --skey SKEY
                [--users FILE] [--log FILE] [--port N] [--skew SECONDS]
                [--rate-limit N] [--retry-after SECONDS] [--fail N] [--slow SECONDS]
                [--fault-paths PATH,PATH] [--clock-offset SECONDS]

HTTPS on 127.0.0.1 (port 0 = any free one) with the given certificate (make one with
`openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj
/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE
-keyout key.pem -out cert.pem`: a leaf, as rustls refuses a CA certificate as the server's;
it is the client's CA file). Once listening, the port is written to --ready
(atomically: FILE.tmp, then renamed). Exits on SIGTERM/SIGINT, or when the process that
started it is gone. The host the signatures must name is 127.0.0.1:PORT.

Endpoints (answers are {"stat": "OK", "response": ...}; errors are {"stat": "FAIL",
"code": N, "message": ..., "message_detail": ...} with Duo's codes):
  GET  /auth/v2/ping         unsigned: {"time": now}
  GET  /auth/v2/check        {"time": now}
  POST /auth/v2/preauth      username [ipaddr hostname] -> result auth|allow|deny|enroll
  POST /auth/v2/auth         username factor (push|phone|sms|passcode|auto) device|passcode
                             [ipaddr hostname pushinfo type display_username async]
                             async=1 (push, phone, auto) -> {"txid"}; else the result
  GET  /auth/v2/auth_status  txid -> result waiting|allow|deny, status, status_msg
  POST /auth/v2/enroll       [username] -> activation_code, activation_url, user_id, ...
  POST /auth/v2/enroll_status user_id activation_code -> "success"|"waiting"|"invalid"

Signatures: both schemes are verified. A request with X-Duo-Date is checked as Duo's
current HMAC-SHA512 one (date, METHOD, host, path, canonical query parameters, SHA-512 hex of
the body, SHA-512 hex of the X-Duo-* headers lower-cased, sorted and NUL-joined); one with
only Date as the older one (date, METHOD, host, path, canonical parameters of the query or
of a form body), HMAC-SHA1 (or HMAC-SHA512 when the signature has 128 hex digits). Parameters
come from the query (GET) or the body (POST: JSON object or form). 401 errors: 40101 no
credentials, 40102 wrong integration key, 40103 wrong signature, 40104 no date, 40105 a date
more than --skew (300) seconds off the mock's clock (shifted by --clock-offset, to play a
server whose clock is off). 400/40002 for a missing or invalid parameter (the name in
message_detail; an ipaddr that is not an IP address is one), 404/40401 unknown path,
405/40501 wrong method.

Users (--users FILE, JSON, re-read at each request so a test may change it):
  {"NAME": {"preauth": "auth" | "allow" | "deny" | "enroll",   (default auth)
            "devices": [{"device", "display_name", "type", "capabilities"}, ...]
                         (default: one phone DPFZRS9FB0D46QFTM891 "iOS (XXX-XXX-1234)"
                          with auto, push, sms, phone, mobile_otp),
            "push": "approve" | "deny" | "fraud" | "timeout",  (default approve; the
                     answer of push, phone and auto; timeout: never answered)
            "after": SECONDS,         (the answer comes this long after the auth call)
            "passcodes": ["123456", ...],  (valid passcodes; each usable any number of times)
            "sms": "sent" | "deny",   (factor sms: "sent" = Duo's deny/sent, default)
            "enroll_status": "waiting" | "success" | "invalid"},
   "*": {...}}   (any user not named; without it such a user gets 400/40002 username)

Faults (apply to requests with valid credentials, on --fault-paths, default all but ping,
in this order): --rate-limit N answers 429/42901 with Retry-After: --retry-after (default 1)
to the first N; --fail N answers 500/50000 to the next N; --slow SECONDS delays every
answer.

Log (--log FILE): one JSON line per request: {"seq", "t" (time.monotonic(), the clock of
Rust's Instant), "method", "path", "params" (the passcode's value replaced by
"passcode_present": true), "sig" ("sha512" | "sha1" | "sha512-v2" | null), "status",
"code" (Duo's error code or null), "txid" (when one was made or asked about), "user"}.
"""

import argparse
import base64
import email.utils
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import signal
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_DEVICE = {
    "device": "DPFZRS9FB0D46QFTM891",
    "display_name": "iOS (XXX-XXX-1234)",
    "type": "phone",
    "capabilities": ["auto", "push", "sms", "phone", "mobile_otp"],
}
ANSWERS = {
    "approve": ("allow", "allow", "Success. Logging you in..."),
    "deny": ("deny", "deny", "Login request denied."),
    "fraud": ("deny", "fraud", "Login request reported as fraudulent."),
}
ENDPOINTS = {
    "/auth/v2/ping": "GET",
    "/auth/v2/check": "GET",
    "/auth/v2/preauth": "POST",
    "/auth/v2/auth": "POST",
    "/auth/v2/auth_status": "GET",
    "/auth/v2/enroll": "POST",
    "/auth/v2/enroll_status": "POST",
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ready", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ikey", required=True)
    p.add_argument("--skey", required=True)
    p.add_argument("--users")
    p.add_argument("--log")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--skew", type=int, default=300)
    p.add_argument("--rate-limit", type=int, default=0)
    p.add_argument("--retry-after", type=int, default=1)
    p.add_argument("--fail", type=int, default=0)
    p.add_argument("--slow", type=float, default=0.0)
    p.add_argument("--fault-paths", default="")
    p.add_argument("--clock-offset", type=float, default=0.0)
    return p.parse_args()


def quote(s):
    return urllib.parse.quote(s, safe="~")


def canon_params(pairs):
    """Duo's canonical parameters: encoded, sorted by name then value, '&'-joined."""
    enc = sorted((quote(k), quote(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in enc)


def sha512_hex(b):
    return hashlib.sha512(b).hexdigest()


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.seq = 0
        self.rate_left = args.rate_limit
        self.fail_left = args.fail
        self.txs = {}
        self.enrolled = {}
        self.port = 0
        self.fault_paths = set(p for p in args.fault_paths.split(",") if p)

    def users(self):
        if not self.args.users:
            return {}
        try:
            with open(self.args.users) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def user(self, name):
        u = self.users()
        if name in u:
            return u[name]
        return u.get("*")

    def record(self, entry):
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            if self.args.log:
                with open(self.args.log, "a") as f:
                    f.write(json.dumps(entry) + "\n")


class Failure(Exception):
    def __init__(self, status, code, message, detail=None, headers=()):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.detail, self.headers = detail, headers


def bad_param(name):
    return Failure(400, 40002, "Invalid request parameters", name)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, fmt, *args):  # quiet: the JSON log says it all
        pass

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def handle_any(self, method):
        st = self.state
        t = time.monotonic()
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        entry = {"t": t, "method": method, "path": path, "params": {}, "sig": None,
                 "status": 200, "code": None, "txid": None, "user": None}
        try:
            query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            form = []
            if body and ctype == "application/json":
                try:
                    obj = json.loads(body)
                except ValueError:
                    raise Failure(400, 40002, "Invalid request parameters", "body")
                if not isinstance(obj, dict):
                    raise Failure(400, 40002, "Invalid request parameters", "body")
                form = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in obj.items()]
            elif body:
                form = urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                              keep_blank_values=True)
            params = dict(query + form)
            logged = {k: v for k, v in params.items() if k != "passcode"}
            if "passcode" in params:
                logged["passcode_present"] = True
            entry["params"] = logged
            entry["user"] = params.get("username")
            want = ENDPOINTS.get(path)
            if want is None:
                raise Failure(404, 40401, "Resource not found")
            if method != want:
                raise Failure(405, 40501, "Method not allowed")
            if path != "/auth/v2/ping":
                entry["sig"] = self.verify(method, path, query, body, ctype)
            self.faults(path)
            response = self.endpoint(path, params, entry)
            body_out = {"stat": "OK", "response": response}
            self.reply(200, body_out, entry)
        except Failure as f:
            out = {"stat": "FAIL", "code": f.code, "message": f.message}
            if f.detail:
                out["message_detail"] = f.detail
            entry["code"] = f.code
            self.reply(f.status, out, entry, f.headers)

    def faults(self, path):
        st = self.state
        if path == "/auth/v2/ping":
            return
        if st.fault_paths and path not in st.fault_paths:
            return
        with st.lock:
            if st.rate_left > 0:
                st.rate_left -= 1
                raise Failure(429, 42901, "Too Many Requests",
                              headers=[("Retry-After", str(st.args.retry_after))])
            if st.fail_left > 0:
                st.fail_left -= 1
                raise Failure(500, 50000, "Internal server error")
        if st.args.slow > 0:
            time.sleep(st.args.slow)

    def verify(self, method, path, query, body, ctype):
        st = self.state
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Basic "):
            raise Failure(401, 40101, "Missing request credentials")
        try:
            ikey, sig = base64.b64decode(auth[6:], validate=True).decode().split(":", 1)
        except (ValueError, UnicodeDecodeError):
            raise Failure(401, 40101, "Missing request credentials")
        if not hmac.compare_digest(ikey, st.args.ikey):
            raise Failure(401, 40102, "Invalid integration key in request credentials")
        xdate = self.headers.get("X-Duo-Date")
        date = xdate or self.headers.get("Date")
        if not date:
            raise Failure(401, 40104, "Missing required Date header")
        try:
            when = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            raise Failure(401, 40105, "Invalid Date header")
        if abs(time.time() + st.args.clock_offset - when) > st.args.skew:
            raise Failure(401, 40105, "Request date is out of the acceptable range",
                          f"more than {st.args.skew} seconds off")
        host = f"127.0.0.1:{st.port}"
        skey = st.args.skey.encode()
        candidates = []
        if xdate:
            xduo = sorted((k.lower(), v) for k, v in self.headers.items()
                          if k.lower().startswith("x-duo"))
            hdrs = "\x00".join(x for kv in xduo for x in kv)
            canon = "\n".join([xdate, method.upper(), host.lower(), path, canon_params(query),
                               sha512_hex(body), sha512_hex(hdrs.encode())])
            candidates.append(("sha512", hashlib.sha512, canon))
        pairs = query
        if method == "POST" and ctype == "application/x-www-form-urlencoded":
            pairs = query + urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                                   keep_blank_values=True)
        canon2 = "\n".join([date, method.upper(), host.lower(), path, canon_params(pairs)])
        if not xdate:
            candidates.append(("sha1", hashlib.sha1, canon2))
        candidates.append(("sha512-v2", hashlib.sha512, canon2))
        for name, digest, canon in candidates:
            good = hmac.new(skey, canon.encode(), digest).hexdigest()
            if hmac.compare_digest(good, sig):
                return name
        raise Failure(401, 40103, "Invalid signature in request credentials")

    def endpoint(self, path, p, entry):
        st = self.state
        now = int(time.time())
        if "ipaddr" in p:
            try:
                ipaddress.ip_address(p["ipaddr"])
            except ValueError:
                raise bad_param("ipaddr")
        if path in ("/auth/v2/ping", "/auth/v2/check"):
            return {"time": now}
        if path == "/auth/v2/preauth":
            u = self.known_user(p)
            result = u.get("preauth", "auth")
            if result == "auth":
                return {"result": "auth", "status_msg": "Account is active",
                        "devices": u.get("devices", [DEFAULT_DEVICE])}
            if result == "allow":
                return {"result": "allow", "status_msg": "Allowing unknown user"}
            if result == "deny":
                return {"result": "deny", "status_msg": "Login request denied."}
            if result == "enroll":
                return {"result": "enroll", "status_msg": "Enroll an authentication device.",
                        "enroll_portal_url": "https://api-xxxxxxxx.duosecurity.com/portal?"
                                             + urllib.parse.urlencode({"code": "48bac5d9393fb2c2",
                                                                       "akey": "DAXXXXXXXXXXXXXX"})}
            raise Failure(500, 50000, f"bad preauth {result!r} in the users file")
        if path == "/auth/v2/auth":
            return self.auth(p, entry)
        if path == "/auth/v2/auth_status":
            txid = p.get("txid")
            if not txid:
                raise bad_param("txid")
            entry["txid"] = txid
            with st.lock:
                tx = st.txs.get(txid)
            if tx is None:
                raise bad_param("txid")
            entry["user"] = tx["user"]
            return self.tx_status(tx)
        if path == "/auth/v2/enroll":
            name = p.get("username") or ("user" + secrets.token_hex(4))
            user_id = "DU" + secrets.token_hex(9).upper()
            code = "duo://" + secrets.token_hex(10)
            with st.lock:
                st.enrolled[user_id] = {"code": code, "username": name}
            return {"activation_barcode": f"https://api-xxxxxxxx.duosecurity.com/frame/qr?value={code}",
                    "activation_code": code,
                    "activation_url": "https://m-xxxxxxxx.duosecurity.com/iphone/7dbFqKjr",
                    "expiration": now + 86400, "user_id": user_id, "username": name}
        if path == "/auth/v2/enroll_status":
            uid, code = p.get("user_id"), p.get("activation_code")
            if not uid:
                raise bad_param("user_id")
            if not code:
                raise bad_param("activation_code")
            with st.lock:
                e = st.enrolled.get(uid)
            if e is None or e["code"] != code:
                return "invalid"
            u = self.state.user(e["username"]) or {}
            return u.get("enroll_status", "waiting")
        raise Failure(404, 40401, "Resource not found")

    def known_user(self, p):
        name = p.get("username")
        if not name:
            raise bad_param("username")
        u = self.state.user(name)
        if u is None:
            raise bad_param("username")
        return u

    def auth(self, p, entry):
        st = self.state
        u = self.known_user(p)
        factor = p.get("factor")
        if factor not in ("push", "phone", "sms", "passcode", "auto"):
            raise bad_param("factor")
        if u.get("preauth", "auth") != "auth":
            return {"result": "deny", "status": "deny", "status_msg": "Login request denied."}
        if factor == "passcode":
            code = p.get("passcode")
            if not code:
                raise bad_param("passcode")
            if code in u.get("passcodes", []):
                return {"result": "allow", "status": "allow",
                        "status_msg": "Success. Logging you in..."}
            return {"result": "deny", "status": "deny",
                    "status_msg": "Incorrect passcode. Please try again."}
        device = p.get("device")
        ids = [d["device"] for d in u.get("devices", [DEFAULT_DEVICE])]
        if not device or (device != "auto" and device not in ids):
            raise bad_param("device")
        if factor == "sms":
            if u.get("sms", "sent") == "sent":
                return {"result": "deny", "status": "sent", "status_msg": "New SMS passcodes sent."}
            return {"result": "deny", "status": "deny", "status_msg": "SMS passcodes refused."}
        tx = {"user": p["username"], "factor": factor, "start": time.monotonic(),
              "answer": u.get("push", "approve"), "after": float(u.get("after", 0)),
              "pushinfo": p.get("pushinfo")}
        if p.get("async") == "1":
            txid = "%s-%s-%s-%s-%s" % tuple(secrets.token_hex(n) for n in (4, 2, 2, 2, 6))
            with st.lock:
                st.txs[txid] = tx
            entry["txid"] = txid
            return {"txid": txid}
        # Synchronous: hold the request until the answer (at most 60 s).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = self.tx_status(tx)
            if r["result"] != "waiting":
                return r
            time.sleep(0.1)
        return {"result": "deny", "status": "timeout", "status_msg": "Login timed out."}

    def tx_status(self, tx):
        answer = tx["answer"]
        if answer == "timeout" or time.monotonic() - tx["start"] < tx["after"]:
            if tx["factor"] == "phone":
                return {"result": "waiting", "status": "calling", "status_msg": "Calling..."}
            return {"result": "waiting", "status": "pushed",
                    "status_msg": "Pushed a login request to your device..."}
        result, status, msg = ANSWERS.get(answer, ANSWERS["deny"])
        return {"result": result, "status": status, "status_msg": msg}

    def reply(self, status, obj, entry, headers=()):
        data = json.dumps(obj).encode()
        entry["status"] = status
        # Logged before the answer goes out: a client that has its answer finds the line.
        self.state.record(entry)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, addr, handler, ctx):
        super().__init__(addr, handler)
        self.ctx = ctx

    def get_request(self):
        sock, addr = self.socket.accept()
        # The TLS handshake happens in the request's thread (at its first read), so a slow
        # client never holds up the others.
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        pass  # a client that hung up mid-request: nothing to report


def main():
    args = parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    Handler.state = State(args)
    server = Server(("127.0.0.1", args.port), Handler, ctx)
    Handler.state.port = server.server_address[1]

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    parent = os.getppid()

    def orphan_watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=orphan_watch, daemon=True).start()
    tmp = args.ready + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{server.server_address[1]}\n")
    os.rename(tmp, args.ready)
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
