"""An upgrade as Debian does it: the packages of an older version installed and used, then
the new ones. The older version is the same source repacked with a lower version
(0.1.0~prev0 < 0.1.0; libpam-mfa's exact Depends on mfa follows): the issue allows it, and
it is what CI can build without a second checkout. With it an administrator enabled the
profile, made rules, users, contacts and a TOTP key, and edited /etc/mfa/mfa.toml (a
conffile); after `apt-get install` of the new packages all of it is still there, the edit
kept without a prompt, pam_mfa still in common-auth, a login (passcode from the mail, and
TOTP from oathtool with the key made before) still works and `doctor` is clean. Then a
database of schema 2 (the first release's) is migrated by the postinst of a reinstall, and
a next version whose shipped mfa.toml changed leaves the edited one alone (dpkg asks; with
--force-confold the new default lands in mfa.toml.dpkg-dist).
The cases run in order: each one is a step of the same machine's life."""

import glob
import json
import os
import re
import shutil
import sqlite3

import pytest

import harness
import pkg
from harness import admin, run

OLD_VERSION_SUFFIX = "~prev0"
EDIT = "# edited by the administrator before the upgrade: must survive it\n"
BEFORE = {}  # what the machine looked like right before the upgrade


def repack(deb, dest, old, new, config_line=None):
    """`deb` rebuilt with Version `old` (and every `(= new)` relation pointing at `old`);
    `config_line`: appended to the shipped /etc/mfa/mfa.toml (its md5sums line follows)."""
    root = os.path.join(dest, os.path.basename(deb) + ".d")
    run("dpkg-deb", "-R", deb, root)
    if config_line:
        conf = os.path.join(root, "etc/mfa/mfa.toml")
        with open(conf, "a") as f:
            f.write(config_line)
        md5 = run("md5sum", conf).stdout.split()[0]
        sums = os.path.join(root, "DEBIAN", "md5sums")
        if os.path.exists(sums):
            with open(sums) as f:
                text = re.sub(r"(?m)^\w+(  etc/mfa/mfa\.toml)$", rf"{md5}\1", f.read())
            with open(sums, "w") as f:
                f.write(text)
    control = os.path.join(root, "DEBIAN", "control")
    with open(control) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^Version: .*$", f"Version: {old}", text)
    assert n == 1, text
    text = text.replace(f"(= {new})", f"(= {old})")
    with open(control, "w") as f:
        f.write(text)
    out = os.path.join(dest, os.path.basename(deb).replace(f"_{new}_", f"_{old}_"))
    run("dpkg-deb", "--build", root, out)
    assert pkg.deb_version(out) == old
    return out


@pytest.fixture(scope="module")
def old():
    new = pkg.deb_version(pkg.DEB_MFA)
    old = new + OLD_VERSION_SUFFIX
    d = os.path.join(harness.WORK, "old-debs")
    os.makedirs(d, exist_ok=True)
    debs = [repack(deb, d, old, new) for deb in (pkg.DEB_MFA, pkg.DEB_PAM)]
    run("dpkg", "--compare-versions", old, "lt", new)
    status, out = pkg.install(*debs)
    assert status == 0, out
    status, out2 = pkg.command(["pam-auth-update", "--enable", "mfa"])
    assert status == 0, out2
    return {"version": old, "new": new, "out": out}


@pytest.fixture(scope="module")
def system(old):
    s = harness.System()
    try:
        s.up()
        yield s
    finally:
        s.down()


def snapshot_state():
    """What an upgrade must keep, as mfa-admin shows it."""
    users = json.loads(admin("user", "list", "--json").stdout)
    names = sorted(u["name"] if isinstance(u, dict) else u for u in users)
    return {
        "export": admin("export").stdout,
        "users": names,
        "shown": {n: admin("user", "show", n, "--json").stdout for n in names},
    }


