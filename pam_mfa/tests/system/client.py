#!/usr/bin/python3
"""Real clients for pam_mfa's system tests (pam_mfa/tests/system/).

Run with Debian's /usr/bin/python3 (paramiko is python3-paramiko). Two modes, each printing
one JSON object on stdout that the Rust test asserts on:

  client.py ssh --port N [--bind ADDR] --user U --password P --spool DIR --host-key PUB
                [--wrong] [--command CMD]
      Logs in to 127.0.0.1:N with paramiko's keyboard-interactive authentication, from the
      source address ADDR when given. Answers "Password" prompts with P and "Passcode X- ..."
      prompts with the code read from the spool (as a user reads it in the mail), or, with
      --wrong, with a code that differs from it in every digit; "Authenticator code" prompts
      with the current TOTP code of --totp-key BASE32 (as an app shows it). Once in, runs CMD.

  client.py pty --user U --password P --spool DIR [--wrong] -- COMMAND...
      Runs COMMAND (pamtester) on a pseudo-terminal, as a person at a terminal would, and
      answers its prompts the same way.

The code for a prompt is taken from the newest message in DIR/new for user U whose body
carries the prompt's prefix letter followed by '-' and digits (preferring one this client
has not used yet).
"""

import argparse
import glob
import json
import os
import pty
import re
import select
import signal
import socket
import sys
import time

PASSCODE = re.compile(r"Passcode ([A-Z])- \(sent to [^)]*\): ")


USED = set()


def code_for(spool, user, letter, timeout=5.0):
    """The code the spool holds for `user` under prefix `letter` (polls briefly).

    A message not used before by this client wins (a resend's prefix letter may repeat);
    otherwise the newest one used before (a second try at the same code)."""
    needle = re.compile(re.escape(letter) + r"-(\d+)")
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for path in glob.glob(os.path.join(spool, "new", "*")):
            try:
                with open(path, encoding="utf-8") as f:
                    msg = json.load(f)
                mtime = os.stat(path).st_mtime_ns
            except (OSError, ValueError):
                continue
            m = needle.search(msg.get("body", ""))
            if msg.get("user") == user and m:
                found.append((path not in USED, mtime, path, m.group(1)))
        if found:
            _, _, path, code = max(found)
            USED.add(path)
            return code
        if time.monotonic() > deadline:
            raise SystemExit(f"no spooled passcode for {user} with prefix {letter}-")
        time.sleep(0.02)


def totp(key_b32, digits=6, step=30):
    """RFC 6238 (HMAC-SHA1) code of a base-32 key for the current time, as an app shows it."""
    import base64, hashlib, hmac, struct
    key = base64.b32decode(key_b32 + "=" * (-len(key_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(time.time()) // step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** digits).zfill(digits)


def code_from_mail(mailbox, rcpt, letter, timeout=15.0):
    """The code in the newest mail to `rcpt` that the SMTP server received (polls)."""
    needle = re.compile(re.escape(letter) + r"-(\d+)")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(mailbox, encoding="utf-8") as f:
                mails = [json.loads(line) for line in f if line.strip()]
        except OSError:
            mails = []
        for mail in reversed(mails):
            m = needle.search(mail["data"])
            if rcpt in mail["rcpt"] and m:
                return m.group(1)
        if time.monotonic() > deadline:
            return ""
        time.sleep(0.05)


def answer_for(args, text):
    """(kind, answer) for one prompt text."""
    if "Authenticator code" in text and args.totp_key:
        return ("totp", totp(args.totp_key))
    m = PASSCODE.search(text)
    if m and args.mailbox:
        return ("passcode-from-mail", code_from_mail(args.mailbox, args.rcpt, m.group(1)))
    if m:
        code = code_for(args.spool, args.user, m.group(1))
        if args.wrong:
            code = "".join(str((int(d) + 1) % 10) for d in code)
            return ("passcode-wrong", code)
        return ("passcode", code)
    if "assword" in text:
        return ("password", args.password)
    return ("other", "")


def ssh(args):
    import paramiko

    result = {
        "host_key_ok": False,
        "rounds": [],
        "authenticated": False,
        "error": None,
        "output": None,
        "exit": None,
    }
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(15)
    if args.bind:
        sock.bind((args.bind, 0))
    sock.connect(("127.0.0.1", args.port))
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=15)
        with open(args.host_key, encoding="ascii") as f:
            expected = f.read().split()[1]
        result["host_key_ok"] = transport.get_remote_server_key().get_base64() == expected

        def handler(title, instructions, prompts):
            answers, shown = [], []
            for text, echo in prompts:
                kind, answer = answer_for(args, text)
                shown.append({"text": text, "echo": bool(echo), "answered": kind})
                answers.append(answer)
            result["rounds"].append(
                {"title": title, "instructions": instructions, "prompts": shown}
            )
            return answers

        try:
            transport.auth_interactive(args.user, handler)
            result["authenticated"] = transport.is_authenticated()
        except paramiko.AuthenticationException as e:
            result["error"] = f"{type(e).__name__}: {e}"
        if result["authenticated"] and args.command:
            chan = transport.open_session(timeout=15)
            chan.settimeout(15)
            chan.exec_command(args.command)
            out = b""
            while True:
                data = chan.recv(65536)
                if not data:
                    break
                out += data
            result["exit"] = chan.recv_exit_status()
            result["output"] = out.decode("utf-8", "replace")
            chan.close()
    finally:
        transport.close()
    print(json.dumps(result))


def run_pty(args):
    if not args.command:
        raise SystemExit("pty: no command given")
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(args.command[0], args.command)
        finally:
            os._exit(127)
    transcript = ""
    answered_upto = 0
    prompts = []
    deadline = time.monotonic() + 20
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if not ready:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        transcript += data.decode("utf-8", "replace")
        pending = transcript[answered_upto:]
        # A prompt is complete when the program waits after ": " for the answer.
        if pending.rstrip(" ").endswith(":") and pending.endswith(" "):
            last_line = pending.split("\n")[-1]
            kind, answer = answer_for(args, last_line)
            prompts.append({"text": last_line, "answered": kind})
            answered_upto = len(transcript)
            if len(prompts) > 10:
                os.kill(pid, signal.SIGKILL)
                break
            os.write(fd, answer.encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    exit_code = os.waitstatus_to_exitcode(status)
    print(
        json.dumps(
            {
                "exit": exit_code,
                "timed_out": timed_out,
                "prompts": prompts,
                "transcript": transcript,
            }
        )
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["ssh", "pty"])
    p.add_argument("--port", type=int)
    p.add_argument("--bind")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--spool", required=True)
    p.add_argument("--host-key")
    p.add_argument("--wrong", action="store_true")
    p.add_argument("--totp-key", help="answer 'Authenticator code' prompts from this base-32 key")
    p.add_argument("--mailbox", help="read passcodes from the mail this SMTP server's mailbox holds")
    p.add_argument("--rcpt", help="the recipient of those mails")
    p.add_argument("--command")
    argv = sys.argv[1:]
    rest = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1 :]
    args = p.parse_args(argv)
    if args.mode == "ssh":
        ssh(args)
    else:
        args.command = rest
        run_pty(args)


if __name__ == "__main__":
    sys.exit(main())
