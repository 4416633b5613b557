#!/usr/bin/python3
"""A real SMTP server for the end-to-end test: Debian's aiosmtpd on 127.0.0.1.

    smtp_sink.py PORT MAILBOX READY

Appends every message it accepts to MAILBOX as one JSON line {"rcpt": [...], "data": "..."},
and writes READY once it listens. Exits on SIGTERM or when its parent dies.
"""
import json, os, signal, sys, time
from aiosmtpd.controller import Controller


class Handler:
    async def handle_DATA(self, server, session, envelope):
        with open(sys.argv[2], "a", encoding="utf-8") as f:
            f.write(json.dumps({"rcpt": envelope.rcpt_tos, "data": envelope.content.decode("utf-8", "replace")}) + "\n")
        return "250 OK"


c = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
open(sys.argv[3], "w").close()
signal.signal(signal.SIGTERM, lambda *_: (c.stop(), sys.exit(0)))
parent = os.getppid()
while os.getppid() == parent:
    time.sleep(0.2)
c.stop()
