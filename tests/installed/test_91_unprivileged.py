"""One-password services whose server calls PAM as itself, not root (issue 12): a real
PostgreSQL (pgcluster.Cluster, `pam pamservice=postgresql`; the shipped etc/pam.d/postgresql
stack as `make install` or the package put it among the examples, plus pam_unix `nodelay`)
logs users in through pam_mfa, which as `postgres` reads nothing itself and asks the setuid
helper mfa-check, allowed by `[callers] postgres = ["postgresql"]` in /etc/mfa/mfa.toml.
Real psql clients over 127.0.0.1: PASSWORD,TOTP in the one field, the double logon, wrong
passwords and wrong codes, a caller taken out of [callers]; pamtester as `postgres` on the
same stack. Then the helper abused directly as `postgres` and as `nobody` (helperproto.py
speaks its frames): no secret readable, no other caller, service, configuration, argument or
environment honoured, hostile frames refused without a crash or a side effect, no signal or
/proc access from the caller once it runs, no secret in a reply.

pam_unix as `postgres` reads /etc/shadow only in group shadow (PostgreSQL's documented
workaround): the fixture adds it to the group in the namespace's copy of /etc (run.sh checks
the machine's /etc/group did not change) and takes it out again. Everything the module
fixture adds (users, rules, [callers], the pam.d file) it removes at the end, also on a
failure: the later files (test_1_install's doctor) see the install as they would without it.
"""

import grp
import gzip
import json
import os
import pwd
import re
import select
import shutil
import subprocess
import tempfile
import time

import pytest

import helperproto
from harness import CONFIG, EXAMPLES, MODE, REPO, User, admin, mode_owner, run, wrong
from pgcluster import Cluster

SERVICE = "postgresql"  # the shipped stack's name (pamservice=postgresql)
HELPER = "/usr/lib/mfa/mfa-check" if MODE == "deb" else "/usr/local/lib/mfa/mfa-check"
PAMD = f"/etc/pam.d/{SERVICE}"
SPOOL = "/var/spool/mfa"
PASSCODE = re.compile(r"\b[A-Z]-(\d{4,8})\b")


def as_user(user, argv, input=None, env=None, timeout=30):
    """argv with real and effective ids of `user` (its groups too), a minimal environment
    unless `env`; CompletedProcess (bytes when input is bytes)."""
    e = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    e.update(env or {})
    binary = isinstance(input, bytes)
    gid = str(pwd.getpwnam(user).pw_gid)  # (nobody's group is nogroup)
    return subprocess.run(["/usr/bin/setpriv", "--reuid", user, "--regid", gid, "--init-groups",
                           "--", *argv], input=input, capture_output=True, text=not binary,
                          env=e, timeout=timeout, cwd="/")


def spool_files():
    """Every message file in the spool (new, cur, tmp, failed)."""
    out = set()
    for d in ("new", "cur", "tmp", "failed"):
        try:
            out.update(f"{d}/{n}" for n in os.listdir(f"{SPOOL}/{d}"))
        except FileNotFoundError:
            pass
    return out


