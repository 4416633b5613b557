"""Administering many users (issue 15) on the installed system: groups, notices, backups,
the maintenance unit, bulk import and `mfa-admin verify`, driven through the real su (alice
on a pseudo-terminal), the real sender (as user `mfa`) and the local SMTP server.

1. A group following a Unix group (`mfaops`, made in the throwaway root): the target in it,
   the group mandatory with only TOTP allowed: su asks for the authenticator code alone (no
   menu, no mail), a right code (oathtool) passes, a passcode-shaped guess fails; `user show`
   says the group comes from the Unix group. Out of the Unix group and after `maintain`: su
   offers the passcode again.
2. Notices: a lockout after three wrong passcodes mails the administrator once and the user
   once, through the real sender; tries while locked out mail nobody, nor a second lockout
   within the hour.
3. `user import --csv`: imported users log in with the mailed passcode; a bad line: exit 2,
   its line number named, `export` unchanged.
4. `user import --unix-group` with unassigned=enroll self_enroll=yes: records without
   contacts, and su enrolls one.
5. `backup` while 8 su loops log in, then a change, then `restore` (the loops still going):
   the backup 0600 root, the change undone, doctor passes, the database's mode and owner
   kept, the aside copy 0600, a login after works, and every login during the backup and
   the restore was decided by the module (the wrong code refused as such).
6. `mfa-admin verify USER --service X` with answers on stdin: the mailed passcode 0, a wrong
   one 1, method none 3, the sender down under fail_mode=safe 4.
7. The maintenance unit's ExecStart run as the unit runs it (root without capabilities, no
   network, a read-only system but its ReadWritePaths, UMask 0077): inactive_after=1d
   disables the user whose record is old and who never proved a factor, and mails them and
   the administrator; a user whose record is as old but who just logged in through su (the
   module's recorded success) stays enabled, as do the fresh ones; a Unix group joined
   since is resolved by that run; a second run disables and mails nobody, nor a run after
   the administrator enabled the disabled user again.
8. A disabled user's su tries: one notice to the administrator, one to the user. The sender
   down under fail_mode=safe: su lets the target in (logged unavailable-*), the unit's next
   run queues one fail-mode notice, mailed once the sender is back, and not again.
9. An application allowed `sudo mfa-admin verify *` (alice): --service su refused (exit 2,
   nothing sent); a proof for mfa-verify leaves no repeat-window grant su honours (su still
   asks), while su's own proof does (the next su asks nothing).
10. mfa-sender.service's ExecStart in a sandbox like its unit's (user mfa, its syscall
    filter, /var/lib/mfa inaccessible): a passcode and the lockout notices are delivered.

Each case puts back what it changed (settings, service methods, groups, Unix groups, users,
keys, lockouts), also when it fails: later files see the system as the fixture made it.
"""

import contextlib
import glob
import json
import os
import pwd
import re
import shlex
import sqlite3
import subprocess
import threading
import time

import pexpect
import pytest

from harness import (MENU_PROMPT, PASSCODE_PROMPT, SBIN, TOTP_PROMPT, WORK, WRONG_PASSCODE, User,
                     admin, finish, mode_owner, run, spawn_as, transcript, wait_for, wrong)
from unitsandbox import unit_sandbox, unit_values

# pexpect's PopenSpawn (answers on a pipe, for mfa-admin verify) starts its reader thread
# with a call Python 3.10 deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:setDaemon:DeprecationWarning")

UMASK = "022"
ADMIN = "admin@mfa.test"
DATABASE = "/var/lib/mfa/mfa.db"
SPOOL = "/var/spool/mfa"
UNIT = "/lib/systemd/system/mfa-maintenance.service"
LOCKED = "too many failures"  # the module's word for a locked-out account


# ---- what a case changes, put back afterwards ------------------------------------------

@contextlib.contextmanager
def settings(**values):
    """`settings set K=V ...` for the block; each setting as it was afterwards."""
    rows = {r["key"]: r for r in json.loads(admin("settings", "show", "--json").stdout)}
    admin("settings", "set", *[f"{k}={v}" for k, v in values.items()])
    try:
        yield
    finally:
        reset = [k for k in values if rows[k]["value"] == rows[k]["default"]]
        keep = [f"{k}={rows[k]['value']}" for k in values if k not in reset]
        if reset:
            admin("settings", "reset", *reset)
        if keep:
            admin("settings", "set", *keep)


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
def unix_group(name, members):
    """A Unix group with `members` (supplementary) in the throwaway root's /etc."""
    run("groupadd", name)
    try:
        for m in members:
            run("gpasswd", "-a", m, name)
        yield name
    finally:
        run("groupdel", name, check=False)


@contextlib.contextmanager
def unix_user(name):
    """A Unix account with a home and a password (a harness.User), removed afterwards."""
    u = User(name)
    run("useradd", "--create-home", "--shell", "/bin/bash", name)
    try:
        run("chpasswd", input=f"{name}:{u.password}\n")
        yield u
    finally:
        run("userdel", "--remove", name, check=False)


