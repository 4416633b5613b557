"""Duo (issue 14) on the installed system: the sender, running as user mfa from the unit's
command line with [duo] set up as the README says, brokers Duo's Auth API (the mock,
tests/lib/mock_duo.py, HTTPS, signatures verified) for pam_mfa inside a real sshd, su and
sudo, and for mfa-admin.

- ssh by alice to target (keyboard-interactive): the password, the Duo menu, a push the mock
  approves -> `id` runs, the auth log has duo-push, the device and the mock's txid; a push
  the mock denies -> refused, one push only; with autopush no menu, the push at once; the
  sender stopped while the push is pending -> the login ends at once (secure: refused; safe
  with autopush: let in, logged unavailable-ignore; safe after the menu: see PENDING);
- su from alice: a Duo passcode typed at the menu prompt -> in, a wrong one -> refused, the
  passcode in neither the mock's log nor the sender's; a push shows its progress while the
  login waits;
- `mfa-admin duo check`, `test target --duo` and doctor's duo line against the running sender;
  the sender stopped: doctor fails naming the broker, sudo is refused under fail_mode=secure
  (and let through, logged, under safe);
- alice connecting to /run/mfa/duo.sock: refused by its mode, and (the mode opened up for the
  case) by the broker's peer check, and the mock is asked nothing.

Each case puts back what it changed (service methods, fail mode, lockouts, the sender
running, the socket's mode) in a finally; the `duo` fixture (conftest.py) removes [duo].
"""

import contextlib
import json
import os
import pwd
import re
import stat
import time

import pexpect
import pytest

from harness import (CONFIG, DUO_DEVICE, DUO_MENU_PROMPT, DUO_SOCKET, DUO_USERS, WORK, admin,
                     finish, run, spawn_as, transcript, wait_for)

UMASK = "022"
TARGET_CODE = DUO_USERS["target"]["passcodes"][0]


@contextlib.contextmanager
def service_method(service, method):
    """`service set SERVICE METHOD` for the block; the rule as it was afterwards."""
    rules = {r["service"]: r["method"] for r in json.loads(admin("service", "list", "--json").stdout)}
    admin("service", "set", service, method)
    try:
        yield
    finally:
        if service in rules:
            admin("service", "set", service, rules[service])
        else:
            admin("service", "del", service)


@contextlib.contextmanager
def setting(key, value):
    """`settings set KEY=VALUE` for the block; the setting as it was afterwards."""
    rows = {r["key"]: r for r in json.loads(admin("settings", "show", "--json").stdout)}
    admin("settings", "set", f"{key}={value}")
    try:
        yield
    finally:
        if rows[key]["value"] == rows[key]["default"]:
            admin("settings", "reset", key)
        else:
            admin("settings", "set", f"{key}={rows[key]['value']}")


@contextlib.contextmanager
def duo_users(mock, **changes):
    """The mock's users with `changes` merged in, for the block."""
    users = {k: dict(v) for k, v in DUO_USERS.items()}
    for name, change in changes.items():
        users.setdefault(name, {}).update(change)
    mock.set_users(users)
    try:
        yield
    finally:
        mock.set_users(DUO_USERS)


