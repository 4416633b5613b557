#!/usr/bin/python3
"""A local stand-in for the SMS APIs mfa-sender talks to, for its integration tests.

One script, two providers (--provider twilio | telesign). Each implements the provider's
documented wire protocol for the calls mfa-sender makes and refuses everything else the way
the real API does, with the provider's own error JSON:

Twilio (https://www.twilio.com/docs/messaging/api/message-resource):
  POST /2010-04-01/Accounts/{AccountSid}/Messages.json
       application/x-www-form-urlencoded To, From | MessagingServiceSid, Body;
       HTTP Basic auth AccountSid:AuthToken
       -> 201 and the Message resource ({"sid": "SM...", "status": "queued", ...})
  GET  /2010-04-01/Accounts/{AccountSid}.json  -> 200 and the Account resource
  Errors are {"code": N, "message": "...", "more_info": "https://www.twilio.com/docs/errors/N",
  "status": HTTP}: 401/20003 bad or missing credentials (with WWW-Authenticate), 404/20404
  unknown resource (or another account's), 405/20004 wrong method, 400/21604 no To,
  400/21603 no From or MessagingServiceSid, 400/21602 no Body, 400/21211 To not E.164,
  400/21606 a From that is not the account's number, 400/21705 an unknown messaging
  service, 400/21617 a body over 1600 characters, 429/20429 with Retry-After, 500/20500.

TeleSign (https://developer.telesign.com/enterprise/reference/sendsms):
  POST /v1/messaging  form phone_number (digits only, country code first), message,
       message_type (OTP | ARN | MKT); HTTP Basic auth CustomerId:ApiKey
       -> 200 {"reference_id": "<32 hex>", "status": {"code": 290,
          "description": "Message in progress", "updated_on": ...}}
  GET  /v1/messaging/{reference_id}  -> 200 and the status of a message this server sent,
       404 for an unknown reference (mfa-sender --check relies on 404 vs 401)
  Errors are {"status": {"code": N, "description": "...", "updated_on": ...},
  "errors": [{"code": -N, "description": "..."}]}: 401 bad or missing credentials, 404
  unknown path, 405 wrong method, 400 a missing or invalid parameter, 429, 500.

Behaviour per test, from flags: --rate-limit N answers 429 (Retry-After: --retry-after
seconds) to the first N send requests; --fail N answers 500 to the next N; --reject
NUMBER:CODE answers a Twilio 400 with that code (21211, 21614, ...) for one recipient.
Those counters apply only to requests that passed the path, method and auth checks, as a
real API authenticates before it rate-limits.

Every request (accepted or not) is appended to --log as one JSON line:
  {"seq", "t" (time.monotonic(), the clock of Rust's Instant), "method", "path", "query",
   "content_type", "auth": {"user", "password"} | null, "auth_ok", "form": {name: [values]},
   "status", "code" (the provider's error code or null), "accepted" (bool), "id" (sid or
   reference_id when accepted)}
Once listening on 127.0.0.1 (port 0 = any free one), the bound port is written to --ready
(atomically). Exits on SIGTERM, or when the process that started it is gone.
"""

import argparse
import base64
import email.utils
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
TELESIGN_NUMBER = re.compile(r"^[1-9][0-9]{6,14}$")
TWILIO_BODY_MAX = 1600


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--provider", choices=["twilio", "telesign"], required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--log", required=True, help="JSON lines, one per request")
    p.add_argument("--ready", required=True, help="the bound port is written here")
    # Twilio account
    p.add_argument("--account-sid", default="AC00000000000000000000000000000001")
    p.add_argument("--auth-token", default="twilio-test-token")
    p.add_argument("--from", dest="from_", action="append", default=[],
                   help="a number of the account (repeatable); From must be one of them")
    p.add_argument("--messaging-service-sid", action="append", default=[],
                   help="a messaging service of the account (repeatable)")
    # TeleSign account
    p.add_argument("--customer-id", default="FFFFFFFF-EEEE-DDDD-1234-AB1234567890")
    p.add_argument("--api-key", default="dGVsZXNpZ24tdGVzdC1rZXk=")
    # Scripted behaviour
    p.add_argument("--rate-limit", type=int, default=0, metavar="N",
                   help="answer 429 to the first N send requests")
    p.add_argument("--retry-after", type=int, default=2, metavar="SECONDS")
    p.add_argument("--fail", type=int, default=0, metavar="N",
                   help="answer 500 to the next N send requests")
    p.add_argument("--reject", action="append", default=[], metavar="NUMBER:CODE",
                   help="twilio: answer 400 with this error code for this To")
    return p.parse_args()


def iso_now():
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000000Z"


