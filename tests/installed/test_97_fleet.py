"""A fleet (issue 16) on the installed system: the installed host joins a throwaway PostgreSQL
as host `a` and runs mfa-fleetd as its unit runs it.

The module fixture starts a PostgreSQL cluster (pgcluster.py, its pg_hba.conf rewritten for a
role `mfa` with a password: scram-sha-256 over 127.0.0.1), writes the password file
/etc/mfa/store-password (0600 root), adds a [store] table to /etc/mfa/mfa.toml and runs
`mfa-admin migrate --to postgres URL`; a second host `b` (its own configuration, database and
spool under $MFA_WORK) joins with `mfa-admin fleet join`. Then mfa-fleetd.service's ExecStart
runs in a sandbox like its unit's (unitsandbox.py: root without any capability, its system
call filter, everything read-only but /var/lib/mfa, /run/mfa hidden), with a NOTIFY_SOCKET
of the test's own to see its readiness.

Checked: it reports ready, runs confined, writes its status file and reports to the central
store (`fleet status` lists host a); a user added through host b's mfa-admin reaches the
installed host's database and rewritten policy snapshot; every file under /var/lib/mfa is
root's and closed to others; doctor's fleet check is ok; with PostgreSQL stopped it keeps
running, doctor says the store is unreachable (warn) and su with a mailed passcode still
works; SIGTERM stops it with exit 0.

The fixture puts everything back, also on failure: mfa-fleetd stopped, PostgreSQL stopped and
removed, mfa.toml as before, /var/lib/mfa restored from its copy (the store before migrate),
the password file and host b gone.
"""

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time

import pexpect
import pytest

from harness import (CONFIG, PASSCODE_PROMPT, SBIN, WORK, admin, finish, run, spawn_as,
                     transcript, wait_for)
from pgcluster import Cluster
from unitsandbox import unit_sandbox, unit_values

UNIT = "/lib/systemd/system/mfa-fleetd.service"
STATE = "/var/lib/mfa"
DATABASE = f"{STATE}/mfa.db"
STATUS = f"{DATABASE}-fleet.json"
SNAPSHOT = f"{DATABASE}-policy"
PASSWORD_FILE = "/etc/mfa/store-password"
# Not under /tmp: the unit's PrivateTmp hides the test's /tmp from the daemon.
NOTIFY_DIR = "/run/mfa-fleet-test"


def store_table(url, host):
    return (f'\n[store]\nbackend = "postgres"\nurl = "{url}"\n'
            f'password_file = "{PASSWORD_FILE}"\nhost = "{host}"\npoll = "1s"\n')


def status_file():
    try:
        with open(STATUS) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def doctor_fleet(config=None):
    """doctor's fleet check: (status, detail)."""
    args = ["--config", config] if config else []
    p = admin(*args, "--json", "doctor", check=False)
    checks = json.loads(p.stdout)
    found = [c for c in checks if c["check"] == "fleet"]
    assert found, f"doctor has no fleet check:\n{p.stdout}{p.stderr}"
    return found[0]["status"], found[0]["detail"]