def sender_log():
    try:
        with open(os.path.join(WORK, "sender.log"), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


@contextlib.contextmanager
def duo_option(line):
    """One more line in mfa.toml's [duo] table (the last one: duo_configure appended it),
    which the module reads at each login; the file as it was afterwards."""
    saved = open(CONFIG).read()
    assert saved.rstrip().rsplit("\n[", 1)[-1].startswith("duo]"), "[duo] is not the last table"
    with open(CONFIG, "a") as f:
        f.write(line + "\n")
    try:
        yield
    finally:
        with open(CONFIG, "w") as f:
            f.write(saved)


def ssh_spawn(system):
    t = system.target
    child = spawn_as("alice", [
        "ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        "-o", "PreferredAuthentications=keyboard-interactive", "-o", "PubkeyAuthentication=no",
        "-o", "NumberOfPasswordPrompts=1",
        "-p", str(system.sshd_port), f"{t.name}@127.0.0.1", "id"], UMASK, timeout=40)
    child.expect("Password: ")
    child.sendline(t.password)
    return child


def ssh_refused(child, timeout=40):
    """Waits for the end of a refused ssh login (ssh may offer keyboard-interactive again:
    interrupted there); returns (what it printed, exit status)."""
    i = child.expect(["Password: ", pexpect.EOF, DUO_MENU_PROMPT], timeout=timeout)
    seen = child.before + ("[a Duo menu]" if i == 2 else "")
    if i != 1:
        child.sendintr()
    out, status = finish(child)
    return seen + out, status


def ssh_to_menu(system):
    """alice's ssh to target up to the Duo menu's prompt (the password answered)."""
    child = ssh_spawn(system)
    i = child.expect([DUO_MENU_PROMPT, pexpect.EOF, "Password: "])
    assert i == 0, f"no Duo menu after the password:\n{transcript(child)}\n{system.logs()}"
    # keyboard-interactive carries the menu as the prompt's instruction text.
    assert f"Duo Push to {DUO_DEVICE}" in child.before, transcript(child)
    return child


def test_duo_ssh_push_approved_runs_id_and_logs_the_txid(system, duo):
    n = len(duo.requests())
    with service_method("sshd", "duo"):
        child = ssh_to_menu(system)
        child.sendline("1")  # Duo Push to iOS (XXX-XXX-1234)
        out, status = finish(child, timeout=40)
    t = system.target
    assert status == 0 and f"uid={t.uid}({t.name})" in out, out + "\n" + system.logs()
    auths = duo.auths(n)
    assert len(auths) == 1, f"want one push, the mock saw: {duo.requests()[n:]}"
    a = auths[0]
    assert a["sig"] == "sha512" and a["user"] == "target", a
    p = a["params"]
    assert (p["factor"], p["username"], p["ipaddr"]) == ("push", "target", "127.0.0.1"), a
    assert "sshd" in p.get("pushinfo", ""), f"the push does not name the service: {a}"
    assert a["txid"], a
    r = system.last_auth("target")
    assert (r["service"], r["outcome"], r["method"]) == ("sshd", "success", "duo-push"), r
    assert r["destination"] == DUO_DEVICE and r["txid"] == a["txid"], \
        f"auth log {r} vs the mock's txid {a['txid']}"


def test_duo_ssh_push_denied_is_refused(system, duo):
    n = len(duo.requests())
    try:
        with service_method("sshd", "duo"), duo_users(duo, target={"push": "deny"}):
            child = ssh_to_menu(system)
            child.sendline("1")
            out, status = ssh_refused(child)
        assert status == 255 and "uid=" not in out, out
        assert len(duo.auths(n)) == 1, f"want one push, the mock saw: {duo.requests()[n:]}"
        r = system.last_auth("target")
        # A denial's row names the factor tried and its device; the reason says Duo's answer,
        # and the txid is the push's.
        assert (r["service"], r["outcome"], r["method"]) == ("sshd", "deny", "duo-push"), r
        assert r["destination"] == DUO_DEVICE, r
        assert "Duo push deny" in r["reason"] and r["txid"] == duo.auths(n)[0]["txid"], r
    finally:
        admin("user", "unlock", "target")  # the denied push counted toward the lockout


def test_duo_ssh_autopush_logs_in_without_a_menu(system, duo):
    n = len(duo.requests())
    with service_method("sshd", "duo"), duo_option("autopush = true"):
        child = ssh_spawn(system)
        i = child.expect([pexpect.EOF, DUO_MENU_PROMPT, "Password: "], timeout=40)
        out = child.before
        if i != 0:
            child.sendintr()
        out2, status = finish(child)
    t = system.target
    assert i == 0, f"autopush: a prompt after the password:\n{out}"
    assert status == 0 and f"uid={t.uid}({t.name})" in out + out2, out + out2 + system.logs()
    auths = duo.auths(n)
    assert len(auths) == 1 and auths[0]["params"]["factor"] == "push", duo.requests()[n:]
    r = system.last_auth("target")
    assert (r["service"], r["outcome"], r["method"]) == ("sshd", "success", "duo-push"), r
    assert r["txid"] == auths[0]["txid"], r


PENDING = {
    "secure, menu": ("secure", False),
    "safe, autopush": ("safe", True),
    # A number picked at the menu is no code: the push that cannot be answered follows the
    # fail mode (only a passcode typed there makes what fails afterwards a denial).
    "safe, menu": ("safe", False),
}


@pytest.mark.parametrize("fail_mode, autopush", PENDING.values(), ids=PENDING.keys())
def test_duo_ssh_sender_stopped_while_the_push_is_pending(system, duo, fail_mode, autopush):
    # The login waiting on a push ends at once when the sender (the broker) stops: it waits
    # neither for Duo's answer (30 s) nor for the timeout (20 s); the fail mode decides.
    n = len(duo.requests())
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(service_method("sshd", "duo"))
            stack.enter_context(setting("fail_mode", fail_mode))
            stack.enter_context(duo_users(duo, target={"after": 30}))
            if autopush:
                stack.enter_context(duo_option("autopush = true"))
                child = ssh_spawn(system)
            else:
                child = ssh_to_menu(system)
                child.sendline("1")
            wait_for(lambda: duo.auths(n), 20, "the push at the mock")
            stopped = time.monotonic()
            system.stop_sender()
            if fail_mode == "secure":
                out, status = ssh_refused(child)
            else:
                out, status = finish(child, timeout=40)
            took = time.monotonic() - stopped
        r = system.last_auth("target")
        assert took < 12, f"the login ended {took:.1f}s after the sender stopped: {r}"
        if fail_mode == "secure":
            assert status == 255 and "uid=" not in out, out
            assert (r["service"], r["outcome"]) == ("sshd", "unavailable-deny"), r
            assert "Duo broker unavailable" in r["reason"], r
        else:
            assert status == 0 and "uid=" in out, f"{out}\nauth log: {r}"
            assert (r["service"], r["outcome"]) == ("sshd", "unavailable-ignore"), r
    finally:
        system.start_sender()
        admin("user", "unlock", "target")


def su_to_menu(system):
    child = spawn_as("alice", ["su", "target", "-c", "id"], UMASK, timeout=40)
    child.expect("Password: ")
    child.sendline(system.target.password)
    i = child.expect([DUO_MENU_PROMPT, pexpect.EOF])
    assert i == 0, f"no Duo menu after the password:\n{transcript(child)}\n{system.logs()}"
    assert f"Duo Push to {DUO_DEVICE}" in child.before, transcript(child)
    return child


@pytest.mark.parametrize("right", [True, False], ids=["right passcode", "wrong passcode"])
def test_duo_su_passcode_at_the_menu(system, duo, right):
    code = TARGET_CODE if right else TARGET_CODE[:-1] + str((int(TARGET_CODE[-1]) + 1) % 10)
    n = len(duo.requests())
    try:
        with service_method("su", "duo"):
            child = su_to_menu(system)
            child.sendline(code)
            out, status = finish(child, timeout=40)
        t = system.target
        r = system.last_auth("target")
        if right:
            assert status == 0 and f"uid={t.uid}({t.name})" in out, out + "\n" + system.logs()
            assert (r["service"], r["outcome"], r["method"]) == ("su", "success", "duo-passcode"), r
        else:
            assert status != 0 and "uid=" not in out, out
            assert "Wrong passcode" in out or "Authentication failure" in out, out
            assert (r["service"], r["outcome"]) == ("su", "deny") and r["method"] == "duo-passcode", r
            assert "Duo passcode deny" in r["reason"], r
        auths = [q for q in duo.requests()[n:] if q["path"] == "/auth/v2/auth"]
        assert len(auths) == 1 and auths[0]["params"]["factor"] == "passcode", auths
        assert auths[0]["params"].get("passcode_present") is True, auths
        # The code typed reached Duo (the mock's answer depends on it) and no log keeps it.
        for name, text in [("the mock's log", open(duo.log_path).read()),
                           ("the sender's log", sender_log()),
                           ("the auth log", admin("log", "show", "--json").stdout)]:
            assert code not in text, f"the Duo passcode {code} is in {name}"
    finally:
        admin("user", "unlock", "target")


def test_duo_su_push_shows_progress_while_waiting(system, duo):
    n = len(duo.requests())
    with service_method("su", "duo"), duo_users(duo, target={"after": 4}):
        child = su_to_menu(system)
        child.sendline("1")
        chosen = time.monotonic()
        # su's conversation prints the module's info at once: the progress comes while the
        # push is still unanswered (the mock answers 4 s after the auth call).
        child.expect(re.escape(f"Duo Push sent to {DUO_DEVICE}"), timeout=20)
        shown = time.monotonic() - chosen
        out, status = finish(child, timeout=40)
        answered = time.monotonic() - chosen
    assert shown < 3.5 <= answered, f"progress after {shown:.1f}s, the end after {answered:.1f}s"
    assert status == 0 and "uid=" in out, out + "\n" + system.logs()
    assert len(duo.auths(n)) == 1
    assert system.last_auth("target")["method"] == "duo-push"


def doctor_json():
    p = admin("doctor", "--json", check=False)
    checks = {c["check"]: c for c in json.loads(p.stdout)}
    return p.returncode, checks, p.stdout + p.stderr


def test_duo_admin_commands_against_the_running_sender(system, duo):
    n = len(duo.requests())
    p = admin("duo", "check", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    checks = [q for q in duo.requests()[n:] if q["path"] == "/auth/v2/check"]
    assert checks and checks[-1]["status"] == 200 and checks[-1]["sig"] == "sha512", checks
    n = len(duo.requests())
    p = admin("test", "target", "--duo", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    auths = duo.auths(n)
    assert len(auths) == 1 and auths[0]["params"]["username"] == "target", auths
    assert auths[0]["params"]["factor"] == "push", auths
    status, checks, out = doctor_json()
    assert "duo" in checks and checks["duo"]["status"] == "ok", out
    assert status == 0, out
    # The text form too: an OK line for duo, no FAIL.
    p = admin("doctor", check=False)
    lines = (p.stdout + p.stderr).splitlines()
    assert p.returncode == 0 and any("duo" in l and l.lstrip().startswith("OK") for l in lines) \
        and not any(l.lstrip().startswith("FAIL") for l in lines), p.stdout + p.stderr


def sudo_id(system):
    """alice's `sudo id` answered with her password: (what it printed, exit status, seconds
    from the password to the end or the next password prompt, a Duo menu shown)."""
    child = spawn_as("alice", ["sh", "-c", "sudo -k; exec sudo id"], UMASK, timeout=40)
    child.expect(r"\[sudo\] password for alice: ")
    started = time.monotonic()
    child.sendline(system.alice.password)
    i = child.expect([r"\[sudo\] password for alice: ", pexpect.EOF, DUO_MENU_PROMPT])
    took = time.monotonic() - started
    seen = child.before
    if i != 1:
        child.sendintr()
    out, code = finish(child)
    return seen + out, code, took, i == 2


def test_duo_sender_stopped_doctor_fails_and_sudo_is_refused(system, duo):
    try:
        system.stop_sender()
        assert not os.path.exists(DUO_SOCKET), f"{DUO_SOCKET} outlived the sender"
        status, checks, out = doctor_json()
        assert status != 0 and checks.get("duo", {}).get("status") == "fail", out
        detail = checks["duo"]["detail"]
        assert "not running" in detail and "mfa-sender" in detail, detail
        p = admin("duo", "check", check=False)
        assert p.returncode == 1 and "mfa-sender" in p.stdout + p.stderr, p.stdout + p.stderr
        # (doctor's `mfa-sender --check` asks Duo itself; from here on nothing may.)
        n = len(duo.requests())
        with service_method("sudo", "duo"), setting("fail_mode", "secure"):
            out, code, took, menu = sudo_id(system)
        assert not menu, f"a Duo menu with the broker down:\n{out}"
        assert code == 1 and "uid=0" not in out, out
        assert took < 15, f"the refusal took {took:.1f}s"
        r = system.last_auth("alice")
        assert (r["service"], r["outcome"]) == ("sudo", "unavailable-deny"), r
        assert duo.requests()[n:] == [], f"the mock was asked: {duo.requests()[n:]}"
    finally:
        system.start_sender()
        admin("user", "unlock", "alice")
    # Started again, the broker answers: doctor is clean.
    status, checks, out = doctor_json()
    assert status == 0 and checks["duo"]["status"] == "ok", out


def test_duo_sender_stopped_fail_mode_safe_lets_sudo_through(system, duo):
    # The other half of the fail mode: safe ignores (the password alone), and says so.
    try:
        system.stop_sender()
        n = len(duo.requests())
        with service_method("sudo", "duo"), setting("fail_mode", "safe"):
            out, code, took, menu = sudo_id(system)
        assert not menu and code == 0 and "uid=0(root)" in out, out
        r = system.last_auth("alice")
        assert (r["service"], r["outcome"]) == ("sudo", "unavailable-ignore"), r
        assert duo.requests()[n:] == [], f"the mock was asked: {duo.requests()[n:]}"
    finally:
        system.start_sender()


# Run as alice: connect to the broker, send one frame (a push for target), print what came.
PROBE = r"""
import json, socket, struct, sys
out = {}
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sys.argv[1])
except OSError as e:
    out["connect"] = e.errno
    print(json.dumps(out)); sys.exit(0)
out["connect"] = 0
frame = sys.argv[2].encode()
try:
    if sys.argv[3] == "huge":  # a length over any limit, then garbage
        s.sendall(struct.pack(">I", 0xFFFFFFF0) + b"\xff" * 64)
    else:
        s.sendall(struct.pack(">I", len(frame)) + frame)
    head = s.recv(4)
    if len(head) == 4:
        n = struct.unpack(">I", head)[0]
        body = b""
        while len(body) < min(n, 65536):
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        out["reply"] = json.loads(body)
    else:
        out["reply"] = None
except OSError as e:
    out["io"] = e.errno
print(json.dumps(out))
"""
PUSH = json.dumps({"op": "auth", "username": "target", "factor": "push",
                   "hostname": "attacker", "pushinfo": []})


def probe_as_alice(kind):
    p = run("setpriv", "--reuid", "alice", "--regid", "alice", "--init-groups", "--",
            "/usr/bin/python3", "-c", PROBE, DUO_SOCKET, PUSH, kind)
    return json.loads(p.stdout)


def test_duo_socket_refuses_a_local_user(system, duo):
    st = os.lstat(DUO_SOCKET)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 \
        and pwd.getpwuid(st.st_uid).pw_name == "mfa", \
        f"{DUO_SOCKET}: {oct(st.st_mode)} uid {st.st_uid}"
    n = len(duo.requests())
    # The socket's mode keeps alice out.
    got = probe_as_alice("push")
    assert got == {"connect": 13}, f"alice reached the broker: {got}"  # EACCES
    # Behind the mode, the broker's own check (SO_PEERCRED): with the socket opened to all
    # for the case, alice's push and her oversized frame are refused all the same.
    try:
        os.chmod(DUO_SOCKET, 0o666)
        got = probe_as_alice("push")
        assert got["connect"] == 0, got
        reply = got.get("reply") or {}
        assert (reply.get("reply"), reply.get("kind")) == ("error", "forbidden"), \
            f"the broker did not refuse alice: {got}"
        got = probe_as_alice("huge")
        reply = got.get("reply")
        assert reply is None or reply.get("kind") == "forbidden", f"the broker answered: {got}"
    finally:
        if os.path.exists(DUO_SOCKET):
            os.chmod(DUO_SOCKET, 0o600)
    time.sleep(2)  # anything the broker might still send Duo would be in the mock's log now
    assert duo.requests()[n:] == [], f"a local user's request reached Duo: {duo.requests()[n:]}"
    uid = system.alice.uid
    assert f"refused a connection from uid {uid}" in sender_log(), sender_log()[-2000:]
    # The broker is still up for root (the module, mfa-admin).
    p = admin("duo", "check", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
