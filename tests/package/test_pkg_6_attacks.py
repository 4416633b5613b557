"""The packages against an administrator's mistakes and a local user who takes advantage of
them (phase "attacks"): each case starts from a machine without mfa (reset) and is one
mistake. `make deb`'s clean step deleting files all over the working tree; a system user mfa
left in nogroup by an earlier `adduser --system mfa`, or with a login shell, and a group mfa
with a person in it, which init would make the owners of the passcodes in the spool and of
the secrets in mfa.toml; a /var/lib/mfa a user prepared (and still holds a directory in)
before the install; `apt-get remove` when the administrator edited the block of common-auth
that pam-auth-update manages (it then leaves the profile's line there, and the module's
removal would lock everyone out); `make uninstall` of an earlier source install (it shares
the module's and the units' paths with the packages: what dpkg owns is kept); a configured
sender account whose group others share (init and doctor name them)."""

import os
import re
import pwd
import shutil
import subprocess

import pexpect
import pytest

import harness
import pkg
from harness import User, finish, run, spawn_as

AS_ALICE = ["setpriv", "--reuid", "alice", "--regid", "alice", "--init-groups", "--"]


def reset():
    """A machine without mfa's packages, state, account, or the people of these cases."""
    for p in ("libpam-mfa", "mfa"):
        if pkg.status(p) != "unknown" and not pkg.status(p).startswith("unknown ok not-installed"):
            run("dpkg", "--purge", "--force-depends", "--force-remove-reinstreq", p, check=False)
    for d in pkg.STATE:
        shutil.rmtree(d, ignore_errors=True)
    for u in ("alice", "target", "mfa"):
        if subprocess.run(["getent", "passwd", u], capture_output=True).returncode == 0:
            run("userdel", "--force", "--remove", u, check=False)
        if subprocess.run(["getent", "group", u], capture_output=True).returncode == 0:
            run("groupdel", u, check=False)
    shutil.copy2(os.path.join(pkg.PRISTINE, "common-auth"), "/etc/pam.d/common-auth")
    assert pkg.status("mfa") in ("unknown", "unknown ok not-installed"), pkg.status("mfa")


@pytest.fixture
def clean_machine():
    reset()
    yield
    reset()


def configure_again():
    return pkg.command(["dpkg", "--configure", "-a"])


def test_make_deb_clean_keeps_files_outside_debian(tmp_path):
    """dpkg-buildpackage runs `debian/rules clean` before every build; plain dh_clean deletes
    editors' backups and patch leftovers anywhere in the working tree."""
    if shutil.which("dh") is None:
        pytest.skip("debhelper is not installed (dh): `make deb` cannot run here either")
    tree = tmp_path / "tree"
    shutil.copytree(os.path.join(harness.REPO, "debian"), tree / "debian", symlinks=True)
    planted = ["README.md.orig", "src/lib.rs.rej", "notes.bak", "mfa-core/src/#draft.rs#",
               "target/release/config.toml~", "docs/TAGS", ".hidden.orig"]
    for p in planted:
        (tree / p).parent.mkdir(parents=True, exist_ok=True)
        (tree / p).write_text("the developer's\n")
    made = ["debian/files", "debian/mfa.substvars", "debian/debhelper-build-stamp",
            "debian/mfa.debhelper.log", "debian/mfa.postrm.debhelper", "debian/.debhelper/x",
            "debian/mfa/usr/sbin/mfa-admin", "debian/libpam-mfa/x", "debian/tmp/x"]
    for p in made:
        (tree / p).parent.mkdir(parents=True, exist_ok=True)
        (tree / p).write_text("made by the build\n")
    p = subprocess.run(["debian/rules", "clean"], cwd=tree, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    gone = [f for f in planted if not (tree / f).exists()]
    assert not gone, f"`debian/rules clean` (run by every `make deb`) deleted {gone}:\n{p.stdout}"
    left = [f for f in made if (tree / f).exists()]
    assert not left, f"`debian/rules clean` left what the build made: {left}"


def test_a_sender_account_in_nogroup_is_refused(clean_machine):
    """An earlier `adduser --system mfa` (no --group) put mfa in nogroup; adduser --system
    --group accepts it as it is, and init gave the spool and mfa.toml to nogroup, the group
    of every daemon that runs as nobody."""
    run("adduser", "--system", "--quiet", "mfa")
    assert pwd.getpwnam("mfa").pw_gid == 65534
    status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM)
    shared = [p for p in ("/etc/mfa/mfa.toml", "/var/spool/mfa/new", "/var/spool/mfa/cur", "/run/mfa")
              if os.path.exists(p) and os.stat(p).st_gid == 65534]
    assert not shared, f"the install gave {shared} to the group nogroup:\n{out}"
    assert status != 0 and "nogroup" in out and "dpkg --configure -a" in out, out
    # The way out the message gives, then the install finishes with the model.
    run("addgroup", "--system", "--quiet", "mfa")
    run("usermod", "-g", "mfa", "mfa")
    status, out = configure_again()
    assert status == 0 and pkg.installed("mfa") and pkg.installed("libpam-mfa"), out
    assert not harness.ownership_errors(), harness.ownership_errors()