@contextlib.contextmanager
def unlocked(user):
    """The block may lock `user` out or count failures: both cleared afterwards."""
    try:
        yield
    finally:
        admin("user", "unlock", user, check=False)


def user_json(name):
    return json.loads(admin("user", "show", name, "--json").stdout)


def mails(system, since):
    """Every mail delivered after mark `since`: [(rcpt list, text)]."""
    return [(m["rcpt"], system.mailbox.text(m["data"])) for m in system.mailbox._mails()[since[0]:]]


def spool_idle():
    """Nothing waiting in or claimed from the spool (the sender has sent what it was given)."""
    return not any(os.listdir(f"{SPOOL}/{d}") for d in ("new", "cur", "tmp"))


def quiet(system, since, secs=3.0):
    """Waits for the spool to drain, then `secs` more; the mails after `since`."""
    wait_for(spool_idle, 20, f"the sender to empty {SPOOL}/new (see {WORK}/sender.log)")
    time.sleep(secs)
    wait_for(spool_idle, 20, f"the sender to empty {SPOOL}/new (see {WORK}/sender.log)")
    return mails(system, since)


def su_start(system, who=None):
    """su by alice to `who` (a harness.User; target) on a terminal, past the password:
    returns the child."""
    user = who or system.target
    child = spawn_as("alice", ["su", user.name, "-c", "id"], UMASK)
    child.expect("Password: ")
    child.sendline(user.password)
    return child


# ---- 1. a group that follows a Unix group ----------------------------------------------

@pytest.fixture
def ops_group(system):
    """Unix group mfaops with target in it; group ops following it (mandatory, TOTP only);
    target with an authenticator key besides its email contact; su's method `any`."""
    t = system.target
    with contextlib.ExitStack() as undo:
        undo.enter_context(unix_group("mfaops", [t.name]))
        undo.enter_context(service_method("su", "any"))
        undo.enter_context(unlocked(t.name))
        out = json.loads(admin("totp", "enroll", t.name, "--json").stdout)
        undo.callback(admin, "totp", "remove", t.name, check=False)
        t.totp_key, t.totp_step = out["key"], 0
        admin("group", "add", "ops", "--unix-group", "mfaops", "--mandatory", "yes",
              "--factors", "totp")
        undo.callback(admin, "group", "del", "ops", check=False)
        undo.callback(admin, "group", "set", "ops", "--unix-group", "none", check=False)
        admin("group", "sync")
        yield t


def test_group_following_a_unix_group_allows_only_totp(system, ops_group):
    t = ops_group
    j = user_json(t.name)
    assert j["effective"]["group"]["value"] == "ops", j
    assert j["effective"]["group"]["from"] == "unix", j
    assert j["effective"]["factors"]["value"] == "totp", j
    assert "ops (through Unix group mfaops)" in admin("user", "show", t.name).stdout

    # The authenticator code alone: no menu, no passcode sent.
    mark = system.mailbox.mark()
    child = su_start(system)
    i = child.expect([TOTP_PROMPT, MENU_PROMPT, PASSCODE_PROMPT, pexpect.EOF])
    assert i == 0, f"want the authenticator prompt alone:\n{transcript(child)}"
    child.sendline(t.totp())
    out, status = finish(child)
    assert status == 0 and f"uid={t.uid}(" in out, out
    system.assert_logged(t.name, "su", "success")
    assert system.last_auth(t.name)["method"] == "totp", system.last_auth(t.name)

    # A guess shaped like a passcode (six digits, none sent) at the same prompt: refused.
    child = su_start(system)
    i = child.expect([TOTP_PROMPT, MENU_PROMPT, PASSCODE_PROMPT, pexpect.EOF])
    assert i == 0, transcript(child)
    child.sendline(t.wrong_totp())
    out, status = finish(child)
    assert status == 1 and "uid=" not in out, out
    system.assert_logged(t.name, "su", "deny")
    sent = [m for m in quiet(system, mark, secs=1) if t.email in m[0]]
    assert not sent, f"a TOTP-only group member was mailed: {sent}"

    # Out of the Unix group: nothing changes until mfa-admin resolves it (no NSS in a
    # login), then the maintenance run does and su offers the passcode again.
    run("gpasswd", "-d", t.name, "mfaops")
    assert user_json(t.name)["effective"]["group"]["value"] == "ops", "resolved before maintain"
    admin("maintain")
    j = user_json(t.name)
    assert j["effective"]["group"]["value"] is None, j
    assert j["effective"]["factors"]["value"] == "all", j
    mark = system.mailbox.mark()
    child = su_start(system)
    i = child.expect([MENU_PROMPT, TOTP_PROMPT, PASSCODE_PROMPT, pexpect.EOF])
    assert i == 0, f"want a menu (authenticator and passcode):\n{transcript(child)}"
    menu = child.before
    pick = re.search(r"(\d)\) passcode to ", menu)
    assert pick, f"no passcode in the menu:\n{menu}"
    child.sendline(pick.group(1))
    child.expect(PASSCODE_PROMPT)
    child.sendline(system.mailbox.code(t.email, child.match.group(1), mark))
    out, status = finish(child)
    assert status == 0 and f"uid={t.uid}(" in out, out
    assert system.last_auth(t.name)["method"] == "passcode", system.last_auth(t.name)


