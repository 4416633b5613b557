"""After the login cases, on the same packaged install (profile enabled, rules, users): a
reinstall changes no owner, mode or content of mfa's state and repairs a mode that drifted;
`apt-get remove` takes pam_mfa out of common-auth, warns about a pam_mfa line an
administrator wrote by hand (naming the file), keeps the configuration and the database, and
logins work with the password alone; `apt-get purge` then gives back /etc/pam.d/common-*
byte-identical to before the install and leaves nothing of mfa (but the account mfa, which
Debian keeps). The cases run in order: each one is a step of the same machine's life."""

import os
import pwd
import subprocess

import pexpect
import pytest

import harness
import pkg
from harness import User, finish, run, spawn_as

HANDWRITTEN = "auth       required   pam_mfa.so\n"
# Filled by the reinstall and remove steps, read by the steps after them.
REINSTALL = {}
REMOVE = {}


@pytest.fixture(scope="module")
def accounts():
    """alice (in sudoers) and target, with passwords this module knows (the login cases made
    the accounts; new passwords here, or the accounts when those cases did not get that far)."""
    users = {}
    for name in ("alice", "target"):
        u = User(name)
        try:
            pwd.getpwnam(name)
        except KeyError:
            run("useradd", "--create-home", "--shell", "/bin/bash", name)
        run("chpasswd", input=f"{name}:{u.password}\n")
        users[name] = u
    with open("/etc/sudoers.d/mfa-installed-test", "w") as f:
        f.write("alice ALL=(ALL:ALL) ALL\n")
    os.chmod("/etc/sudoers.d/mfa-installed-test", 0o440)
    return users


def test_reinstall_changes_nothing(accounts):
    """Owners and modes (split from the contents below, so that each says what broke)."""
    assert pkg.installed("mfa") and pkg.installed("libpam-mfa")
    before, pam_before, mfa_before = pkg.listing(), pkg.common_files(), pwd.getpwnam("mfa")
    assert "/var/lib/mfa/mfa.db" in before and "/etc/mfa/mfa.toml" in before, sorted(before)
    db_before = pkg.db_dump("/var/lib/mfa/mfa.db")
    status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM, reinstall=True)
    assert status == 0, out
    assert "Setting up mfa " in out, out
    after = pkg.listing()
    REINSTALL.update(before=before, after=after, db_before=db_before,
                     db_after=pkg.db_dump("/var/lib/mfa/mfa.db"))
    strip = {p: v[:4] for p, v in before.items()}, {p: v[:4] for p, v in after.items()}
    changed = pkg.diff(*strip)
    assert changed == "", "a reinstall changed owners, modes or the set of files:\n" + changed
    assert pkg.common_files() == pam_before, "a reinstall changed /etc/pam.d/common-*"
    assert pwd.getpwnam("mfa") == mfa_before


def test_reinstall_changes_no_content(accounts):
    """Nothing that is right changes: not the configuration, not the database (no audit row,
    no new policy generation for an init that had nothing to do)."""
    assert REINSTALL, "the reinstall step did not run"
    changed = pkg.diff(REINSTALL["before"], REINSTALL["after"])
    assert changed == "", ("a reinstall changed the contents of mfa's state:\n" + changed
                           + "\nthe database:\n" + pkg.db_diff(REINSTALL["db_before"], REINSTALL["db_after"]))


@pytest.mark.parametrize("path,drift", [
    ("/var/spool/mfa/new", 0o777),      # anyone could plant a message for the sender
    ("/var/lib/mfa", 0o755),            # anyone could read the rules and TOTP keys
    ("/etc/mfa/mfa.toml", 0o644),       # anyone could read the transport secrets
])
def test_reinstall_repairs_a_drifted_mode(accounts, path, drift):
    want = harness.OWNERSHIP[path]
    os.chmod(path, drift)
    status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM, reinstall=True)
    got = harness.mode_owner(path)
    if got[0] != want[0]:
        os.chmod(path, want[0])  # the next steps start from the model
    assert status == 0, out
    assert got[0] == want[0] and got[1] == want[1], \
        f"{path} chmod {oct(drift)}, then a reinstall: {oct(got[0])} {got[1]}:{got[2]}, want {oct(want[0])}\n{out}"
    assert not harness.ownership_errors(), harness.ownership_errors()


def test_remove_warns_about_a_handwritten_line(accounts):
    """An administrator also put `auth required pam_mfa.so` into /etc/pam.d/sshd by hand:
    removing the module breaks that service, and the prerm must say so, naming the file."""
    path = "/etc/pam.d/sshd"
    with open(path) as f:
        saved = f.read()
    assert "@include common-auth\n" in saved
    with open(path, "w") as f:
        f.write(saved.replace("@include common-auth\n", "@include common-auth\n" + HANDWRITTEN, 1))
    try:
        status, out = pkg.apt("remove", "libpam-mfa", "mfa")
    finally:
        with open(path, "w") as f:
            f.write(saved)
    REMOVE.update(status=status, out=out)
    with open(os.path.join(harness.WORK, "remove.log"), "w") as f:
        f.write(out)
    assert status == 0, out
    warning = [l for l in out.splitlines() if "pam_mfa" in l or "/etc/pam.d/" in l]
    assert any("pam_mfa" in l for l in warning) and any(path in l for l in warning), \
        f"apt-get remove with a hand-written pam_mfa line in {path}: no warning naming it:\n{out}"
    # The profile's line was taken out before the check: common-auth is not named.
    assert "/etc/pam.d/common-auth" not in out, out


