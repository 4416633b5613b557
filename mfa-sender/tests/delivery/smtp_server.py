#!/usr/bin/python3
"""A real SMTP server for mfa-sender's delivery tests (Debian's python3-aiosmtpd).

Listens on 127.0.0.1, appends one JSON line per event to --out:
  {"event": "message", "rcpt": [...], "from": "...", "data": "...", "tls": bool, "auth": login|null}
  {"event": "auth", "login": "...", "ok": bool, "tls": bool, "mechanism": "..."}
  {"event": "tempfail", "stage": "RCPT"|"DATA"}
  {"event": "reject", "rcpt": "..."}
and, once listening, writes the bound port to --ready (atomically). Exits on SIGTERM, or when
the process that started it is gone.

Options make it behave the way real servers do: --reject ADDR answers 550 to that
recipient; --tempfail-rcpt N / --tempfail-data N answer 451 to the first N RCPT / DATA
commands; --data-delay S makes every accepted DATA take S seconds (a slow relay);
--cert/--key offer STARTTLS and require it; --user/--password require AUTH (PLAIN or LOGIN)
with these credentials. A message is recorded before the 250 goes out, so a client killed
in between shows up as accepted.
"""

import argparse
import asyncio
import json
import os
import signal
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--ready", required=True)
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--tempfail-rcpt", type=int, default=0)
    p.add_argument("--tempfail-data", type=int, default=0)
    p.add_argument("--data-delay", type=float, default=0.0)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    a = p.parse_args()

    out = open(a.out, "a", encoding="utf-8")

    def record(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    counters = {"RCPT": a.tempfail_rcpt, "DATA": a.tempfail_data}
    rejected = {r.lower() for r in a.reject}

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.lower() in rejected:
                record({"event": "reject", "rcpt": address})
                return "550 5.1.1 <%s>: Recipient address rejected: no such user (test)" % address
            if counters["RCPT"] > 0:
                counters["RCPT"] -= 1
                record({"event": "tempfail", "stage": "RCPT"})
                return "451 4.3.0 <%s>: temporary failure, try again later (test)" % address
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            if counters["DATA"] > 0:
                counters["DATA"] -= 1
                record({"event": "tempfail", "stage": "DATA"})
                return "451 4.3.0 temporary failure, try again later (test)"
            if a.data_delay:
                await asyncio.sleep(a.data_delay)
            ad = session.auth_data
            login = ad.login if isinstance(ad, LoginPassword) else None
            record({
                "event": "message",
                "rcpt": list(envelope.rcpt_tos),
                "from": envelope.mail_from,
                "data": envelope.content.decode("utf-8", "replace")
                if isinstance(envelope.content, bytes) else envelope.content,
                "tls": session.ssl is not None,
                "auth": login.decode("utf-8", "replace") if isinstance(login, bytes) else login,
            })
            return "250 2.0.0 OK queued (test)"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == a.user.encode()
            and auth_data.password == a.password.encode()
        )
        login = auth_data.login.decode("utf-8", "replace") if isinstance(auth_data, LoginPassword) else None
        record({"event": "auth", "login": login, "ok": ok, "tls": session.ssl is not None,
                "mechanism": mechanism})
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    kwargs = {"hostname": "localhost", "decode_data": False}
    if a.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
        kwargs.update(tls_context=ctx, require_starttls=True)
    if a.user is not None:
        kwargs.update(
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=bool(a.cert),
        )

    handler = Handler()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTP(handler, loop=loop, **kwargs), "127.0.0.1", a.port,
                           reuse_address=True)
    )
    port = server.sockets[0].getsockname()[1]
    tmp = a.ready + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, a.ready)

    parent = os.getppid()

    def watch_parent():
        if os.getppid() != parent:
            loop.stop()
        else:
            loop.call_later(1.0, watch_parent)

    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    loop.call_later(1.0, watch_parent)
    try:
        loop.run_forever()
    finally:
        server.close()
        out.close()


if __name__ == "__main__":
    main()
