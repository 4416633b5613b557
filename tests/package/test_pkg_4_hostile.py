"""The maintainer scripts against a machine that is not as they expect, each case a step of the
same machine's life (in order): a person (not a system account) already called mfa, whom the
install must not hand the sender's rights; a sender account that planted a link to
/etc/shadow and a FIFO in the spool, which the postinst (root) must neither follow nor block
on; a corrupt database and a configuration that is no TOML, which must stop the postinst with
a message naming the file, keep it as it was (nothing recreated over the rules) and let
`dpkg --configure -a` finish once the administrator fixed it."""

import grp
import os
import pwd
import shutil

import pytest

import harness
import pkg
from harness import run

STEPS = {}


def configure_again():
    return pkg.command(["dpkg", "--configure", "-a"])


def test_a_person_called_mfa_stops_the_install():
    run("useradd", "--create-home", "--shell", "/bin/bash", "mfa")
    person = pwd.getpwnam("mfa")
    assert person.pw_uid >= 1000
    status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM)
    assert status != 0, f"the install went through with a normal user called mfa:\n{out}"
    assert "mfa" in out and ("system user" in out or "not a system" in out), out
    # The person got nothing of the sender's: no directory of mfa's is theirs or their group's.
    for path in harness.OWNERSHIP:
        if os.path.exists(path):
            st = os.stat(path)
            assert person.pw_uid != st.st_uid and person.pw_gid != st.st_gid, \
                f"{path} was given to the person called mfa: {harness.mode_owner(path)}"
    assert not pkg.installed("mfa"), pkg.status("mfa")
    # The administrator renames the person away; the install then finishes.
    run("userdel", "--remove", "mfa")
    status, out = configure_again()
    assert status == 0, out
    assert pkg.installed("mfa") and pkg.installed("libpam-mfa"), pkg.status("mfa") + pkg.status("libpam-mfa")
    assert pwd.getpwnam("mfa").pw_uid < 1000
    assert not harness.ownership_errors(), harness.ownership_errors()
    STEPS["installed"] = True


def test_links_and_fifos_the_sender_planted_are_left_alone():
    assert STEPS.get("installed"), "the install step did not finish"
    shadow = os.lstat("/etc/shadow")
    as_mfa = ["setpriv", "--reuid", "mfa", "--regid", "mfa", "--init-groups", "--"]
    link, fifo = "/var/spool/mfa/new/1-evil.json", "/var/spool/mfa/failed/2-fifo.json"
    run(*as_mfa, "ln", "-s", "/etc/shadow", link)
    run(*as_mfa, "mkfifo", "-m", "0600", fifo)
    try:
        status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM, reinstall=True)  # a hang: timeout 300 s
        after = os.lstat("/etc/shadow")
        planted = os.readlink(link), harness.mode_owner(fifo)
    finally:
        os.unlink(link)
        os.unlink(fifo)
    assert status == 0, out
    assert (after.st_uid, after.st_gid, after.st_mode) == (shadow.st_uid, shadow.st_gid, shadow.st_mode), \
        f"the postinst followed the sender's link: /etc/shadow is now {harness.mode_owner('/etc/shadow')}"
    assert grp.getgrgid(after.st_gid).gr_name == "shadow"
    assert planted == ("/etc/shadow", (0o600, "mfa", "mfa")), f"the planted entries were changed: {planted}"
    # (init says "left alone … look and remove"; the postinst shows init's output only when
    # it fails, so the administrator does not see it: reported to the lead.)


def broken_file_stops_the_postinst(path, broken):
    """`path` replaced by `broken` bytes: a reinstall's postinst fails and keeps the file as
    it was; restored, `dpkg --configure -a` finishes. Returns the failed reinstall's output."""
    saved = os.path.join(harness.WORK, os.path.basename(path) + ".saved")
    shutil.copy2(path, saved)
    with open(path, "wb") as f:
        f.write(broken)
    try:
        status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM, reinstall=True)
        with open(path, "rb") as f:
            kept = f.read()
        half = pkg.status("mfa")
    finally:
        shutil.copy2(saved, path)
        again, again_out = configure_again()
    assert status != 0, f"the postinst accepted a broken {path}:\n{out}"
    assert kept == broken, f"the postinst replaced the broken {path} instead of stopping"
    assert not half.startswith("install ok installed"), half
    assert "dpkg --configure -a" in out, f"the postinst does not say how to finish:\n{out}"
    assert again == 0 and pkg.installed("mfa") and pkg.installed("libpam-mfa"), again_out
    assert not harness.ownership_errors(), harness.ownership_errors()
    return out


def test_a_corrupt_database_stops_the_postinst_and_is_kept():
    assert STEPS.get("installed"), "the install step did not finish"
    STEPS["corrupt db"] = broken_file_stops_the_postinst(
        "/var/lib/mfa/mfa.db", b"SQLite format 3\0" + bytes(range(256)) * 16)


def test_the_corrupt_database_error_names_the_file():
    out = STEPS.get("corrupt db")
    assert out is not None, "the corrupt-database step did not run"
    err = [l for l in out.splitlines() if l.startswith("mfa-admin")]
    assert any("/var/lib/mfa/mfa.db" in l for l in err), \
        f"the postinst's error does not name /var/lib/mfa/mfa.db:\n{out}"


def test_a_config_that_is_no_toml_stops_the_postinst_and_is_kept():
    assert STEPS.get("installed"), "the install step did not finish"
    with open(harness.CONFIG, "rb") as f:
        text = f.read()
    out = broken_file_stops_the_postinst(harness.CONFIG, text + b"\n[sender\nuser = = \xff\xfe\n")
    err = [l for l in out.splitlines() if l.startswith("mfa-admin")]
    assert any(harness.CONFIG in l for l in err), f"the postinst's error does not name {harness.CONFIG}:\n{out}"