# ---- 2. lockout notices through the real sender -----------------------------------------

def su_wrong_passcode(system, mark, user=None):
    """One su by alice to `user` (target) with a wrong passcode (the mailed one plus one)."""
    t = user or system.target
    child = su_start(system, t)
    i = child.expect([PASSCODE_PROMPT, pexpect.EOF, MENU_PROMPT])
    assert i == 0, transcript(child)
    code = system.mailbox.code(t.email, child.match.group(1), mark)
    child.sendline(wrong(code))
    out, status = finish(child)
    assert status == 1 and "uid=" not in out, out
    return out


def notices(found, rcpt, words):
    return [text for to, text in found if rcpt in to and words in text]


def test_lockout_notices_one_to_the_admin_one_to_the_user(system):
    t = system.target
    with settings(admin_email=ADMIN, notify_admin="lockout", notify_user="lockout",
                  lockout_after="3", lockout_for="15m"), unlocked(t.name):
        admin("user", "unlock", t.name)
        start = system.mailbox.mark()
        for n in range(3):
            out = su_wrong_passcode(system, system.mailbox.mark())
            assert WRONG_PASSCODE in out, f"try {n + 1}: {out}"
        assert user_json(t.name)["locked_until"] > time.time(), user_json(t.name)
        system.mailbox.wait_mail(ADMIN, start)
        # While locked out: refused before any passcode is sent, and nobody told again.
        locked_mark = system.mailbox.mark()
        for _ in range(2):
            child = su_start(system)
            out, status = finish(child)
            assert status == 1 and LOCKED in out and "uid=" not in out, out
        found = quiet(system, start)
        admin_notes = notices(found, ADMIN, "user target was locked out")
        user_notes = notices(found, t.email, "your account was locked out")
        assert len(admin_notes) == 1, f"notices to the admin: {admin_notes}"
        assert len(user_notes) == 1, f"notices to the user: {user_notes}"
        assert "after 3 failed attempts on su" in admin_notes[0], admin_notes[0]
        assert len([m for m in found if ADMIN in m[0]]) == 1, "the admin got something else too"
        later = mails(system, locked_mark)
        assert not later, f"mail while locked out: {later}"

        # Unlocked, then locked out again within the hour: refused as before, but nobody is
        # told again (at most one lockout notice an hour per user).
        admin("user", "unlock", t.name)
        again = system.mailbox.mark()
        for _ in range(3):
            su_wrong_passcode(system, system.mailbox.mark())
        assert user_json(t.name)["locked_until"] > time.time(), user_json(t.name)
        told = [m for m in quiet(system, again) if "locked out" in m[1]]
        assert not told, f"a second lockout notice within the hour: {told}"


# ---- 5. backup while logins run, then restore ---------------------------------------------

def login_loop(system, stop, outcomes):
    """su by alice to target with a wrong passcode, again and again until `stop`: each
    outcome (exit status, whether the module refused the code, the output when not)."""
    t = system.target
    while not stop.is_set():
        child = spawn_as("alice", ["su", t.name, "-c", "id"], UMASK, timeout=60)
        try:
            child.expect("Password: ")
            child.sendline(t.password)
            i = child.expect([PASSCODE_PROMPT, pexpect.EOF, MENU_PROMPT, TOTP_PROMPT])
            if i == 0:
                child.sendline("000000")
            out, status = finish(child, timeout=60)
        except pexpect.ExceptionPexpect as e:
            out, status = f"{transcript(child)}\n[{type(e).__name__}]", None
            child.close(force=True)
        refused = status == 1 and WRONG_PASSCODE in out
        outcomes.append((status, refused, "" if refused else out))


def aside_copies():
    return set(glob.glob(f"{DATABASE}.before-restore-*"))