def peek_totp(u):
    """The code User.totp() gives next, without using it up (for logins that must be refused
    with a valid code: the next successful login can still use it)."""
    step = max(int(time.time()) // 30, u.totp_step + 1)
    return run("oathtool", "--totp", "-b", u.totp_key, "--now", f"@{step * 30}").stdout.strip()


def failures(name):
    return json.loads(admin("user", "show", name, "--json").stdout)


def auth_rows(name):
    return json.loads(admin("log", "show", "--user", name, "--json").stdout)


class Setup:
    """What the module's cases share: the users, the rules, [callers], the pam.d stack, the
    shadow group and the cluster; `down()` undoes each step that was done."""

    def __init__(self, system):
        self.system = system
        self.totp = User("pgtotp")  # an authenticator app, no contact: nothing can be sent
        self.mail = User("pgmail")  # an email contact: the double logon
        self.undo = []
        self.cluster = None
        self.config_text = None

    def up(self):
        # The edits below are to the namespace's copies; refuse to make them anywhere else.
        assert os.environ.get("MFA_WORK") and os.path.ismount("/etc"), \
            "not in run.sh's namespace (/etc is not a private copy): refusing to edit /etc"
        if MODE == "make":
            assert not os.path.exists("/usr/lib/mfa/mfa-check"), \
                "a package's /usr/lib/mfa/mfa-check is on this machine: pam_mfa would run it " \
                "instead of make install's (remove the package libpam-mfa first)"
        self.shadow()
        self.stack()
        self.callers()
        self.users()
        admin("service", "set", SERVICE, "any")
        self.undo.append(lambda: admin("service", "del", SERVICE, check=False))
        self.cluster = Cluster(SERVICE)
        self.undo.append(self.cluster.stop)
        self.cluster.start()
        for u in (self.totp, self.mail):
            self.cluster.sql(f'CREATE ROLE "{u.name}" LOGIN')

    def down(self):
        errors = []
        for step in reversed(self.undo):
            try:
                step()
            except Exception as e:  # every step runs; the first errors are reported
                errors.append(repr(e))
        assert not errors, "undoing the set-up failed:\n" + "\n".join(errors)

    def shadow(self):
        """postgres in group shadow (pam_unix reads /etc/shadow itself as postgres)."""
        if "postgres" in grp.getgrnam("shadow").gr_mem:
            return
        run("usermod", "-a", "-G", "shadow", "postgres")
        self.undo.append(lambda: run("gpasswd", "-d", "postgres", "shadow"))

    def stack(self):
        """The shipped stack, from where the install put the examples (the source tree's
        copy if the install has none: an older build)."""
        src = f"{EXAMPLES}/pam.d/{SERVICE}"
        if os.path.exists(src + ".gz"):  # dh_compress in the package
            with gzip.open(src + ".gz", "rt") as f:
                text = f.read()
        else:
            if not os.path.exists(src):
                src = f"{REPO}/etc/pam.d/{SERVICE}"
            with open(src) as f:
                text = f.read()
        assert re.search(r"(?m)^auth\s.*pam_mfa\.so\s+oneword=before", text) and \
            re.search(r"(?m)^auth\s.*pam_mfa\.so\s+oneword=after", text), f"{src}:\n{text}"
        # pam_unix's 2 s delay after a failure would make this file slow (a dozen refusals):
        # `nodelay` on its line is the only change to the shipped stack.
        text, n = re.subn(r"(?m)^(auth\s+requisite\s+pam_unix\.so\b.*)$", r"\1 nodelay", text)
        assert n == 1, f"{src}: no `auth requisite pam_unix.so` line:\n{text}"
        old = open(PAMD).read() if os.path.exists(PAMD) else None
        with open(PAMD, "w") as f:
            f.write(text)
        self.undo.append(lambda: self.restore(PAMD, old))

    @staticmethod
    def restore(path, text):
        if text is None:
            os.unlink(path)
        else:
            with open(path, "w") as f:
                f.write(text)

    def callers(self):
        with open(CONFIG) as f:
            self.config_text = f.read()
        self.undo.append(lambda: self.restore(CONFIG, self.config_text))
        self.set_callers({"postgres": [SERVICE]})

    def set_callers(self, table):
        """[callers] of the original configuration replaced by `table` (None: no table)."""
        kept, inside = [], False
        for line in self.config_text.splitlines(keepends=True):
            if line.lstrip().startswith("["):  # a table header ends the previous table
                inside = line.strip() == "[callers]"
            if not inside:
                kept.append(line)
        text = "".join(kept)
        if table is not None:
            text += "\n[callers]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items())
        with open(CONFIG, "w") as f:
            f.write(text)

    def users(self):
        for u in (self.totp, self.mail):
            run("useradd", "--no-create-home", "--shell", "/bin/bash", u.name)
            self.undo.append(lambda u=u: run("userdel", "-f", u.name))
            run("chpasswd", input=f"{u.name}:{u.password}\n")
            admin("user", "add", u.name)
            self.undo.append(lambda u=u: admin("user", "del", u.name, check=False))
        admin("contact", "add", self.mail.name, "--email", self.mail.email)
        self.totp.totp_key = json.loads(admin("totp", "enroll", self.totp.name, "--json").stdout)["key"]

    # ---- what the cases use -----------------------------------------------------------
    def psql(self, user, password):
        return self.cluster.psql(user.name, password)

    def why(self, out, user=None):
        """Context for a failed assertion: psql's words, the server's log, the auth log."""
        rows = auth_rows(user.name)[-3:] if user else []
        return f"{out}\n{self.cluster.log_tail()}\nauth log: {rows}\n{self.system.logs()}"

    def passcode(self, user, mark):
        text = self.system.mailbox.wait_mail(user.email, mark)
        hit = PASSCODE.search(text)
        assert hit, f"no passcode in the mail to {user.email}:\n{text}"
        return hit.group(1)

    def assert_nothing_sent(self, user, mark):
        """No message for `user` since `mark`: a test message queued now (after anything the
        case queued) arrives first, nothing is left in the spool, and it is the only mail
        to them since the mark."""
        admin("test", user.name)
        first = self.system.mailbox.wait_mail(user.email, mark)
        assert "Test message from mfa" in first and not PASSCODE.search(first), \
            f"a passcode was sent to {user.email}:\n{first}"
        # Whatever was queued before the test message has left the spool by now, or is
        # still on its way (new/, cur/): wait for that, then count the mails.
        in_flight = lambda: {f for f in spool_files() if not f.startswith("failed/")}
        deadline = time.monotonic() + 15
        while in_flight() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not in_flight(), f"messages stuck in the spool: {in_flight()}"
        mails = [m for m in self.system.mailbox._mails()[mark[0]:] if user.email in m["rcpt"]]
        assert len(mails) == 1, f"{len(mails)} mails to {user.email}, want only the test message"


@pytest.fixture(scope="module")
def pg(system):
    s = Setup(system)
    try:
        s.up()
        yield s
    finally:
        s.down()


# ---- PostgreSQL with psql ------------------------------------------------------------------
def test_helper_installed_setuid_root(pg):
    assert mode_owner(HELPER) == (0o4755, "root", "root")


def test_password_and_totp_in_one_field(pg):
    u = pg.totp
    ok, out = pg.psql(u, f"{u.password},{u.totp()}")
    assert ok, pg.why(out, u)
    pg.system.assert_logged(u.name, SERVICE, "success")


def test_plain_password_refused_for_a_totp_user(pg):
    u = pg.totp
    before = spool_files()
    ok, out = pg.psql(u, u.password)
    assert not ok and "PAM authentication failed" in out, pg.why(out, u)
    pg.system.assert_logged(u.name, SERVICE, "deny", "code must follow the password")
    assert spool_files() == before


def test_double_logon(pg):
    u = pg.mail
    mark = pg.system.mailbox.mark()
    ok, out = pg.psql(u, u.password)
    assert not ok, pg.why(out, u)
    pg.system.assert_logged(u.name, SERVICE, "deny", "double logon")
    code = pg.passcode(u, mark)
    ok, out = pg.psql(u, code)
    assert ok, "the passcode as the password: " + pg.why(out, u)
    pg.system.assert_logged(u.name, SERVICE, "success")
    ok, out = pg.psql(u, code)
    assert not ok, "the passcode used twice: " + pg.why(out, u)
    # A wrong passcode (attempts=1: the suite's setting) is refused and costs one failure.
    mark = pg.system.mailbox.mark()
    ok, out = pg.psql(u, u.password)
    assert not ok, pg.why(out, u)
    code = pg.passcode(u, mark)
    f0 = failures(u.name)["failures"]
    ok, out = pg.psql(u, wrong(code))
    assert not ok, "a wrong passcode logged in: " + pg.why(out, u)
    assert failures(u.name)["failures"] == f0 + 1
    admin("user", "unlock", u.name)


def test_duo_through_the_helper(pg, duo):
    """Method duo on PostgreSQL: the module runs as postgres, so the setuid helper (root)
    asks the broker. A Duo passcode after the password is checked once; the password alone
    pushes to the user's phone and waits for the answer."""
    from test_95_duo import duo_users, service_method
    u = pg.mail
    with service_method(SERVICE, "duo"), \
            duo_users(duo, **{u.name: {"passcodes": ["864200"]}}):
        n = len(duo.requests())
        ok, out = pg.psql(u, f"{u.password},864200")
        assert ok, "password,Duo passcode: " + pg.why(out, u)
        r = pg.system.last_auth(u.name)
        assert (r["service"], r["outcome"], r["method"]) == (SERVICE, "success", "duo-passcode"), r
        ok, out = pg.psql(u, f"{u.password},864201")
        assert not ok, "a wrong Duo passcode logged in: " + pg.why(out, u)
        pg.system.assert_logged(u.name, SERVICE, "deny")
        ok, out = pg.psql(u, u.password)
        assert ok, "the password alone, the push approved: " + pg.why(out, u)
        r = pg.system.last_auth(u.name)
        assert (r["outcome"], r["method"]) == ("success", "duo-push"), r
        asked = [q for q in duo.requests()[n:] if q["path"] == "/auth/v2/auth"]
        assert [q["params"]["factor"] for q in asked] == ["passcode", "passcode", "push"], asked
        assert all(q["sig"] == "sha512" for q in asked), asked
    admin("user", "unlock", u.name)


def test_wrong_password_sends_nothing(pg):
    u = pg.mail
    f0 = failures(u.name)["failures"]
    mark = pg.system.mailbox.mark()
    for pw in ("not-the-password", "not-the-password,123456", u.password + "x"):
        ok, out = pg.psql(u, pw)
        assert not ok, pg.why(out, u)
    pg.assert_nothing_sent(u, mark)
    assert failures(u.name)["failures"] == f0, "a wrong password counted toward the lockout"


def test_n_wrong_codes_cost_n_failures_then_the_lockout(pg):
    u = pg.totp
    admin("user", "unlock", u.name)
    admin("settings", "set", "lockout_after=3")
    try:
        for n in range(1, 4):
            ok, out = pg.psql(u, f"{u.password},{u.wrong_totp()}")
            assert not ok, pg.why(out, u)
            shown = failures(u.name)
            assert shown["failures"] == n, f"after {n} wrong codes: {shown}\n{pg.why(out, u)}"
            assert (shown["locked_until"] > time.time()) == (n == 3), f"after {n} wrong codes: {shown}"
        # Locked out: the right code is refused too (and not used up).
        ok, out = pg.psql(u, f"{u.password},{peek_totp(u)}")
        assert not ok, "locked out, yet logged in: " + pg.why(out, u)
        admin("user", "unlock", u.name)
        ok, out = pg.psql(u, f"{u.password},{u.totp()}")
        assert ok, pg.why(out, u)
        assert failures(u.name)["failures"] == 0
    finally:
        admin("settings", "reset", "lockout_after")
        admin("user", "unlock", u.name)


def test_caller_not_in_callers_refused_nothing_sent(pg):
    settings = {s["key"]: s["value"] for s in json.loads(admin("settings", "show", "--json").stdout)}
    assert settings["fail_mode"] == "secure", settings
    u = pg.mail
    rows = len(auth_rows(u.name))
    try:
        pg.set_callers({"nobody": [SERVICE]})
        mark = pg.system.mailbox.mark()
        ok, out = pg.psql(u, u.password)
        assert not ok, pg.why(out, u)
        ok, out = pg.psql(pg.totp, f"{pg.totp.password},{peek_totp(pg.totp)}")
        assert not ok, "a valid code, but postgres is no caller: " + pg.why(out, pg.totp)
        pg.set_callers(None)  # no table at all
        ok, out = pg.psql(u, u.password)
        assert not ok, pg.why(out, u)
    finally:
        pg.set_callers({"postgres": [SERVICE]})
    pg.assert_nothing_sent(u, mark)
    assert len(auth_rows(u.name)) == rows, "the refused caller's logins reached the rules"
    # Listed again: the same login works (the refusal was the table's doing).
    ok, out = pg.psql(pg.totp, f"{pg.totp.password},{pg.totp.totp()}")
    assert ok, pg.why(out, pg.totp)


def test_pamtester_as_postgres(pg):
    """The cheap path without a database: pamtester run as postgres on the same stack."""
    assert shutil.which("pamtester"), "pamtester is not installed: apt-get install pamtester"
    u = pg.totp

    def pamtester(password):
        return as_user("postgres", ["pamtester", "-v", "-I", "rhost=127.0.0.1", SERVICE, u.name,
                                    "authenticate"], input=password + "\n")

    p = pamtester(f"{u.password},{u.totp()}")
    assert p.returncode == 0 and "successfully authenticated" in p.stdout + p.stderr, p.stdout + p.stderr
    pg.system.assert_logged(u.name, SERVICE, "success")
    p = pamtester(u.password)
    assert p.returncode != 0, p.stdout + p.stderr
    p = pamtester(f"wrong-password,{peek_totp(u)}")
    assert p.returncode != 0, p.stdout + p.stderr


# ---- the helper abused: as postgres (an allowed caller) and as nobody ----------------------
def helper(account, stdin, args=(), env=None, timeout=30):
    """mfa-check run by `account` with `stdin` (bytes); (CompletedProcess, its frames)."""
    p = as_user(account, [HELPER, *args], input=stdin, env=env, timeout=timeout)
    return p, helperproto.Reader(p.stdout).frames()


def assert_no_crash(p, what):
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode >= 0 and p.returncode != 101 and "panicked" not in err, \
        f"{what}: mfa-check exited {p.returncode} (a signal or a panic):\n{err}"


def assert_refused(p, frames, what):
    """Nothing but a refusal: no prompt, no outcome, no split."""
    assert_no_crash(p, what)
    # mfa-check says why in a Refused frame (the channel is open here), and exits non-zero.
    assert frames and all(f[0] == "refused" for f in frames) and p.returncode != 0, \
        f"{what}: mfa-check answered {frames} (exit {p.returncode}), want a refusal\n" \
        + p.stderr.decode("utf-8", "replace")


def lib_files():
    """Every file under /var/lib/mfa with its size and modification time (read before any
    mfa-admin command, which moves the auth-log inbox into the database)."""
    out = {}
    for d, _, names in os.walk("/var/lib/mfa"):
        for n in names:
            st = os.stat(os.path.join(d, n))
            out[os.path.join(d, n)] = (st.st_size, st.st_mtime_ns)
    return out


class NoSideEffect:
    """Around a block: nothing under /var/lib/mfa or in the spool changed, no mail went to
    pgmail, no auth-log row or failure was added for pgmail or pgtotp."""

    def __init__(self, pg):
        self.pg = pg

    def __enter__(self):
        self.counts = self.admin_view()
        self.mark = self.pg.system.mailbox.mark()
        self.spool = spool_files()
        self.files = lib_files()
        return self

    def admin_view(self):
        return {u.name: (failures(u.name)["failures"], len(auth_rows(u.name)))
                for u in (self.pg.totp, self.pg.mail)}

    def __exit__(self, kind, *_):
        if kind is not None:
            return False
        assert lib_files() == self.files, "mfa-check changed files under /var/lib/mfa"
        assert spool_files() == self.spool, "mfa-check queued a message"
        assert self.admin_view() == self.counts, "mfa-check counted a failure or logged a login"
        self.pg.assert_nothing_sent(self.pg.mail, self.mark)
        return False


def test_postgres_reads_no_secret(pg):
    # A double logon's first half first (asked of the helper as the module would after the
    # password), so that a challenge, a user's state file and a message exist.
    u = pg.mail
    mark = pg.system.mailbox.mark()
    p, frames = helper("postgres", helperproto.ask("after", SERVICE, u.name))
    # The caller learns the outcome, not why (the helper logs the reason itself); the mail
    # below proves the passcode went out.
    assert frames and frames[-1][:3] == ("outcome", "deny", "decided by mfa-check: see its log line"), frames
    code = pg.passcode(u, mark)
    paths = ["/etc/mfa/mfa.toml", "/var/lib/mfa", f"{SPOOL}/new", f"{SPOOL}/cur", f"{SPOOL}/tmp",
             f"{SPOOL}/failed"]
    for top in ("/var/lib/mfa", "/etc/mfa"):
        for d, dirs, names in os.walk(top):
            paths += [os.path.join(d, n) for n in (dirs + names if top != "/etc/mfa" else names)]
    for d in ("new", "cur", "failed"):
        paths += [f"{SPOOL}/{d}/{n}" for n in os.listdir(f"{SPOOL}/{d}")]
    assert any(p.endswith("mfa.db-policy") for p in paths), paths
    script = """if True:
        import json, os, sys
        r = {}
        for p in sys.argv[1:]:
            try:
                r[p] = os.listdir(p) if os.path.isdir(p) else open(p, "rb").read(64).hex()
            except OSError as e:
                r[p] = e.errno
        print(json.dumps(r))
    """
    for account in ("postgres", "nobody"):
        p = as_user(account, ["/usr/bin/python3", "-c", script, *paths])
        assert p.returncode == 0, p.stderr
        got = json.loads(p.stdout)
        readable = {k: v for k, v in got.items() if v != 13 and v != 2}  # EACCES; ENOENT: gone since
        assert not readable, f"{account} could read: {readable}"
        assert code not in p.stdout
    # The passcode still works (the second login: the code alone in the field), once:
    # reading nothing, postgres disturbed nothing.
    p, frames = helper("postgres", helperproto.ask("before", SERVICE, u.name, secret=code))
    assert frames and frames[-1][:3] == ("before", "success", "success"), frames
    p, frames = helper("postgres", helperproto.ask("before", SERVICE, u.name, secret=code))
    assert frames and frames[-1][:2] != ("before", "success"), f"the passcode used twice: {frames}"


def test_nobody_is_refused_without_side_effect(pg):
    evil = tempfile.mkdtemp(prefix="mfa-evil-", dir="/run")
    try:
        os.chmod(evil, 0o755)
        with open(f"{evil}/mfa.toml", "w") as f:  # lists nobody; its paths lead nowhere real
            f.write(f'[paths]\ndatabase = "{evil}/db/mfa.db"\nspool = "{evil}/spool"\n'
                    f'runtime = "{evil}/run"\n\n[callers]\nnobody = ["{SERVICE}", "sshd"]\n')
        os.chmod(f"{evil}/mfa.toml", 0o644)
        with NoSideEffect(pg):
            for env, args in (({}, ()), ({"MFA_CONFIG": f"{evil}/mfa.toml"}, ()),
                              ({}, ("--config", f"{evil}/mfa.toml"))):
                for a in (helperproto.ask("after", SERVICE, pg.mail.name),
                          helperproto.ask("plain", SERVICE, pg.mail.name),
                          helperproto.ask("before", SERVICE, pg.totp.name,
                                          secret=f"{pg.totp.password},{peek_totp(pg.totp)}")):
                    p, frames = helper("nobody", a, args=args, env=env)
                    assert_refused(p, frames, f"nobody, env {env}, args {args}")
                    if not args:  # refused for who it is, not for a malformed ask
                        assert "[callers]" in frames[-1][1], frames
        assert os.listdir(evil) == ["mfa.toml"], os.listdir(evil)
    finally:
        shutil.rmtree(evil, ignore_errors=True)


def test_postgres_cannot_ask_for_other_services(pg):
    u = pg.mail
    with NoSideEffect(pg):
        for service in ("sshd", "sudo", "login", "POSTGRESQL", "postgresql ", " postgresql",
                        "postgresql\n", "postgres", "*", "", "postgresql,sshd"):
            for a in (helperproto.ask("after", service, u.name),
                      helperproto.ask("plain", service, u.name)):
                p, frames = helper("postgres", a)
                assert_refused(p, frames, f"postgres asking about service {service!r}")
                assert "[callers]" in frames[-1][1], frames


def test_environment_and_arguments_ignored_under_setuid(pg):
    """MFA_CONFIG, hostile variables and arguments change nothing: an ask for a service the
    real [callers] does not list stays refused (the evil file lists it), a legitimate ask
    still gets the real rules' answer, and the evil paths stay untouched."""
    evil = tempfile.mkdtemp(prefix="mfa-evil-", dir="/run")
    try:
        os.chmod(evil, 0o755)
        with open(f"{evil}/mfa.toml", "w") as f:
            f.write(f'[paths]\ndatabase = "{evil}/db/mfa.db"\nspool = "{evil}/spool"\n'
                    f'runtime = "{evil}/run"\n\n[callers]\npostgres = ["{SERVICE}", "sshd"]\n')
        os.chmod(f"{evil}/mfa.toml", 0o644)
        hostile = {"MFA_CONFIG": f"{evil}/mfa.toml", "RUST_BACKTRACE": "full", "RUST_LOG": "trace",
                   "RUST_MIN_STACK": "1", "LD_PRELOAD": f"{evil}/x.so", "LD_LIBRARY_PATH": evil,
                   "TMPDIR": evil, "HOME": evil, "PATH": evil, "IFS": "/", "TZ": f"{evil}/tz",
                   "LANG": "xx_XX.EVIL", "MALLOC_CHECK_": "3", "SQLITE_TMPDIR": evil}
        argvs = [(), ("--config", f"{evil}/mfa.toml"), (f"--config={evil}/mfa.toml",),
                 (f"{evil}/mfa.toml",), ("-c", f"{evil}/mfa.toml"), ("--help",), ("-x" * 5000,)]
        with NoSideEffect(pg):
            for args in argvs:
                p, frames = helper("postgres", helperproto.ask("after", "sshd", pg.mail.name),
                                   args=args, env=hostile)
                assert_refused(p, frames, f"sshd with MFA_CONFIG and args {args[:2]}")
        # A legitimate ask under the same environment: the real rules answer (a right code
        # is a success, which the evil file's empty database could not give).
        u = pg.totp
        p, frames = helper("postgres", helperproto.ask("after", SERVICE, u.name, secret=u.totp()),
                           env=hostile)
        assert_no_crash(p, "a legitimate ask with a hostile environment")
        assert frames and frames[-1][:2] == ("outcome", "success"), (frames, p.stderr)
        assert os.listdir(evil) == ["mfa.toml"], os.listdir(evil)
    finally:
        shutil.rmtree(evil, ignore_errors=True)


ASK = helperproto.ask("after", SERVICE, "pgmail")  # a well-formed ask, to spoil
HOSTILE_STDIN = {
    "empty": b"",
    "garbage": bytes(range(256)) * 16,
    "a header only": b"R\0\0",
    "truncated ask": ASK[:-7],
    "length beyond the payload": b"R" + (500).to_bytes(4, "big") + b"\1\2\0," + b"x" * 20,
    "oversized length": b"R\xff\xff\xff\xff" + b"x" * 64,
    "one byte over the bound": b"R" + (helperproto.MAX_FRAME + 1).to_bytes(4, "big")
                               + b"\0" * (helperproto.MAX_FRAME + 1),
    "8 MiB of frames": helperproto.frame(b"R", b"\0" * 16000) * 512,
    "unknown tag": helperproto.frame(b"Z", b"hello"),
    "an answer first": helperproto.answer("123456"),
    "an outcome first": helperproto.frame(b"O", b"\0" + b"\0\0" * 3),
    "wrong version": helperproto.ask("after", SERVICE, "pgmail", version=99),
    "unknown mode": ASK[:6] + b"\7" + ASK[7:],
    "bad separator": helperproto.ask("after", SERVICE, "pgmail", sep=b"-"),
    "NUL in the user": helperproto.ask("after", SERVICE, "pg\0mail"),
    "user not UTF-8": helperproto.ask("after", SERVICE, b"pg\xffmail"),
    "name over the bound": helperproto.ask("after", SERVICE, "u" * 1025),
    "secret over the bound": helperproto.ask("after", SERVICE, "pgmail", secret="1" * 5000),
    "stray bytes in the ask": helperproto.frame(b"R", ASK[5:] + b"!"),
    "plain with a secret": helperproto.ask("plain", SERVICE, "pgmail", secret="123456"),
    "before without the field": helperproto.ask("before", SERVICE, "pgmail"),
}


@pytest.mark.parametrize("case", HOSTILE_STDIN)
def test_hostile_frames_refused(pg, case):
    with NoSideEffect(pg):
        p, frames = helper("postgres", HOSTILE_STDIN[case], timeout=60)
        assert_refused(p, frames, case)


def test_caller_cannot_signal_or_inspect_the_helper(pg):
    """While mfa-check waits on a prompt's answer, the caller (postgres) can neither signal
    it nor read its memory or environment: it runs fully as root."""
    u = pg.totp
    proc = subprocess.Popen(["setpriv", "--reuid", "postgres", "--regid", "postgres",
                             "--init-groups", "--", HELPER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={"PATH": "/usr/bin:/bin", "SECRET_MARK": "not-for-postgres"})
    try:
        proc.stdin.write(helperproto.ask("plain", SERVICE, u.name))
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "mfa-check sent no prompt within 20 s"
        head = proc.stdout.read(5)
        assert len(head) == 5 and head[:1] in (b"P", b"p"), f"want a prompt, got {head!r}"
        proc.stdout.read(int.from_bytes(head[1:], "big"))
        with open(f"/proc/{proc.pid}/status") as f:
            ids = {l.split(":")[0]: l.split()[1:] for l in f if l.startswith(("Uid:", "Gid:"))}
        assert ids["Uid"] == ["0"] * 4, f"the helper is not fully root while it waits: {ids}"
        script = """if True:
            import json, os, sys
            pid, out = int(sys.argv[1]), []
            for sig in (15, 9, 19, 0):  # TERM, KILL, STOP, and 0: may we signal at all
                try:
                    os.kill(pid, sig)
                    out.append("sent")
                except OSError as e:
                    out.append(e.errno)
            for what in ("environ", "mem", "fd"):
                try:
                    path = f"/proc/{pid}/{what}"
                    os.listdir(path) if what == "fd" else open(path, "rb").read(16)
                    out.append("read")
                except OSError as e:
                    out.append(e.errno)
            print(json.dumps(out))
        """
        p = as_user("postgres", ["/usr/bin/python3", "-c", script, str(proc.pid)])
        assert p.returncode == 0, p.stderr
        got = json.loads(p.stdout)
        assert got[:4] == [1, 1, 1, 1], f"postgres signalled the helper (EPERM wanted): {got}"
        assert got[4:] == [13, 13, 13], f"postgres read the helper's /proc (EACCES wanted): {got}"
        assert proc.poll() is None, "the helper died"
        # The conversation fails (the client hung up): the helper ends with a refusal.
        proc.stdin.write(helperproto.CONV_FAILED)
        proc.stdin.close()
        rest = proc.stdout.read()
        proc.wait(timeout=20)
        frames = helperproto.Reader(rest).frames()
        assert frames and frames[-1][0] in ("outcome", "refused") and frames[-1][1] != "success", frames
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_reply_carries_no_secret(pg):
    """A double logon asked for directly: the reply says a passcode went out (masked), never
    the passcode, the address or the key."""
    u = pg.mail
    mark = pg.system.mailbox.mark()
    p, frames = helper("postgres", helperproto.ask("after", SERVICE, u.name))
    assert_no_crash(p, "after without a code")
    assert len(frames) == 1 and frames[0][:2] == ("outcome", "deny"), frames
    code = pg.passcode(u, mark)
    raw = p.stdout + p.stderr
    for secret in (code, u.email, u.password):
        assert secret.encode() not in raw, f"the reply shows {secret!r}: {raw!r}"
    # The right TOTP code: one outcome frame, a success, nothing else.
    t = pg.totp
    p, frames = helper("postgres", helperproto.ask("after", SERVICE, t.name, secret=t.totp()))
    assert frames == [frames[0]] and frames[0][:2] == ("outcome", "success"), frames
    assert t.totp_key.encode() not in p.stdout + p.stderr


def test_refusal_quotes_nothing_of_a_broken_configuration(pg):
    """/etc/mfa/mfa.toml is root:mfa 0640: when it does not parse, the refusal a caller gets
    (postgres, or nobody) must not quote what is in it."""
    marker = "k3pt-pr1vate-" + os.urandom(6).hex()
    try:
        with open(CONFIG, "a") as f:
            f.write(f'\n[smtp]\nusername = "{marker}\n')  # an unterminated string
        for account in ("postgres", "nobody"):
            p, frames = helper(account, helperproto.ask("after", SERVICE, pg.mail.name))
            assert_refused(p, frames, f"{account}, a broken configuration")
            assert marker.encode() not in p.stdout + p.stderr, (account, frames)
    finally:
        pg.set_callers({"postgres": [SERVICE]})


DODGES = {
    "RLIMIT_FSIZE=0": ["--fsize=0"],  # the state file's write cut short
    "RLIMIT_NOFILE=5": ["--nofile=5"],  # the store not opened
    "RLIMIT_CPU=1": ["--cpu=1"],
    "the reply unread (hang-up)": [],
}


@pytest.mark.parametrize("case", DODGES)
def test_caller_limits_or_hang_up_do_not_dodge_the_count(pg, case):
    """A wrong code asked for under resource limits the caller set, or with the reply
    channel closed, still costs exactly one failure and never succeeds or crashes."""
    u = pg.totp
    admin("user", "unlock", u.name)
    cmd = ["/usr/bin/setpriv", "--reuid", "postgres", "--regid", "postgres", "--init-groups", "--",
           HELPER]
    if DODGES[case]:
        cmd = ["prlimit", *DODGES[case], "--", *cmd]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"})
    if not DODGES[case]:
        proc.stdout.close()
    try:
        proc.stdin.write(helperproto.ask("after", SERVICE, u.name, secret=u.wrong_totp()))
        proc.stdin.close()
        rc = proc.wait(timeout=30)
        out = b"" if proc.stdout.closed else proc.stdout.read()
        err = proc.stderr.read().decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc >= 0 and rc != 101 and "panicked" not in err, f"{case}: exit {rc}\n{err}"
    frames = helperproto.Reader(out).frames()
    counted = failures(u.name)["failures"]
    admin("user", "unlock", u.name)
    if DODGES[case] and frames and frames[-1][0] == "refused":
        # A helper that cannot undo the limit (no CAP_SYS_RESOURCE: some containers) must
        # refuse before it decides anything: then nothing was evaluated, nothing counted.
        assert rc != 0 and counted == 0, (case, frames, counted)
        return
    if DODGES[case]:
        assert frames and frames[-1][:2] == ("outcome", "deny"), (case, frames, err)
    assert counted == 1, f"{case}: the wrong code was evaluated (deny) but counted {counted} times " \
        "(a caller could guess codes without ever reaching the lockout)"


def test_a_silent_caller_holds_no_helper(pg):
    """A caller that opens the helper and says nothing (or half an ask) does not keep a
    process: it gives up within mfa_core::helper::ASK_DEADLINE (10 s) with a refusal."""
    cmd = ["/usr/bin/setpriv", "--reuid", "postgres", "--regid", "postgres", "--init-groups", "--",
           HELPER]
    with NoSideEffect(pg):
        procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"})
                 for _ in range(2)]
        try:
            procs[1].stdin.write(ASK[:9])  # half an ask, then silence
            procs[1].stdin.flush()
            started = time.monotonic()
            for proc in procs:
                proc.wait(timeout=30)  # (stdin stays open: silence, not an end of input)
                out, err = proc.stdout.read(), proc.stderr.read()
                frames = helperproto.Reader(out).frames()
                assert proc.returncode not in (0, 101) and proc.returncode > 0, (proc.returncode, err)
                assert frames and frames[-1][0] == "refused", (frames, err)
            assert time.monotonic() - started < 25
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
