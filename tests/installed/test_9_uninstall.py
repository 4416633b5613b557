"""`make uninstall` on the installed system (last: it removes the binaries the other cases
use): it removes exactly the files `make install` put there — the same list a DESTDIR
install stages — and nothing else; the configuration, the database and the spool stay, and it
warns that pam.d files still name the module."""

import os
import subprocess

import pytest

import harness

pytestmark = pytest.mark.skipif(
    harness.MODE == "deb",
    reason="`make uninstall` undoes `make install`;"
           " tests/package removes and purges the packages")

ROOTS = ["/usr/local", os.environ.get("MFA_PAMDIR", "/lib/x86_64-linux-gnu/security"),
         "/lib/systemd/system", "/etc/mfa", "/var/lib/mfa", "/var/spool/mfa"]


def files(root, under):
    out = set()
    for r in under:
        top = root + r
        for d, _, names in os.walk(top):
            out.update(os.path.join(d, n)[len(root):] for n in names)
    return out


def make(*args):
    return subprocess.run(["make", "-s", "--no-print-directory", "-C", harness.REPO, *args,
                           "NO_BUILD=1", f"PROFILE={os.environ['MFA_PROFILE']}"],
                          capture_output=True, text=True)


def test_destdir_install_then_uninstall_leaves_no_file(system):
    stage = os.path.join(harness.WORK, "stage")
    p = make("install", f"DESTDIR={stage}")
    assert p.returncode == 0, p.stdout + p.stderr
    staged = files(stage, ["/"])
    assert {"/usr/local/sbin/mfa-admin", "/usr/local/sbin/mfa-sender",
            "/lib/systemd/system/mfa-sender.service"} <= staged, staged
    p = make("uninstall", f"DESTDIR={stage}")
    assert p.returncode == 0, p.stdout + p.stderr
    assert files(stage, ["/"]) == set(), "left after uninstall"


def test_uninstall_removes_exactly_what_install_put(system):
    stage = os.path.join(harness.WORK, "stage2")
    assert make("install", f"DESTDIR={stage}").returncode == 0
    installed = files(stage, ["/"])
    before = files("", ROOTS)
    assert installed <= before, f"installed files missing: {installed - before}"
    p = make("uninstall")
    assert p.returncode == 0, p.stdout + p.stderr
    after = files("", ROOTS)
    assert after == before - installed, (
        f"removed beyond the install: {(before - installed) - after}; left: {after & installed}")
    for kept in ("/etc/mfa/mfa.toml", "/var/lib/mfa/mfa.db"):
        assert kept in after
    assert "pam.d files above still name pam_mfa.so" in p.stderr, p.stderr
