"""`mfa-admin doctor` on the installed system, each fault made for real and undone: it must
exit non-zero and name the fault (a FAIL line) when the module file is gone, when a stack
that includes common-auth lacks pam_mfa although its service has a rule (sudo-i), when the
sender's account cannot read its configuration or the spool, and when a spool message has a
mode the sender cannot read; and pass again once each is undone."""

import os

import pytest

from harness import MODE, admin

PAMDIR = os.environ.get("MFA_PAMDIR", "/lib/x86_64-linux-gnu/security")


def doctor():
    p = admin("doctor", check=False)
    out = p.stdout + p.stderr
    return p.returncode, out, [l for l in out.splitlines() if l.lstrip().startswith("FAIL")]


def module_missing():
    os.rename(f"{PAMDIR}/pam_mfa.so", f"{PAMDIR}/pam_mfa.so.away")
    return lambda: os.rename(f"{PAMDIR}/pam_mfa.so.away", f"{PAMDIR}/pam_mfa.so"), "pam_mfa.so"


def sudo_i_uncovered():
    path = "/etc/pam.d/sudo-i"
    saved = open(path).read()
    lines = saved.splitlines(keepends=True)
    if MODE == "deb":
        # pam_mfa comes through common-auth (the profile): inline common-auth without it.
        common = [l for l in open("/etc/pam.d/common-auth").read().splitlines(keepends=True)
                  if "pam_mfa" not in l]
        lines = [x for l in lines for x in (common if l.strip() == "@include common-auth" else [l])]
        assert any("pam_unix" in l for l in lines) and "\n@include common-auth" not in "".join(lines)
    with open(path, "w") as f:
        f.write("".join(l for l in lines if "pam_mfa" not in l))

    def undo():
        with open(path, "w") as f:
            f.write(saved)
    return undo, "sudo-i"


def config_unreadable():
    os.chmod("/etc/mfa/mfa.toml", 0o600)
    return lambda: os.chmod("/etc/mfa/mfa.toml", 0o640), "mfa.toml"


def spool_unreadable():
    os.chmod("/var/spool/mfa/new", 0o2700)
    return lambda: os.chmod("/var/spool/mfa/new", 0o2770), "/var/spool/mfa"


def message_unreadable():
    # A message the sender cannot read, where it would claim it from (left by an old
    # writer under umask 077); failed/ so the running sender does not race the check.
    path = "/var/spool/mfa/failed/0-doctor-test.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"{}")
    os.close(fd)
    return lambda: os.unlink(path), "0-doctor-test"


FAULTS = {
    "module file missing": module_missing,
    "sudo-i stack without pam_mfa": sudo_i_uncovered,
    "mfa.toml unreadable by the sender": config_unreadable,
    "spool unreadable by the sender": spool_unreadable,
    "spool message unreadable by the sender": message_unreadable,
}


@pytest.mark.parametrize("fault", FAULTS)
def test_doctor_fails_on(system, fault):
    undo, names = FAULTS[fault]()
    try:
        status, out, fails = doctor()
    finally:
        undo()
    assert status != 0, f"doctor exited 0 with {fault}:\n{out}"
    assert any(names in l for l in fails), f"no FAIL line naming {names!r} with {fault}:\n{out}"
    status, out, fails = doctor()
    assert status == 0 and not fails, f"doctor after undoing {fault}:\n{out}"