def test_backup_during_logins_then_restore(system, tmp_path):
    t, bak = system.target, "/root/mfa.bak"
    db_before = mode_owner(DATABASE)
    asides = aside_copies()
    stop, outcomes, threads = threading.Event(), [], []
    with contextlib.ExitStack() as undo:
        undo.enter_context(settings(lockout_after="0"))
        undo.enter_context(unlocked(t.name))
        undo.callback(lambda: [os.unlink(p) for p in aside_copies() - asides])
        undo.callback(lambda: os.path.exists(bak) and os.unlink(bak))
        undo.callback(admin, "user", "del", "bkp", check=False)
        undo.callback(admin, "user", "del", "late", check=False)
        admin("user", "add", "bkp")
        admin("contact", "add", "bkp", "--email", "bkp@mfa.test")

        def stop_logins():
            stop.set()
            for th in threads:
                th.join(timeout=90)
        undo.callback(stop_logins)
        for _ in range(8):
            th = threading.Thread(target=login_loop, args=(system, stop, outcomes), daemon=True)
            th.start()
            threads.append(th)
        wait_for(lambda: len(outcomes) >= 8, 60, "8 logins to finish")
        began = time.monotonic()
        b = admin("backup", bak)
        took = time.monotonic() - began
        n_before = len(outcomes)
        wait_for(lambda: len(outcomes) >= n_before + 8, 60, "8 more logins after the backup")
        assert mode_owner(bak) == (0o600, "root", "root"), mode_owner(bak)
        assert took < 30, f"the backup took {took:.1f}s beside 8 logins"

        # A change after the backup, then the restore undoes it; the logins still going on.
        admin("user", "del", "bkp")
        admin("user", "add", "late")
        # Three restores a second apart, so that some land inside logins (not closer: the
        # aside copy is named by the second, and a second restore within it fails EEXIST).
        took_restore = 0.0
        for _ in range(3):
            began = time.monotonic()
            r = admin("restore", bak)
            took_restore = max(took_restore, time.monotonic() - began)
            assert "before-restore-" in r.stdout + r.stderr, r
            time.sleep(1.1)
        n_restored = len(outcomes)
        wait_for(lambda: len(outcomes) >= n_restored + 8, 60, "8 more logins after the restore")
        stop_logins()
        assert not any(th.is_alive() for th in threads), "a login loop is still running"
        odd = [o for o in outcomes if not o[1]]
        assert not odd, f"{len(odd)} of {len(outcomes)} logins not refused by the module " \
                        f"for the wrong code during the backup and the restore:\n{odd[:3]}\n{system.logs()}"
        print(f"backup {took:.2f}s, restore {took_restore:.2f}s beside 8 su loops "
              f"({len(outcomes)} logins): {b.stdout.strip()}")
        # The restore raised every TOTP user's newest step to now: alice's next code is later.
        system.alice.totp_step = int(time.time()) // 30 + 1
        names = {u["name"] for u in json.loads(admin("user", "list", "--json").stdout)}
        assert "bkp" in names and "late" not in names, names
        assert "bkp@mfa.test" in json.dumps(user_json("bkp")["contacts"]), user_json("bkp")
        assert mode_owner(DATABASE) == db_before, (mode_owner(DATABASE), db_before)
        new = aside_copies() - asides
        assert len(new) == 3, new
        assert all(mode_owner(c) == (0o600, "root", "root") for c in new), new
        d = admin("doctor", check=False)
        fails = [l for l in (d.stdout + d.stderr).splitlines() if l.lstrip().startswith("FAIL")]
        assert d.returncode == 0 and not fails, d.stdout + d.stderr

        # A login after the restore works (passcode from the mail).
        mark = system.mailbox.mark()
        child = su_start(system)
        i = child.expect([PASSCODE_PROMPT, pexpect.EOF, MENU_PROMPT])
        assert i == 0, transcript(child)
        child.sendline(system.mailbox.code(t.email, child.match.group(1), mark))
        out, status = finish(child)
        assert status == 0 and f"uid={t.uid}(" in out, out


# ---- 7. the maintenance unit as installed ---------------------------------------------------

def as_the_unit(argv):
    """`argv` run to its end as mfa-maintenance.service runs it (unit_sandbox)."""
    p = unit_sandbox(UNIT, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=120)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def set_created(name, when):
    with contextlib.closing(sqlite3.connect(DATABASE, timeout=30)) as db:
        with db:
            n = db.execute("UPDATE users SET created = ? WHERE name = ?", (when, name)).rowcount
    assert n == 1, f"no user {name} in {DATABASE}"