def test_old_version_installed_and_used(old, system):
    for p in ("mfa", "libpam-mfa"):
        assert pkg.status(p) == f"install ok installed {old['version']}", pkg.status(p)
    # More than the harness made: a trusted network, an override, a second user.
    admin("user", "add", "bob")
    admin("contact", "add", "bob", "--email", f"bob@{harness.DOMAIN}")
    admin("net", "add", "--service", "sshd", "--cidr", "10.2.2.0/24", "--require", "no", "--note", "office")
    admin("override", "set", "bob", "--mandatory", "yes")
    # The harness already edited mfa.toml (its [smtp] table, no send limits); one more line.
    with open(harness.CONFIG, "a") as f:
        f.write(EDIT)
    with open(harness.CONFIG, "rb") as f:
        BEFORE["config"] = f.read()
    BEFORE["state"] = snapshot_state()
    BEFORE["common"] = pkg.common_files()
    assert "office" in BEFORE["state"]["export"] and {"alice", "bob", "target"} <= set(BEFORE["state"]["users"])
    assert b"pam_mfa" in BEFORE["common"]["common-auth"]


def test_upgrade_keeps_rules_users_keys_and_the_edited_config(old, system):
    assert BEFORE, "the step before did not run"
    status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM)
    with open(os.path.join(harness.WORK, "upgrade.log"), "w") as f:
        f.write(out)
    assert status == 0, out
    for p in ("mfa", "libpam-mfa"):
        assert pkg.status(p) == f"install ok installed {old['new']}", f"{p}: {pkg.status(p)}\n{out}"
    assert f"Unpacking mfa ({old['new']}) over ({old['version']})" in out, out
    # The edited conffile: kept, no prompt (stdin is /dev/null: a prompt would have failed).
    assert "Configuration file '/etc/mfa/mfa.toml'" not in out, out
    with open(harness.CONFIG, "rb") as f:
        assert f.read() == BEFORE["config"], "the upgrade changed the edited /etc/mfa/mfa.toml"
    assert glob.glob("/etc/mfa/*.dpkg-*") == [], glob.glob("/etc/mfa/*.dpkg-*")
    assert not harness.ownership_errors(), harness.ownership_errors()
    # The enabled profile stays enabled: the upgrade is no remove.
    assert pkg.common_files() == BEFORE["common"], "the upgrade changed /etc/pam.d/common-*"
    after = snapshot_state()
    for k in BEFORE["state"]:
        assert after[k] == BEFORE["state"][k], f"{k} changed by the upgrade"


def restart_sender(system):
    """What systemd does after an upgrade (dh_installsystemd: restart): the new binary."""
    p = system.procs.pop("sender")
    p.terminate()
    p.wait(timeout=30)
    try:
        os.unlink("/run/mfa/sender.heartbeat")
    except FileNotFoundError:
        pass
    system.sender()
    exe = os.readlink(f"/proc/{system.procs['sender'].pid}/exe")
    assert exe == f"{harness.SBIN}/mfa-sender", f"the sender runs {exe}"


def test_logins_after_upgrade(old, system):
    import test_2_su
    import test_3_sudo

    restart_sender(system)
    out, status = test_2_su.su(system, "su", "022", right=True)
    assert status == 0 and f"uid={system.target.uid}(target)" in out, out + system.logs()
    system.assert_logged("target", "su", "success")
    # The TOTP key enrolled before the upgrade, codes from oathtool.
    admin("service", "set", "sudo", "totp")
    out, status = test_3_sudo.sudo(system, "sudo id", "totp", "022", right=True)
    assert status == 0 and "uid=0(root)" in out, out
    system.assert_logged("alice", "sudo", "success")
    out, status = test_3_sudo.sudo(system, "sudo id", "totp", "022", right=False)
    assert status == 1 and "uid=0" not in out, out


def test_doctor_clean_after_upgrade(old, system):
    p = admin("doctor", check=False)
    out = p.stdout + p.stderr
    fails = [l for l in out.splitlines() if l.lstrip().startswith("FAIL")]
    assert p.returncode == 0 and not fails, f"doctor after the upgrade exited {p.returncode}:\n{out}"


def schema_migrations():
    """The SQL of each migration, from the store's source (mfa-core/src/store/schema.rs)."""
    with open(os.path.join(harness.REPO, "mfa-core/src/store/schema.rs")) as f:
        src = f.read()
    names = re.search(r"MIGRATIONS: &\[&str\] = &\[([^\]]*)\]", src).group(1).replace(" ", "").split(",")
    return [re.search(rf'const {n}: &str = r#"(.*?)"#;', src, re.S).group(1) for n in names if n]


