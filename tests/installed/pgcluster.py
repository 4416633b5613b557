"""A throwaway PostgreSQL cluster for the installed-system suite (test_91_unprivileged).

initdb as user `postgres` into a 0700 directory under /run (the namespace's tmpfs: nothing
of it reaches the machine), a server listening on 127.0.0.1 at a free port with its unix
socket in that directory, and a pg_hba.conf of two lines: `local all postgres trust` (the
suite's own superuser set-up, over the socket only root and postgres can reach) and
`host all all 127.0.0.1/32 pam pamservice=<service>` (every TCP login goes through PAM,
which the server calls as `postgres`). The server runs in the foreground under
`unshare --ipc` (its System V segment dies with it, even when the PID namespace is killed)
with dynamic shared memory in its data directory (nothing in /dev/shm).
`psql()` logs in the way a user does: host 127.0.0.1, the password in PGPASSWORD.
"""

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import WORK, free_port, run, wait_for

OWNER = "postgres"


def bindir():
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/N/bin)."""
    found = glob.glob("/usr/lib/postgresql/*/bin/postgres")
    if not found:
        raise AssertionError("PostgreSQL is not installed: apt-get install postgresql "
                             "(the one-password cases start their own throwaway cluster)")
    return os.path.dirname(max(found, key=lambda p: int(re.sub(r"\D", "", p.split("/")[4]) or 0)))


def as_owner(*argv):
    """argv as user postgres with its groups (setpriv, as the unit would run the server)."""
    return ["setpriv", "--reuid", OWNER, "--regid", OWNER, "--init-groups", "--", *argv]


class Cluster:
    def __init__(self, pam_service):
        self.pam_service = pam_service
        self.bin = bindir()
        self.dir = None
        self.port = None
        self.proc = None
        self.log = os.path.join(WORK, "postgres.log")

    def start(self):
        pw = pwd.getpwnam(OWNER)
        self.dir = tempfile.mkdtemp(prefix="mfa-pg-", dir="/run")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        data = os.path.join(self.dir, "data")
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": self.dir}
        p = subprocess.run(as_owner(f"{self.bin}/initdb", "-D", data, "-U", OWNER, "--auth=trust",
                                    "--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C"),
                           capture_output=True, text=True, cwd=self.dir, env=env)
        assert p.returncode == 0, f"initdb as {OWNER} failed:\n{p.stdout}{p.stderr}"
        hba = os.path.join(self.dir, "pg_hba.conf")
        with open(hba, "w") as f:
            f.write("local all postgres trust\n"
                    f"host all all 127.0.0.1/32 pam pamservice={self.pam_service}\n")
        os.chown(hba, pw.pw_uid, pw.pw_gid)
        for _ in range(5):
            self.port = free_port()
            with open(self.log, "w") as log:  # (the server keeps its own descriptor)
                self.proc = subprocess.Popen(
                    ["unshare", "--ipc", *as_owner(
                        f"{self.bin}/postgres", "-D", data, "-c", f"port={self.port}",
                        "-c", "listen_addresses=127.0.0.1",
                        "-c", f"unix_socket_directories={self.dir}", "-c", f"hba_file={hba}",
                        "-c", "dynamic_shared_memory_type=mmap", "-c", "fsync=off",
                        "-c", "logging_collector=off", "-c", "max_connections=20",
                        "-c", "shared_buffers=16MB", "-c", "log_connections=on")],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.dir, env=env)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.proc.poll() is None:
                if "ready to accept connections" in self.log_text():
                    return self
                time.sleep(0.05)
            self.halt()  # (another process took the port meanwhile: try another)
        raise AssertionError("the PostgreSQL server did not start:\n" + self.log_text())

    def log_text(self):
        with open(self.log) as f:
            return f.read()

    def stop(self):
        """The server stopped, its directory removed."""
        self.halt()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def halt(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown: ends the sessions too
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def sql(self, statement):
        """One statement as the superuser, over the unix socket (trust)."""
        return run("psql", "-X", "-w", "-v", "ON_ERROR_STOP=1", "-h", self.dir, "-p", str(self.port),
                   "-U", OWNER, "-d", "postgres", "-Atc", statement,
                   env={"PATH": "/usr/bin:/bin", "PGPASSFILE": "/dev/null"}).stdout

    def psql(self, user, password):
        """A user's login over TCP (127.0.0.1), the password in PGPASSWORD, as a client
        would; (logged in, what psql printed). One attempt only (no SSL/GSS retry)."""
        conn = (f"host=127.0.0.1 port={self.port} user={user} dbname=postgres "
                "sslmode=disable gssencmode=disable connect_timeout=15")
        p = subprocess.run(["psql", "-X", "-w", "-Atc", "select current_user", conn],
                           capture_output=True, text=True, timeout=40,
                           env={"PATH": "/usr/bin:/bin", "PGPASSWORD": password,
                                "PGPASSFILE": "/dev/null", "LANG": "C.UTF-8"})
        out = p.stdout + p.stderr
        ok = p.returncode == 0 and p.stdout.strip() == user
        return ok, out

    def log_tail(self, n=20):
        try:
            with open(self.log) as f:
                return "--- postgres.log (last lines) ---\n" + "".join(f.readlines()[-n:])
        except OSError:
            return ""