def test_maintenance_unit_disables_the_inactive_user(system):
    t = system.target
    exec_start = unit_values(UNIT, "ExecStart")
    assert exec_start == [f"{SBIN}/mfa-admin maintain"], exec_start
    # The sandbox is what it claims: no capability, nothing writable outside the paths.
    probe = as_the_unit(["sh", "-c", "grep CapEff /proc/self/status; umask; "
                         "touch /etc/mfa/.probe && echo WROTE-ETC; "
                         "touch /var/lib/mfa/.probe && echo WROTE-LIB; "
                         "chown root /var/lib/mfa/.probe || echo NO-CHOWN; rm -f /var/lib/mfa/.probe"])
    assert "CapEff:\t0000000000000000" in probe.stdout, probe
    assert "NO-CHOWN" in probe.stdout and "Operation not permitted" in probe.stderr, probe
    assert "WROTE-ETC" not in probe.stdout and "WROTE-LIB" in probe.stdout, probe
    assert "0077" in probe.stdout, probe

    old = int(time.time()) - 10 * 86400
    with contextlib.ExitStack() as undo:
        undo.enter_context(settings(inactive_after="1d", admin_email=ADMIN,
                                    notify_admin="disabled", notify_user="disabled"))
        back = undo.enter_context(unix_user("comeback"))
        for name in ("idle1", "fresh1", back.name):
            undo.callback(admin, "user", "del", name, check=False)
            admin("user", "add", name)
            admin("contact", "add", name, "--email", f"{name}@mfa.test")
        set_created("idle1", old)
        set_created(back.name, old)
        # A group following a Unix group that comeback joins only now: the unit's run
        # resolves it (NSS without network, under the filter).
        undo.enter_context(unix_group("mfaunit", []))
        undo.callback(admin, "group", "del", "unitops", check=False)
        undo.callback(admin, "group", "set", "unitops", "--unix-group", "none", check=False)
        admin("group", "add", "unitops", "--unix-group", "mfaunit", "--log", "rejects")
        run("gpasswd", "-a", back.name, "mfaunit")
        listed = {u["name"] for u in json.loads(admin("user", "list", "--inactive", "1d", "--json").stdout)}
        assert {"idle1", back.name} <= listed and "fresh1" not in listed, listed

        # comeback proves a factor through su: the module's record of it keeps them enabled.
        mark = system.mailbox.mark()
        child = su_start(system, back)
        assert child.expect([PASSCODE_PROMPT, pexpect.EOF, MENU_PROMPT]) == 0, transcript(child)
        child.sendline(system.mailbox.code(back.email, child.match.group(1), mark))
        out, status = finish(child)
        assert status == 0 and f"uid={back.uid}(" in out, out

        mark = system.mailbox.mark()
        p = as_the_unit(exec_start[0].split())
        assert p.returncode == 0, f"the unit's run exited {p.returncode}:\n{p.stdout}{p.stderr}"
        enabled = {n: user_json(n)["enabled"] for n in ("idle1", "fresh1", back.name, t.name, "alice")}
        assert enabled == {"idle1": False, "fresh1": True, back.name: True, t.name: True,
                           "alice": True}, \
            f"{enabled}\n{p.stdout}{p.stderr}"
        g = user_json(back.name)["effective"]["group"]
        assert (g["value"], g["from"]) == ("unitops", "unix"), f"{g}\n{p.stdout}{p.stderr}"
        user_note = system.mailbox.wait_mail("idle1@mfa.test", mark)
        admin_note = system.mailbox.wait_mail(ADMIN, mark)
        assert "your account was disabled" in user_note, user_note
        assert "user idle1 was disabled" in admin_note and "inactive_after =" in admin_note, admin_note
        found = quiet(system, mark, secs=1)
        assert len(found) == 2, f"want exactly the two notices about idle1: {found}"
        # A second run disables nobody and mails nobody.
        mark = system.mailbox.mark()
        p = as_the_unit(exec_start[0].split())
        assert p.returncode == 0, p
        assert not quiet(system, mark, secs=1), "the second run mailed again"
        # Enabled again by the administrator: the next run leaves idle1 alone (a re-enabling
        # starts the inactivity period afresh).
        admin("user", "enable", "idle1")
        p = as_the_unit(exec_start[0].split())
        assert p.returncode == 0, p
        assert user_json("idle1")["enabled"], f"re-enabled idle1 disabled again:\n{p.stdout}"


# ---- 3. user import --csv -----------------------------------------------------------------

def su_passcode_login(system, user):
    """su by alice to `user` (a harness.User) with the passcode from the mail: (out, status)."""
    mark = system.mailbox.mark()
    child = su_start(system, user)
    i = child.expect([PASSCODE_PROMPT, pexpect.EOF, MENU_PROMPT, TOTP_PROMPT])
    assert i == 0, f"no passcode prompt for {user.name}:\n{transcript(child)}"
    child.sendline(system.mailbox.code(user.email, child.match.group(1), mark))
    return finish(child)