def test_postinst_migrates_a_schema_2_database(old, system):
    """The first release's database (schema 2, WAL) with a user and a TOTP key, put in place
    of the current one; a reinstall's postinst (`mfa-admin init`) migrates it."""
    migrations = schema_migrations()
    assert len(migrations) >= 3, "no migration after schema 2: nothing to migrate"
    system.down()
    system.procs.clear()
    # The first release kept its login state in the database: no state files beside it.
    for f in glob.glob("/var/lib/mfa/*"):
        shutil.rmtree(f) if os.path.isdir(f) and not os.path.islink(f) else os.unlink(f)
    db = "/var/lib/mfa/mfa.db"
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
    c.executescript(migrations[0])
    c.executescript(migrations[1])
    c.executescript("""PRAGMA user_version = 2;
        INSERT INTO users (name, full_name, enabled, created) VALUES ('ann', '', 1, 0);
        INSERT INTO totp (user, secret, algorithm, digits, created, last_step)
            VALUES ('ann', X'00112233445566778899aabbccddeeff00112233', 'sha1', 6, 0, 99);""")
    c.commit()
    c.close()
    os.chmod(db, 0o600)
    status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM, reinstall=True)
    assert status == 0, out
    c = sqlite3.connect(db)
    try:
        version = c.execute("PRAGMA user_version").fetchone()[0]
        secret = c.execute("SELECT secret FROM totp WHERE user = 'ann'").fetchone()
    finally:
        c.close()
    assert version == len(migrations), f"the postinst left schema {version}, want {len(migrations)}\n{out}"
    assert secret and len(secret[0]) == 20, "the TOTP key did not survive the migration"
    shown = json.loads(admin("user", "show", "ann", "--json").stdout)
    assert "ann" in json.dumps(shown), shown


def test_an_upgrade_whose_default_config_changed_keeps_the_edit(old):
    """The next version ships a different mfa.toml while the administrator's is edited:
    dpkg must not overwrite the edit. Unattended (stdin /dev/null) it either stops at its
    question or keeps the edit; with --force-confold (what unattended upgrades pass) it keeps
    the edit and puts the new default beside it as mfa.toml.dpkg-dist."""
    nxt = old["new"] + "+next1"
    d = os.path.join(harness.WORK, "next-debs")
    os.makedirs(d, exist_ok=True)
    line = "# a default added by the next version\n"
    debs = [repack(pkg.DEB_MFA, d, nxt, old["new"], config_line=line), repack(pkg.DEB_PAM, d, nxt, old["new"])]
    with open(harness.CONFIG, "a") as f:
        f.write("# edited again before the next upgrade\n")
    with open(harness.CONFIG, "rb") as f:
        edited = f.read()
    status, out = pkg.install(*debs)
    with open(harness.CONFIG, "rb") as f:
        assert f.read() == edited, f"the upgrade overwrote the edited mfa.toml:\n{out}"
    if status != 0:  # dpkg asked, nobody answered: the edit is kept, the upgrade not done
        assert "mfa.toml" in out, out
        status, out = pkg.apt("-o", "Dpkg::Options::=--force-confold", "-o", "Dpkg::Options::=--force-confdef",
                              "install", *debs)
        assert status == 0, out
    assert pkg.status("mfa") == f"install ok installed {nxt}", f"{pkg.status('mfa')}\n{out}"
    with open(harness.CONFIG, "rb") as f:
        assert f.read() == edited, f"the upgrade overwrote the edited mfa.toml:\n{out}"
    with open(harness.CONFIG + ".dpkg-dist", "rb") as f:
        assert f.read().endswith(line.encode()), "mfa.toml.dpkg-dist is not the new default"
    assert not harness.ownership_errors(), harness.ownership_errors()
    assert harness.mode_owner(harness.CONFIG + ".dpkg-dist")[0] & 0o007 == 0, \
        "the new default (which may hold secrets' places) is readable by everyone"