def test_after_remove_pam_mfa_is_out_and_data_kept(accounts):
    assert REMOVE.get("status") == 0, REMOVE.get("out", "the remove step did not run")
    with open("/etc/pam.d/common-auth") as f:
        assert "pam_mfa" not in f.read(), "common-auth still names pam_mfa after apt-get remove"
    assert pkg.pam_mfa_modules() == [], pkg.pam_mfa_modules()
    for gone in ("/usr/sbin/mfa-admin", "/usr/sbin/mfa-sender", "/lib/systemd/system/mfa-sender.service",
                 "/usr/sbin/mfa-fleetd", "/lib/systemd/system/mfa-fleetd.service"):
        assert not os.path.exists(gone), f"{gone} left after apt-get remove"
    assert not pkg.installed("mfa") and not pkg.installed("libpam-mfa")
    assert pkg.status("mfa").startswith("deinstall ok config-files"), pkg.status("mfa")
    # remove (not purge) keeps the configuration and the data, as Debian does.
    for kept in ("/etc/mfa/mfa.toml", "/var/lib/mfa/mfa.db"):
        assert os.path.isfile(kept), f"apt-get remove deleted {kept}: only purge may"


def password_only(child, password, success, what):
    child.sendline(password)
    i = child.expect([success, harness.PASSCODE_PROMPT, harness.TOTP_PROMPT, pexpect.EOF])
    out, status = finish(child)
    assert i == 0, f"{what} after apt-get remove: {harness.transcript(child)}{out}"
    return status


def test_su_and_sudo_without_a_code_after_remove(accounts):
    t, a = accounts["target"], accounts["alice"]
    child = spawn_as("alice", ["su", "target", "-c", "id"], "022")
    child.expect("Password: ")
    assert password_only(child, t.password, rf"uid={t.uid}\(target\)", "su target") == 0
    child = spawn_as("alice", ["sh", "-c", "sudo -k; exec sudo id"], "022")
    child.expect(r"\[sudo\] password for alice: ")
    assert password_only(child, a.password, r"uid=0\(root\)", "sudo id") == 0


def test_sshd_without_a_code_after_remove(accounts):
    s = harness.System()
    s.sshd()
    try:
        child = spawn_as("alice", [
            "ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "PreferredAuthentications=keyboard-interactive",
            "-o", "NumberOfPasswordPrompts=1", "-p", str(s.sshd_port), "target@127.0.0.1", "id"], "022")
        child.expect("Password: ")
        status = password_only(child, accounts["target"].password,
                               rf"uid={accounts['target'].uid}\(target\)", "ssh target@")
        assert status == 0, s.logs()
    finally:
        s.down()


def test_purge_leaves_nothing(accounts):
    status, out = pkg.apt("purge", "libpam-mfa", "mfa")
    with open(os.path.join(harness.WORK, "purge.log"), "w") as f:
        f.write(out)
    assert status == 0, out
    pristine = pkg.common_files(pkg.PRISTINE)
    now = pkg.common_files()
    changed = [n for n in pkg.COMMON if now[n] != pristine[n]]
    assert not changed, "after purge, not as before the install: " + ", ".join(
        f"/etc/pam.d/{n}:\n" + subprocess.run(["diff", os.path.join(pkg.PRISTINE, n), f"/etc/pam.d/{n}"],
                                              capture_output=True, text=True).stdout for n in changed)
    left = [p for p in pkg.STATE if os.path.lexists(p)]
    assert not left, f"after purge: {left} still there: {sorted(pkg.listing(left))}"
    assert pkg.pam_mfa_modules() == [], pkg.pam_mfa_modules()
    for gone in ("/usr/share/pam-configs/mfa", "/usr/sbin/mfa-admin", "/usr/sbin/mfa-sender",
                 "/usr/sbin/mfa-fleetd", "/usr/share/doc/mfa", "/usr/share/doc/libpam-mfa"):
        assert not os.path.lexists(gone), f"{gone} left after purge"
    for top in ("/lib/systemd/system", "/etc/systemd/system"):
        units = [os.path.join(d, n) for d, _, ns in os.walk(top) for n in ns if n.startswith("mfa-")]
        assert not units, f"after purge: {units}"
    for p in ("mfa", "libpam-mfa"):
        assert pkg.status(p) in ("unknown", "unknown ok not-installed"), f"{p}: {pkg.status(p)}"
    # Debian keeps system accounts: files owned by its uid may be left elsewhere.
    assert pwd.getpwnam("mfa").pw_uid < 1000, "purge removed the system user mfa"