def test_user_import_csv_then_login(system, tmp_path):
    with contextlib.ExitStack() as undo:
        imp = undo.enter_context(unix_user("imp1"))
        undo.callback(admin, "group", "del", "importers", check=False)
        admin("group", "add", "importers", "--description", "imported")
        names = ["imp1", "imp2", "imp3"]
        for n in names:
            undo.callback(admin, "user", "del", n, check=False)
        good = tmp_path / "users.csv"
        good.write_text("user,full_name,group,email,sms\n"
                        f'imp1,"Imp, One",importers,{imp.email},\n'
                        "imp2,Imp Two,,imp2@mfa.test;imp2b@mfa.test,+14155550123\n"
                        "imp3,,importers,,\n")
        r = admin("user", "import", "--csv", str(good))
        print(r.stdout)
        assert "3 users added" in r.stdout, r
        j = user_json("imp1")
        assert j["full_name"] == "Imp, One", j
        assert (j["effective"]["group"]["value"], j["effective"]["group"]["from"]) == ("importers", "user"), j
        assert imp.email in json.dumps(j["contacts"]), j
        assert len(user_json("imp2")["contacts"]) == 3, user_json("imp2")
        assert user_json("imp3")["contacts"] == [], user_json("imp3")

        out, status = su_passcode_login(system, imp)
        assert status == 0 and f"uid={imp.uid}(" in out, out
        system.assert_logged("imp1", "su", "success")

        # A bad line (line 3: an address that is not one; line 4: an unknown group): the
        # whole file refused, both named, nothing written.
        before = admin("export").stdout
        bad = tmp_path / "bad.csv"
        bad.write_text("user,group,email\n"
                       "imp4,importers,imp4@mfa.test\n"
                       "imp5,,not-an-address\n"
                       "imp6,nosuchgroup,imp6@mfa.test\n")
        for n in ("imp4", "imp5", "imp6"):
            undo.callback(admin, "user", "del", n, check=False)
        p = admin("user", "import", "--csv", str(bad), check=False)
        assert p.returncode == 2, p
        assert "line 3" in p.stderr and "line 4" in p.stderr, p.stderr
        assert "line 2" not in p.stderr, p.stderr
        assert admin("export").stdout == before, "a refused import changed the rules"
        names = {u["name"] for u in json.loads(admin("user", "list", "--json").stdout)}
        assert not names & {"imp4", "imp5", "imp6"}, names


# ---- 4. user import --unix-group, then enrollment at su ------------------------------------

def test_user_import_unix_group_then_enroll(system):
    with contextlib.ExitStack() as undo:
        new = undo.enter_context(unix_user("newbie"))
        undo.enter_context(unix_group("mfanew", [new.name, "alice"]))
        undo.enter_context(settings(unassigned="enroll", self_enroll="yes"))
        undo.callback(admin, "user", "del", new.name, check=False)
        had = {u["name"] for u in json.loads(admin("user", "list", "--json").stdout)}
        assert new.name not in had
        r = admin("user", "import", "--unix-group", "mfanew")
        names = {u["name"] for u in json.loads(admin("user", "list", "--json").stdout)}
        assert names - had == {new.name}, (names - had, r.stdout)  # alice had a record
        assert user_json(new.name)["contacts"] == [], user_json(new.name)

        mark = system.mailbox.mark()
        child = su_start(system, new)
        i = child.expect(["Email address or mobile number: ", PASSCODE_PROMPT, pexpect.EOF])
        assert i == 0, f"no enrollment for an imported user without contacts:\n{transcript(child)}"
        child.sendline(new.email)
        child.expect(PASSCODE_PROMPT)
        child.sendline(system.mailbox.code(new.email, child.match.group(1), mark))
        out, status = finish(child)
        assert status == 0 and f"uid={new.uid}(" in out, out
        assert "registered" in out, out
        contacts = user_json(new.name)["contacts"]
        assert len(contacts) == 1 and new.email in json.dumps(contacts), contacts
        # Enrolled: the next login sends the passcode there, no enrollment.
        out, status = su_passcode_login(system, new)
        assert status == 0, out


# ---- 6. mfa-admin verify on the installed system --------------------------------------------

VERIFY_SERVICE = "mfa-verify-sys"


def verify(user, *args, answer=None, system=None, timeout=40):
    """`mfa-admin verify USER --service VERIFY_SERVICE ARGS` with answers on a pipe: the
    passcode from the mail when `answer` is "right", that plus one when "wrong", nothing
    (end of input) when None. Returns (exit status, everything it wrote)."""
    from pexpect.popen_spawn import PopenSpawn
    cmd = " ".join(shlex.quote(a) for a in
                   [f"{SBIN}/mfa-admin", "verify", user.name, "--service", VERIFY_SERVICE, *args])
    mark = system.mailbox.mark() if system else None
    child = PopenSpawn(["sh", "-c", f"exec {cmd} 2>&1"], encoding="utf-8", timeout=timeout)
    if answer is not None:
        child.expect(PASSCODE_PROMPT)
        prefix = child.match.group(1)
        code = system.mailbox.code(user.email, prefix, mark)
        child.sendline(code if answer == "right" else wrong(code))
    else:
        child.proc.stdin.close()
    child.expect(pexpect.EOF)
    status = child.wait()
    return status, child.before


