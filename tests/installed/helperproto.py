"""The module's side of mfa-check's framed protocol (mfa_core::helper), for the cases that
drive the setuid helper directly (test_91_unprivileged): encode an Ask, decode the frames
the helper writes. A frame is a tag byte, a u32 big-endian payload length and the payload;
str16/bytes16 are a u16 big-endian length and the bytes.
"""

import struct

VERSION = 1
MAX_FRAME = 16 * 1024
MODES = {"plain": 0, "before": 1, "after": 2}
OUTCOMES = {0: "success", 1: "ignore", 2: "deny", 3: "unavailable-secure", 4: "unavailable-safe"}


def frame(tag, payload):
    return tag + struct.pack(">I", len(payload)) + payload


def b16(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">H", len(b)) + b


def ask(mode, service, user, rhost="127.0.0.1", tty="", secret=None, fail_mode=0, sep=b",",
        version=VERSION):
    """An R frame: the module's question."""
    p = bytes([version, MODES[mode], fail_mode]) + sep
    p += b16(service) + b16(user) + b16(rhost) + b16(tty)
    p += b"\0" if secret is None else b"\1" + b16(secret)
    return frame(b"R", p)


def answer(text):
    return frame(b"A", text.encode() if isinstance(text, str) else text)


CONV_FAILED = frame(b"X", b"")


class Reader:
    """Decodes frames from bytes; `frames()` gives (kind, fields) tuples, ("junk", rest) for
    bytes that are no whole frame."""

    def __init__(self, data):
        self.b = data

    def _str(self):
        (n,) = struct.unpack(">H", self.b[:2])
        s, self.b = self.b[2:2 + n].decode("utf-8", "replace"), self.b[2 + n:]
        return s

    def frames(self):
        out = []
        while self.b:
            if len(self.b) < 5:
                out.append(("junk", self.b))
                break
            tag, (n,) = self.b[:1], struct.unpack(">I", self.b[1:5])
            if len(self.b) < 5 + n:
                out.append(("junk", self.b))
                break
            payload, rest = self.b[5:5 + n], self.b[5 + n:]
            out.append(parse(tag, payload))
            self.b = rest
        return out


def parse(tag, payload):
    r = Reader(payload)
    try:
        if tag in (b"P", b"p"):
            return ("prompt", r._str())
        if tag in (b"I", b"S", b"E"):
            return ("message", r._str())
        if tag == b"O":
            kind = OUTCOMES.get(r.b[0], f"kind {r.b[0]}")
            r.b = r.b[1:]
            return ("outcome", kind, r._str(), r._str(), r._str())
        if tag == b"B":
            k = r.b[0]
            if k == 0:
                return ("before", "ignore")
            if k == 1:
                return ("before", "split", struct.unpack(">I", r.b[1:5])[0])
            r.b = r.b[1:]
            kind = OUTCOMES.get(r.b[0], f"kind {r.b[0]}")
            r.b = r.b[1:]
            return ("before", "success", kind, r._str(), r._str(), r._str())
        if tag == b"F":
            return ("refused", r._str())
    except (IndexError, struct.error):
        pass
    return ("junk", tag + payload)


def final(frames):
    """The last frame (the reply), or None when the helper wrote nothing."""
    return frames[-1] if frames else None