class Fleet:
    """What the fixture set up, and how to put it all back."""

    def __init__(self):
        self.saved_config = None
        self.saved_state = os.path.join(WORK, "fleet-saved-state")
        self.cluster = None
        self.b = os.path.join(WORK, "fleet-b")
        self.proc = None
        self.log = os.path.join(WORK, "fleetd.log")
        self.notify = None
        self.ready = []

    def up(self):
        with open(CONFIG) as f:
            self.saved_config = f.read()
        run("cp", "-a", STATE, self.saved_state)
        self.cluster = Cluster("mfa-fleet-unused")
        self.cluster.log = os.path.join(WORK, "postgres-fleet.log")
        self.cluster.start()
        hba = os.path.join(self.cluster.dir, "pg_hba.conf")
        with open(hba, "w") as f:
            f.write("local all postgres trust\nhost mfa mfa 127.0.0.1/32 scram-sha-256\n")
        self.cluster.sql("SELECT pg_reload_conf()")
        password = secrets.token_hex(16)
        self.cluster.sql(f"CREATE ROLE mfa LOGIN PASSWORD '{password}'")
        self.cluster.sql("CREATE DATABASE mfa OWNER mfa")
        fd = os.open(PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        self.url = f"postgresql://mfa@127.0.0.1:{self.cluster.port}/mfa"
        with open(CONFIG, "a") as f:
            f.write(store_table(self.url, "a"))
        out = admin("migrate", "--to", "postgres", self.url).stdout
        assert "first generation" in out, out
        # Host b: its own configuration, database, spool, joined to the same store.
        os.makedirs(os.path.join(self.b, "db"), mode=0o700)
        self.b_config = os.path.join(self.b, "mfa.toml")
        fd = os.open(self.b_config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f'[paths]\ndatabase = "{self.b}/db/mfa.db"\nspool = "{self.b}/spool"\n'
                    f'runtime = "{self.b}/run"\n[sender]\nuser = "nobody"\n'
                    + store_table(self.url, "b"))
        self.admin_b("init")
        self.admin_b("fleet", "join")
        self.start_fleetd()

    def admin_b(self, *args, check=True):
        return admin("--config", self.b_config, *args, check=check)

    def start_fleetd(self):
        exec_start = unit_values(UNIT, "ExecStart")
        assert exec_start == [f"{SBIN}/mfa-fleetd --config /etc/mfa/mfa.toml"], exec_start
        os.makedirs(NOTIFY_DIR, mode=0o700, exist_ok=True)
        path = os.path.join(NOTIFY_DIR, "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(path)
        self.notify.settimeout(0.2)
        with open(self.log, "w") as log:
            self.proc = unit_sandbox(UNIT, ["env", f"NOTIFY_SOCKET={path}", *exec_start[0].split()],
                                     stdout=log, stderr=log)

        def ready():
            assert self.proc.poll() is None, \
                f"the sandboxed mfa-fleetd exited {self.proc.returncode}:\n{self.log_text()}"
            try:
                self.ready.append(self.notify.recv(4096).decode())
            except socket.timeout:
                pass
            return any("READY=1" in m.split("\n") for m in self.ready)

        try:
            wait_for(ready, 30, "READY=1 from the sandboxed mfa-fleetd")
        except AssertionError as e:
            raise AssertionError(f"{e}; notifications {self.ready}; its log:\n{self.log_text()}")

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def stop_fleetd(self):
        """SIGTERM, as systemd stops it; its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def down(self):
        steps = [
            self.stop_fleetd,
            lambda: self.notify is not None and self.notify.close(),
            lambda: shutil.rmtree(NOTIFY_DIR, ignore_errors=True),
            lambda: self.cluster is not None and self.cluster.stop(),
            self.restore_config,
            self.restore_state,
            lambda: os.path.exists(PASSWORD_FILE) and os.unlink(PASSWORD_FILE),
            lambda: shutil.rmtree(self.b, ignore_errors=True),
        ]
        errors = []
        for step in steps:
            try:
                step()
            except Exception as e:  # every step runs; the first failure is raised after
                errors.append(e)
        if errors:
            raise errors[0]

    def restore_config(self):
        if self.saved_config is not None:
            with open(CONFIG, "w") as f:
                f.write(self.saved_config)

    def restore_state(self):
        if os.path.isdir(self.saved_state):
            shutil.rmtree(STATE)
            run("cp", "-a", self.saved_state, STATE)
            shutil.rmtree(self.saved_state)


@pytest.fixture(scope="module")
def fleet(system):
    f = Fleet()
    try:
        f.up()
        yield f
    finally:
        f.down()


def test_fleetd_starts_confined_and_reports(fleet):
    with open(f"/proc/{fleet.proc.pid}/status") as f:
        st = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
    assert st["Name"].strip() == "mfa-fleetd", st["Name"]
    assert st["Uid"].split()[0] == "0", st["Uid"]
    assert (st["Seccomp"].strip(), st["NoNewPrivs"].strip(), st["CapEff"].strip(),
            st["CapBnd"].strip()) == ("2", "1", "0000000000000000", "0000000000000000"), st
    s = status_file()
    assert s and s["host"] == "a" and s["connected"] and s["last_error"] == "", s
    def reported():
        p = admin("--json", "fleet", "status", check=False)
        hosts = {h["name"]: h for h in json.loads(p.stdout)["hosts"]} if p.stdout else {}
        return "a" in hosts and hosts["a"]["last_error"] == ""
    wait_for(reported, 15, "host a in `mfa-admin fleet status`")


def test_a_change_through_host_b_reaches_the_installed_host(fleet):
    before = os.stat(SNAPSHOT)
    gen = status_file()["generation"]
    p = fleet.admin_b("user", "add", "fleetu")
    assert "warning" not in p.stderr, p.stderr
    try:
        def arrived():
            return admin("user", "show", "fleetu", check=False).returncode == 0
        wait_for(arrived, 10, f"user fleetu from host b on the installed host (see {fleet.log})")
        after = os.stat(SNAPSHOT)
        assert (after.st_ino, after.st_mtime_ns) != (before.st_ino, before.st_mtime_ns), \
            "the policy snapshot was not rewritten"
        wait_for(lambda: status_file()["generation"] > gen, 10, "a newer generation in the status file")
    finally:
        fleet.admin_b("user", "del", "fleetu", check=False)
    wait_for(lambda: admin("user", "show", "fleetu", check=False).returncode != 0, 10,
             "the deletion from host b on the installed host")


def test_files_it_wrote_are_roots_and_private(fleet):
    wrong = []
    for top, dirs, files in os.walk(STATE):
        for n in dirs + files:
            p = os.path.join(top, n)
            st = os.lstat(p)
            if st.st_uid != 0 or stat.S_IMODE(st.st_mode) & 0o077:
                wrong.append(f"{p}: {oct(stat.S_IMODE(st.st_mode))} uid {st.st_uid}")
    assert not wrong, "\n".join(wrong)
    st = os.stat(STATUS)
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, 0)


def test_doctor_fleet_check_ok(fleet):
    status, detail = doctor_fleet()
    assert status == "ok" and "host a" in detail, detail


def su_with_passcode(system):
    t = system.target
    child = spawn_as("alice", ["su", t.name, "-c", "id"], "022")
    child.expect("Password: ")
    mark = system.mailbox.mark()
    child.sendline(t.password)
    i = child.expect([PASSCODE_PROMPT, pexpect.EOF])
    assert i == 0, transcript(child)
    child.sendline(system.mailbox.code(t.email, child.match.group(1), mark))
    return finish(child)


def test_store_down_doctor_warns_and_logins_work(fleet, system):
    fleet.cluster.halt()
    wait_for(lambda: not (status_file() or {}).get("connected", True), 20,
             f"the status file to say the store is unreachable (see {fleet.log})")
    status, detail = doctor_fleet()
    assert status == "warn" and "unreachable" in detail, detail
    out, code = su_with_passcode(system)
    assert code == 0 and f"uid={system.target.uid}(" in out, out
    assert fleet.proc.poll() is None, f"mfa-fleetd exited without its store:\n{fleet.log_text()}"


def test_sigterm_stops_it_with_exit_0(fleet):
    assert fleet.stop_fleetd() == 0, fleet.log_text()