def test_verify_exit_statuses(system):
    t = system.target
    with contextlib.ExitStack() as undo:
        undo.enter_context(unlocked(t.name))
        undo.callback(admin, "service", "del", VERIFY_SERVICE, check=False)
        admin("service", "set", VERIFY_SERVICE, "passcode")
        status, out = verify(t, answer="right", system=system)
        print(out)
        assert status == 0, out
        system.assert_logged(t.name, VERIFY_SERVICE, "success")
        status, out = verify(t, answer="wrong", system=system)
        assert status == 1, out
        system.assert_logged(t.name, VERIFY_SERVICE, "deny")
        # End of input at the prompt: a denial, never 0.
        status, out = verify(t, system=system)
        assert status == 1, out

        # No factor required: method none, a trusted network.
        admin("service", "set", VERIFY_SERVICE, "none")
        status, out = verify(t)
        assert status == 3, out
        admin("service", "set", VERIFY_SERVICE, "passcode")
        admin("net", "add", "--service", VERIFY_SERVICE, "--require", "no", "--cidr", "192.0.2.0/24")
        rules = json.loads(admin("net", "list", "--service", VERIFY_SERVICE, "--json").stdout)
        for r in rules:
            if r.get("service") == VERIFY_SERVICE:
                undo.callback(admin, "net", "del", str(r["id"]), check=False)
        status, out = verify(t, "--address", "192.0.2.7")
        assert status == 3, out

        # The sender down under fail_mode=safe: 4, whatever the fail mode lets PAM do.
        undo.enter_context(settings(fail_mode="safe"))
        system.stop_sender()
        try:
            status, out = verify(t)
            assert status == 4, out
        finally:
            system.start_sender()


# ---- 8. notices of a disabled user's tries, and of fail-mode events ------------------------

def test_disabled_user_trying_su_is_told_once(system):
    """Three su tries for a disabled target: one notice to the administrator, one to the
    user (at most one a day), and the tries refused."""
    t = system.target
    with settings(admin_email=ADMIN, notify_admin="disabled", notify_user="disabled"):
        admin("user", "disable", t.name)
        try:
            mark = system.mailbox.mark()
            for _ in range(3):
                out, status = finish(su_start(system))
                assert status == 1 and "uid=" not in out, out
            system.assert_logged(t.name, "su", "deny", "disabled")
            found = quiet(system, mark)
            to_admin = notices(found, ADMIN, "user target is disabled and a login was tried on su")
            to_user = notices(found, t.email, "your account is disabled and a login was tried on su")
            assert len(to_admin) == 1 and len(to_user) == 1 and len(found) == 2, found
        finally:
            admin("user", "enable", t.name)


def test_fail_mode_notice_from_the_unit_after_a_sender_outage(system):
    """The sender down, fail_mode=safe: su lets target in on the password (logged
    unavailable-*); the unit's next run tells the administrator once, through the spool, so
    the mail goes out when the sender is back; a second run tells nobody again."""
    t = system.target
    with settings(admin_email=ADMIN, notify_admin="fail-mode", fail_mode="safe"):
        # Whatever earlier cases of the run left to tell is told first; then the notice
        # markers are put back two days, as if that was told the day before yesterday.
        admin("maintain")
        quiet(system, system.mailbox.mark(), secs=1)
        with contextlib.closing(sqlite3.connect(DATABASE, timeout=30)) as db, db:
            db.execute("UPDATE meta SET value = CAST(CAST(value AS INTEGER) - 172800 AS TEXT) "
                       "WHERE key IN ('fail_notice_unavailable', 'fail_notice_spool')")
        mark = system.mailbox.mark()
        system.stop_sender()
        try:
            child = su_start(system)
            i = child.expect([pexpect.EOF, PASSCODE_PROMPT, MENU_PROMPT])
            assert i == 0, f"sender down, fail_mode=safe: still asked\n{transcript(child)}"
            out = child.before
            child.close()
            status = child.exitstatus
            assert status == 0 and f"uid={t.uid}(" in out, out
            row = system.last_auth(t.name)
            assert row["outcome"].startswith("unavailable"), row
            p = as_the_unit(unit_values(UNIT, "ExecStart")[0].split())
            assert p.returncode == 0, p
            assert "told the administrator" in p.stdout, p.stdout
            assert any(os.listdir(f"{SPOOL}/new")), "the notice is not waiting in the spool"
        finally:
            system.start_sender()
        note = system.mailbox.wait_mail(ADMIN, mark)
        assert "could not be decided" in note, note
        p = as_the_unit(unit_values(UNIT, "ExecStart")[0].split())
        assert p.returncode == 0, p
        found = quiet(system, mark, secs=1)
        assert len([m for m in found if ADMIN in m[0]]) == 1, found


# ---- 9. a proof through `sudo mfa-admin verify` is no PAM service's repeat window -----------

SUDOERS_VERIFY = "/etc/sudoers.d/mfa-sys-verify"