TWILIO_MESSAGES = {
    20003: "Authenticate",
    20004: "Method not allowed",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    21211: "The 'To' number {to} is not a valid phone number.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone "
           "number for this destination/account.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS.",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21705: "The Messaging Service Sid {service} is invalid.",
}


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.seq = 0
        self.rate_limit = args.rate_limit
        self.fail = args.fail
        self.reject = {}
        for r in args.reject:
            number, _, code = r.rpartition(":")
            self.reject[number] = int(code)
        self.sent = {}  # TeleSign reference_id -> phone number
        self.log = open(args.log, "a", encoding="utf-8")

    def next_fault(self):
        """The scripted fault for this send request: 429, 500, or None."""
        with self.lock:
            if self.rate_limit > 0:
                self.rate_limit -= 1
                return 429
            if self.fail > 0:
                self.fail -= 1
                return 500
            return None

    def record(self, entry):
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.log.write(json.dumps(entry) + "\n")
            self.log.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-sms/1"
    state: State = None

    def log_message(self, fmt, *args):  # keep stderr quiet; the JSON log says it all
        pass

    # ----------------------------------------------------------------- plumbing

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def handle_any(self, method):
        t = time.monotonic()
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        ctype = self.headers.get("Content-Type") or ""
        form = {}
        if ctype.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        self.req = {
            "t": t,
            "method": method,
            "path": url.path,
            "query": url.query,
            "content_type": ctype,
            "auth": self.basic_auth(),
            "auth_ok": False,
            "form": form,
            "user_agent": self.headers.get("User-Agent"),
        }
        try:
            if self.state.args.provider == "twilio":
                self.twilio(method, url.path, form)
            else:
                self.telesign(method, url.path, form)
        except Exception as e:  # a bug here must show in the log, not hang the client
            self.reply(500, {"error": repr(e)}, code=None)

    def basic_auth(self):
        h = self.headers.get("Authorization") or ""
        scheme, _, value = h.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except Exception:
            return None
        if not sep:
            return None
        return {"user": user, "password": password}

    def reply(self, status, body, code=None, headers=(), accepted=False, ident=None):
        data = json.dumps(body).encode()
        self.req.update({"status": status, "code": code, "accepted": accepted, "id": ident})
        self.state.record(self.req)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    # ----------------------------------------------------------------- Twilio

    def twilio_error(self, status, code, headers=(), **fmt):
        body = {
            "code": code,
            "message": TWILIO_MESSAGES[code].format(**fmt),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        self.reply(status, body, code=code, headers=headers)

    def twilio(self, method, path, form):
        a = self.state.args
        m = re.fullmatch(r"/2010-04-01/Accounts/([^/]+)(\.json|/Messages\.json)", path)
        if not m:
            return self.twilio_error(404, 20404, path=path)
        sid, what = m.group(1), m.group(2)
        allowed = "GET" if what == ".json" else "POST"
        auth = self.req["auth"]
        # Twilio authenticates first: no or wrong credentials are 401 on any path.
        if auth is None or auth["user"] != a.account_sid or auth["password"] != a.auth_token:
            return self.twilio_error(401, 20003, headers=[("WWW-Authenticate", 'Basic realm="Twilio API"')])
        self.req["auth_ok"] = True
        if sid != a.account_sid:  # another account's resource
            return self.twilio_error(404, 20404, path=path)
        if method != allowed:
            if what == "/Messages.json" and method == "GET":
                # Listing messages exists in the real API but mfa-sender must not use it.
                return self.twilio_error(405, 20004, headers=[("Allow", "POST")])
            return self.twilio_error(405, 20004, headers=[("Allow", allowed)])
        if what == ".json":
            return self.reply(200, {
                "sid": sid,
                "friendly_name": "mfa test account",
                "status": "active",
                "type": "Full",
                "owner_account_sid": sid,
                "date_created": email.utils.formatdate(usegmt=True),
                "date_updated": email.utils.formatdate(usegmt=True),
                "uri": f"/2010-04-01/Accounts/{sid}.json",
                "subresource_uris": {"messages": f"/2010-04-01/Accounts/{sid}/Messages.json"},
            }, accepted=True)
        fault = self.state.next_fault()
        if fault == 429:
            return self.twilio_error(429, 20429, headers=[("Retry-After", str(a.retry_after))])
        if fault == 500:
            return self.twilio_error(500, 20500)

        def one(name):
            v = form.get(name)
            return v[-1] if v else None

        to, frm, service, body = one("To"), one("From"), one("MessagingServiceSid"), one("Body")
        if not to:
            return self.twilio_error(400, 21604)
        if not frm and not service:
            return self.twilio_error(400, 21603)
        if not body:
            return self.twilio_error(400, 21602)
        if not E164.match(to):
            return self.twilio_error(400, 21211, to=to)
        if to in self.state.reject:
            return self.twilio_error(400, self.state.reject[to], to=to)
        if service and service not in a.messaging_service_sid:
            return self.twilio_error(400, 21705, service=service)
        if frm and not service and frm not in a.from_:
            return self.twilio_error(400, 21606)
        if len(body) > TWILIO_BODY_MAX:
            return self.twilio_error(400, 21617)
        msid = "SM" + secrets.token_hex(16)
        now = email.utils.formatdate(usegmt=True)
        self.reply(201, {
            "account_sid": sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": frm if not service else None,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": msid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{sid}/Messages/{msid}/Media.json"},
            "to": to,
            "uri": f"/2010-04-01/Accounts/{sid}/Messages/{msid}.json",
        }, accepted=True, ident=msid)

    # ----------------------------------------------------------------- TeleSign

    def telesign_error(self, http, code, description, errors, headers=()):
        body = {
            "status": {"code": code, "description": description, "updated_on": iso_now()},
            "errors": [{"code": c, "description": d} for c, d in errors],
        }
        self.reply(http, body, code=code, headers=headers)

    def telesign(self, method, path, form):
        a = self.state.args
        m = re.fullmatch(r"/v1/messaging(?:/([0-9A-Fa-f]{32}))?", path)
        if not m:
            return self.telesign_error(404, 10000, "Not Found", [(-40004, "Resource not found.")])
        ref = m.group(1)
        auth = self.req["auth"]
        if auth is None:
            return self.telesign_error(401, 10033, "Unauthorized",
                                       [(-30007, "Missing required 'Authorization' header.")],
                                       headers=[("WWW-Authenticate", 'Basic realm="TeleSign"')])
        if auth["user"] != a.customer_id:
            return self.telesign_error(401, 10033, "Unauthorized", [(-30000, "Invalid Customer ID.")])
        if auth["password"] != a.api_key:
            return self.telesign_error(401, 10033, "Unauthorized", [(-30006, "Invalid Signature.")])
        self.req["auth_ok"] = True
        allowed = "GET" if ref else "POST"
        if method != allowed:
            return self.telesign_error(405, 10000, "Method Not Allowed",
                                       [(-40005, f"Method {method} is not allowed here.")],
                                       headers=[("Allow", allowed)])
        if ref:
            number = self.state.sent.get(ref.upper())
            if number is None:
                return self.telesign_error(404, 10000, "Not Found",
                                           [(-40004, "Transaction not found.")])
            return self.reply(200, {
                "reference_id": ref.upper(),
                "status": {"code": 290, "description": "Message in progress", "updated_on": iso_now()},
                "submit_timestamp": iso_now(),
            }, accepted=True, ident=ref.upper())
        fault = self.state.next_fault()
        if fault == 429:
            return self.telesign_error(429, 10019, "Too Many Requests",
                                       [(-60000, "Rate limit exceeded.")],
                                       headers=[("Retry-After", str(a.retry_after))])
        if fault == 500:
            return self.telesign_error(500, 10000, "Internal Server Error",
                                       [(-90001, "System unavailable, please try again later.")])

        def one(name):
            v = form.get(name)
            return v[-1] if v else None

        number, message, mtype = one("phone_number"), one("message"), one("message_type")
        if not number:
            return self.telesign_error(400, 11000, "Invalid value for parameter phone_number.",
                                       [(-10001, "Invalid Request: PhoneNumber Parameter: missing")])
        if not TELESIGN_NUMBER.match(number):
            return self.telesign_error(400, 11000, "Invalid value for parameter phone_number.",
                                       [(-10001, f"Invalid Request: PhoneNumber Parameter: {number}")])
        if not message:
            return self.telesign_error(400, 11000, "Invalid value for parameter message.",
                                       [(-10001, "Invalid Request: Message Parameter: missing")])
        if mtype not in ("OTP", "ARN", "MKT"):
            return self.telesign_error(400, 11000, "Invalid value for parameter message_type.",
                                       [(-10001, f"Invalid Request: MessageType Parameter: {mtype}")])
        ref = secrets.token_hex(16).upper()
        with self.state.lock:
            self.state.sent[ref] = number
        self.reply(200, {
            "reference_id": ref,
            "status": {"code": 290, "description": "Message in progress", "updated_on": iso_now()},
            "additional_info": {"message_parts_count": 1},
        }, accepted=True, ident=ref)


def main():
    args = parse_args()
    Handler.state = State(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True

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