def test_a_sender_account_with_a_login_shell_is_refused(clean_machine):
    """A system account mfa made earlier by hand with a shell (and so a way in, with a
    password or a key): adduser --system accepts it, and whoever logs in as mfa reads every
    passcode in the spool."""
    run("adduser", "--system", "--group", "--quiet", "--shell", "/bin/bash", "mfa")
    status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM)
    assert status != 0 and "/bin/bash" in out and "usermod -s" in out, \
        f"the install accepted a sender account with a login shell:\n{out}"
    assert not os.path.exists("/var/spool/mfa/new"), "the refused install made the spool anyway"
    run("usermod", "-s", "/usr/sbin/nologin", "mfa")
    status, out = configure_again()
    assert status == 0 and pkg.installed("mfa") and pkg.installed("libpam-mfa"), out
    assert not harness.ownership_errors(), harness.ownership_errors()


def test_a_person_in_the_group_mfa_is_refused(clean_machine):
    """A system group mfa that already has a member: adduser makes the account in it, and
    that person read the transports' secrets (and the passcodes in the spool)."""
    run("useradd", "--create-home", "alice")
    run("addgroup", "--system", "--quiet", "mfa")
    run("adduser", "--quiet", "alice", "mfa")
    status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM)
    reads = subprocess.run(AS_ALICE + ["cat", "/etc/mfa/mfa.toml"], capture_output=True, text=True)
    spool = subprocess.run(AS_ALICE + ["ls", "/var/spool/mfa/new"], capture_output=True, text=True)
    assert reads.returncode != 0 and spool.returncode != 0, \
        f"alice (in the group mfa) reads /etc/mfa/mfa.toml or the spool after the install:\n{out}"
    assert status != 0 and "alice" in out and "gpasswd -d" in out, out
    run("gpasswd", "-d", "alice", "mfa")
    status, out = configure_again()
    assert status == 0 and pkg.installed("mfa"), out
    assert not harness.ownership_errors(), harness.ownership_errors()


def test_a_store_a_user_prepared_is_not_adopted(clean_machine):
    """/var/lib/mfa made for alice before the install (a private trial, a mistaken chown),
    with a directory of hers where the login state goes, and her shell inside it. init
    repaired /var/lib/mfa itself and used her directory: through her working directory she
    could still write the state files (failure counts, the grants that skip the factor)."""
    run("useradd", "--create-home", "alice")
    run("install", "-d", "-o", "alice", "-m", "0755", "/var/lib/mfa")
    run(*AS_ALICE, "install", "-d", "-m", "0777", "/var/lib/mfa/mfa.db-users", "/var/lib/mfa/mfa.db-challenges")
    shell = subprocess.Popen(AS_ALICE + ["sh", "-c", "read go; echo forged > planted; echo wrote=$?"],
                             cwd="/var/lib/mfa/mfa.db-users", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM)
        adopted = status == 0
        said, _ = shell.communicate("go\n", timeout=30)
    finally:
        if shell.poll() is None:
            shell.kill()
    if adopted:
        foreign = [p for p, v in pkg.listing(["/var/lib/mfa"]).items() if v[2] != 0]
        assert not foreign, f"the install used a store with entries of alice's: {foreign}\n{out}"
        assert "wrote=0" not in said, f"alice wrote into the store after the install: {said}"
    else:
        assert "/var/lib/mfa" in out and "dpkg --configure -a" in out, out
        assert os.stat("/var/lib/mfa").st_uid == pwd.getpwnam("alice").pw_uid, \
            "the refused install changed the store anyway"
        os.rename("/var/lib/mfa", "/var/lib/mfa.untrusted")
        try:
            status, out = configure_again()
        finally:
            shutil.rmtree("/var/lib/mfa.untrusted")
        assert status == 0 and pkg.installed("mfa"), out
        assert not harness.ownership_errors(), harness.ownership_errors()


def su_with_password(user, target):
    """alice runs `su target -c id` and types target's password: (got a shell, transcript)."""
    child = spawn_as(user.name, ["su", target.name, "-c", "id"], "022")
    child.expect("Password: ")
    child.sendline(target.password)
    i = child.expect([rf"uid={target.uid}\(target\)", harness.PASSCODE_PROMPT, harness.TOTP_PROMPT, pexpect.EOF])
    out, _ = finish(child)
    return i == 0, harness.transcript(child) + out