def test_verify_through_sudo_leaves_no_grant_for_su(system):
    """An application (alice) allowed `sudo mfa-admin verify *` proves grantee's passcode;
    with repeat_window on, su to grantee from the same (local) address still asks for the
    second factor; a proven su then lets the next su through (the window works here). Through
    sudo, --service su is refused (exit 2) and leaves nothing either."""
    with contextlib.ExitStack() as undo:
        g = undo.enter_context(unix_user("grantee"))
        undo.callback(admin, "user", "del", g.name, check=False)
        admin("user", "add", g.name)
        admin("contact", "add", g.name, "--email", g.email)
        undo.enter_context(settings(repeat_window="10m"))
        undo.callback(lambda: os.path.exists(SUDOERS_VERIFY) and os.unlink(SUDOERS_VERIFY))
        with open(SUDOERS_VERIFY, "w") as f:
            f.write(f"alice ALL=(root) NOPASSWD: {SBIN}/mfa-admin verify *\n")
        os.chmod(SUDOERS_VERIFY, 0o440)

        from pexpect.popen_spawn import PopenSpawn

        def sudo_verify(*args):
            cmd = " ".join(shlex.quote(a) for a in ["sudo", "-n", f"{SBIN}/mfa-admin", "verify",
                                                     g.name, *args])
            return PopenSpawn(["setpriv", "--reuid", "alice", "--regid", "alice", "--init-groups",
                               "--", "sh", "-c", f"exec {cmd} 2>&1"], encoding="utf-8", timeout=40,
                              env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})

        child = sudo_verify("--service", "su")
        i = child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=10)
        if i == 1:
            child.proc.stdin.close()
            child.expect(pexpect.EOF)
        status = child.wait()
        assert i == 0 and status == 2, f"through sudo, --service su: exit {status}:\n{child.before}"
        mark = system.mailbox.mark()
        child = sudo_verify()
        child.expect(PASSCODE_PROMPT)
        child.sendline(system.mailbox.code(g.email, child.match.group(1), mark))
        child.expect(pexpect.EOF)
        assert child.wait() == 0, child.before
        system.assert_logged(g.name, "mfa-verify", "success")

        # su from the same machine: asked, whatever verify proved.
        out, status = su_passcode_login(system, g)
        assert status == 0 and f"uid={g.uid}(" in out, out
        # ... and su's own proof opens su's window: the next su asks nothing more.
        child = su_start(system, g)
        i = child.expect([pexpect.EOF, PASSCODE_PROMPT, MENU_PROMPT])
        out = child.before
        child.close()
        assert i == 0 and child.exitstatus == 0 and f"uid={g.uid}(" in out, \
            f"repeat_window=10m did not let the second su through:\n{out}"


# ---- 10. the sender as its unit runs it delivers passcodes and notices ----------------------

SENDER_UNIT = "/lib/systemd/system/mfa-sender.service"


def test_sender_unit_sandbox_delivers_passcodes_and_notices(system):
    """mfa-sender.service's ExecStart in the unit's sandbox (user mfa, no capabilities, its
    SystemCallFilter killing the process on any other call, /var/lib/mfa inaccessible, a
    read-only system but the spool and /run/mfa): a passcode and the lockout notices reach
    the mail server, and the sender is still running afterwards."""
    t = system.target
    exec_start = unit_values(SENDER_UNIT, "ExecStart")
    assert exec_start == [f"{SBIN}/mfa-sender --config /etc/mfa/mfa.toml"], exec_start
    logpath = os.path.join(WORK, "sender-unit.log")
    proc = None
    system.stop_sender()
    try:
        with open(logpath, "w") as log:
            proc = unit_sandbox(SENDER_UNIT, exec_start[0].split(), stdout=log, stderr=log)

        def beating():
            assert proc.poll() is None, \
                f"the sandboxed sender exited {proc.returncode}:\n{open(logpath).read()}"
            return os.path.exists("/run/mfa/sender.heartbeat")

        wait_for(beating, 20, "the sandboxed sender's heartbeat")
        # The process the test started is the sender itself, confined as the unit says.
        with open(f"/proc/{proc.pid}/status") as f:
            st = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        assert st["Name"].strip() == "mfa-sender", st["Name"]
        assert st["Uid"].split()[0] == str(pwd.getpwnam("mfa").pw_uid), st["Uid"]
        assert (st["Seccomp"].strip(), st["NoNewPrivs"].strip(), st["CapEff"].strip()) == \
            ("2", "1", "0000000000000000"), st
        with contextlib.ExitStack() as undo:
            # A user of its own: lockout notices go at most once an hour per user.
            u = undo.enter_context(unix_user("sbx"))
            undo.callback(admin, "user", "del", u.name, check=False)
            admin("user", "add", u.name)
            admin("contact", "add", u.name, "--email", u.email)
            out, status = su_passcode_login(system, u)
            assert status == 0 and f"uid={u.uid}(" in out, out
            undo.enter_context(settings(admin_email=ADMIN, notify_admin="lockout",
                                        notify_user="lockout", lockout_after="1"))
            mark = system.mailbox.mark()
            su_wrong_passcode(system, mark, u)
            assert "user sbx was locked out" in system.mailbox.wait_mail(ADMIN, mark)
            user_note = [m for m in quiet(system, mark, secs=0.5)
                         if u.email in m[0] and "your account was locked out" in m[1]]
            assert len(user_note) == 1, user_note
        assert proc.poll() is None, f"the sandboxed sender died:\n{open(logpath).read()}"
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        try:
            os.unlink("/run/mfa/sender.heartbeat")
        except FileNotFoundError:
            pass
        system.start_sender()