def test_remove_with_an_edited_common_auth_locks_nobody_out(clean_machine):
    """The profile enabled, then the administrator added pam_faillock to common-auth's
    managed block: pam-auth-update --remove says "Local modifications ... not updating" and
    exits 0. The module must not go while common-auth still requires it."""
    users = {}
    for name in ("alice", "target"):
        users[name] = User(name)
        run("useradd", "--create-home", "--shell", "/bin/bash", name)
        run("chpasswd", input=f"{name}:{users[name].password}\n")
    status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM)
    assert status == 0, out
    status, out = pkg.command(["pam-auth-update", "--enable", "mfa"])
    assert status == 0, out
    with open("/etc/pam.d/common-auth") as f:
        lines = f.read().splitlines(keepends=True)
    at = [i for i, l in enumerate(lines) if "pam_mfa.so" in l]
    assert len(at) == 1, "".join(lines)
    lines.insert(at[0] + 1, "auth\trequired\t\t\tpam_faillock.so authsucc\n")
    with open("/etc/pam.d/common-auth", "w") as f:
        f.write("".join(lines))
    ok, said = su_with_password(users["alice"], users["target"])
    assert ok, f"su with the password before the remove (2FA is off): {said}"

    status, out = pkg.apt("remove", "libpam-mfa", "mfa")
    with open("/etc/pam.d/common-auth") as f:
        still = "pam_mfa.so" in f.read()
    module = pkg.pam_mfa_modules()
    assert not (still and not module), \
        f"apt-get remove took pam_mfa.so away while common-auth still requires it:\n{out}"
    ok, said = su_with_password(users["alice"], users["target"])
    assert ok, f"after apt-get remove, su with the right password fails: {said}\n{out}"
    if still:  # refused: it says why and how to go on
        assert status != 0 and pkg.installed("libpam-mfa"), out
        assert "/etc/pam.d/common-auth" in out and "pam_mfa" in out, out
        # The backup `pam-auth-update --force` leaves names the module too: no service reads it.
        shutil.copy2("/etc/pam.d/common-auth", "/etc/pam.d/common-auth.pam-old")
        run("sed", "-i", r"/pam_mfa\.so/d", "/etc/pam.d/common-auth")
        status, out = pkg.apt("remove", "libpam-mfa", "mfa")
        assert status == 0 and not pkg.installed("libpam-mfa") and pkg.pam_mfa_modules() == [], out
        assert "pam-old" not in out, f"a backup no service reads was reported as in use:\n{out}"
        with open("/etc/pam.d/common-auth") as f:
            assert "pam_faillock.so authsucc" in f.read(), "the administrator's own line was lost"
        ok, said = su_with_password(users["alice"], users["target"])
        assert ok, f"after the second apt-get remove, su fails: {said}"


def test_make_uninstall_of_an_old_source_install_keeps_the_packages_files(clean_machine):
    """mfa was built from source once (`make install`), then installed from the packages;
    the administrator cleans up the source install with `sudo make uninstall` (PREFIX
    /usr/local, as installed). It shares the module's and the units' paths with the
    packages: the packaged pam_mfa.so must not go (with the profile on, nobody could log in)."""
    status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM)
    assert status == 0, out
    p = subprocess.run(["make", "--no-print-directory", "-C", harness.REPO, "uninstall"],
                       capture_output=True, text=True, timeout=120)
    verify = run("dpkg", "-V", "mfa", "libpam-mfa", check=False).stdout
    assert "missing" not in verify, f"`make uninstall` deleted the packages' files:\n{verify}\n{p.stdout}{p.stderr}"


def test_a_sender_account_sharing_its_group_is_named_by_init(clean_machine):
    """The administrator points [sender] user at an existing daemon account (nobody, whose
    group nogroup every nobody daemon shares), then the postinst (init) runs again. The
    package refuses such an account `mfa` outright (above); a configured account is the
    administrator's choice, so init (and doctor) say who else can then read the passcodes
    and mfa.toml, on every run, and the postinst shows it."""
    status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM)
    assert status == 0, out
    with open(harness.CONFIG) as f:
        text = f.read()
    assert 'user = "mfa"' in text, text
    with open(harness.CONFIG, "w") as f:
        f.write(text.replace('user = "mfa"', 'user = "nobody"', 1))
    status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM, reinstall=True)
    assert status == 0, out
    warned = [l for l in out.splitlines()
              if l.startswith("warning:") and "nobody" in l and "passcode" in l]
    assert warned, f"the postinst did not show init's warning about the shared account:\n{out}"
    doctor = run("mfa-admin", "doctor", check=False)
    assert re.search(r"WARN\s+sender group", doctor.stdout), doctor.stdout
