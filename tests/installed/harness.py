"""The installed system the cases drive, and how they drive it.

Runs inside the throwaway root of namespace.sh, as root, after `make install`, or (with
MFA_INSTALL=deb) inside tests/package's throwaway root after `apt-get install` of the
packages and `pam-auth-update --enable mfa`. `System.up()`
does what the README asks of an administrator: `mfa-admin init`, an [smtp] table pointing at
a local aiosmtpd server (pam_mfa/tests/system/smtp_sink.py: one JSON line per delivered mail),
mfa-sender started as the system user `mfa` (setpriv, as the unit file's User=/Group=),
`auth required pam_mfa.so` after `@include common-auth` in su, sudo, sudo-i, login and sshd,
contacts and rules through mfa-admin. In deb mode the package did the first and last steps:
no `init` (the postinst ran it), no pam.d edit (the profile put pam_mfa in common-auth, which
every service includes; `pam()` checks that and that no service names it a second time), and
the binaries are in /usr/sbin. It creates the users `alice` (the caller, in sudoers)
and `target`, and starts a real sshd on 127.0.0.1.

`spawn_as()` starts a command on a pseudo-terminal owned by the given user, with real and
effective ids of that user (so su and sudo run with real uid alice, euid 0) and the umask of
the case. `Mailbox.code()` reads the passcode of a prompt's prefix letter from the mail.

Duo (test_95_duo.py): `DuoMock` runs tests/lib/mock_duo.py (Duo's Auth API v2, signatures
verified) on 127.0.0.1; `System.duo_configure()` does the README's Duo set-up (the secret key
file 0640 root:mfa, a [duo] table in mfa.toml) and restarts the sender, which then brokers
Duo on /run/mfa/duo.sock; `duo_unconfigure()` puts mfa.toml back and restarts it without.
`stop_sender()`/`start_sender()` stop it as systemd does (SIGTERM) and start it again.
"""

import email
import email.policy
import json
import os
import pwd
import grp
import re
import secrets
import signal
import socket
import stat
import subprocess
import time

import pexpect

REPO = os.environ.get("MFA_REPO", "/work/main")
# How mfa was installed: `make` (tests/installed/run.sh: make install, then init here) or
# `deb` (tests/package/run.sh: the packages, their postinst and pam-auth-update profile).
MODE = os.environ.get("MFA_INSTALL", "make")
if MODE not in ("make", "deb"):
    raise RuntimeError(f"MFA_INSTALL={MODE!r}: want make or deb")
SBIN = "/usr/sbin" if MODE == "deb" else "/usr/local/sbin"
EXAMPLES = "/usr/share/doc/mfa/examples" if MODE == "deb" else "/usr/local/share/doc/mfa/examples"
WORK = os.environ.get("MFA_WORK", "/tmp")
CONFIG = "/etc/mfa/mfa.toml"
DOMAIN = "mfa.test"

# The module's prompts (mfa_core::auth).
PASSCODE_PROMPT = r"Passcode ([A-Z])-[^\r\n]*: "  # "Passcode V- (sent to a***@m***.test): "
TOTP_PROMPT = r"Authenticator code: "
MENU_PROMPT = r"Choice \[[0-9-]+\]: "  # several factors: the method was not the rule's
# What the module says when it refuses a code (attempts=1: no second try); sudo hides it.
WRONG_PASSCODE = "Wrong passcode"
PAM_LINE = "auth       required   pam_mfa.so"
PAM_SERVICES = ["su", "sudo", "sudo-i", "login", "sshd"]
# The ownership model of issue 9: what init (or the package's postinst) makes. group None:
# any group.
OWNERSHIP = {
    "/etc/mfa": (0o755, "root", "root"),
    "/etc/mfa/mfa.toml": (0o640, "root", "mfa"),
    "/var/lib/mfa": (0o700, "root", None),
    "/var/spool/mfa": (0o755, "root", "root"),
    "/var/spool/mfa/tmp": (0o2770, "root", "mfa"),
    "/var/spool/mfa/new": (0o2770, "root", "mfa"),
    "/var/spool/mfa/cur": (0o2770, "root", "mfa"),
    "/var/spool/mfa/failed": (0o2770, "root", "mfa"),
    "/run/mfa": (0o755, "mfa", "mfa"),
}


def mode_owner(path):
    """(permission bits, owner name, group name) of `path`."""
    st = os.stat(path)
    return (stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name,
            grp.getgrgid(st.st_gid).gr_name)


def ownership_errors():
    """Every path of OWNERSHIP whose mode or owner is not the model's, as text lines."""
    wrong = []
    for path, (mode, user, group) in OWNERSHIP.items():
        try:
            got = mode_owner(path)
        except OSError as e:
            wrong.append(f"{path}: {e.strerror}")
            continue
        if got[0] != mode or got[1] != user or (group and got[2] != group):
            wrong.append(f"{path}: {oct(got[0])} {got[1]}:{got[2]}, want {oct(mode)} {user}:{group or '*'}")
    return wrong


def run(*argv, check=True, input=None, env=None):
    """Runs a command as root; returns CompletedProcess (text). Fails loudly on error."""
    p = subprocess.run(list(argv), capture_output=True, text=True, input=input, env=env)
    if check and p.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
        )
    return p


def admin(*args, check=True):
    return run("mfa-admin", *args, check=check)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Mailbox:
    """The SMTP server's file: one JSON line {"rcpt": [...], "data": "..."} per mail. A wait
    for a mail gives up at once when a new message lands in the spool's failed/ instead."""

    def __init__(self, path, failed="/var/spool/mfa/failed"):
        self.path = path
        self.failed = failed

    def _failed(self):
        try:
            return set(os.listdir(self.failed))
        except OSError:
            return set()

    def _mails(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def mark(self):
        """Where things stand (mails so far, failed messages): waits look only at later ones."""
        return len(self._mails()), self._failed()

    def _check_failed(self, since):
        new = self._failed() - since[1]
        if new:
            q = run("mfa-admin", "queue", "list", check=False)
            raise AssertionError(f"the message went to {self.failed} instead of the mail server "
                                 f"({', '.join(sorted(new))}):\n{q.stdout}{q.stderr}")

    @staticmethod
    def text(raw):
        msg = email.message_from_string(raw, policy=email.policy.default)
        parts = [str(msg.get("subject", ""))]
        for part in msg.walk():
            if not part.is_multipart():
                try:
                    parts.append(part.get_content())
                except (KeyError, LookupError):
                    parts.append(part.get_payload())
        return "\n".join(parts)

    def wait_mail(self, rcpt, since, timeout=15):
        """The text of the first mail to `rcpt` after mark `since`."""
        found = []

        def arrived():
            for m in self._mails()[since[0]:]:
                if rcpt in m["rcpt"]:
                    found.append(self.text(m["data"]))
                    return True
            self._check_failed(since)
            return False

        wait_for(arrived, timeout, f"a mail to {rcpt} (is mfa-sender running? see {WORK}/sender.log)")
        return found[0]

    def code(self, rcpt, prefix, since, timeout=15):
        """The digits of `prefix`-NNNNNN in a mail to `rcpt` delivered after mark `since`."""
        pattern = re.compile(rf"\b{re.escape(prefix)}-(\d{{4,8}})\b")
        found = []

        def arrived():
            for m in self._mails()[since[0]:]:
                if rcpt in m["rcpt"]:
                    hit = pattern.search(self.text(m["data"]))
                    if hit:
                        found.append(hit.group(1))
                        return True
            self._check_failed(since)
            return False

        wait_for(arrived, timeout, f"a mail to {rcpt} carrying {prefix}-<code> "
                 f"(is mfa-sender running? see {WORK}/sender.log and /var/spool/mfa/failed)")
        return found[0]


def wrong(code):
    """A code of the same length that is not `code`."""
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


class User:
    def __init__(self, name):
        self.name = name
        self.password = "pw-" + secrets.token_hex(8)
        self.email = f"{name}@{DOMAIN}"
        self.totp_key = None
        self.totp_step = 0  # the newest step used: the module refuses it and earlier ones

    @property
    def uid(self):
        return pwd.getpwnam(self.name).pw_uid

    def totp(self):
        """A valid authenticator code the module has not seen yet (a later step than the last
        one used; the suite sets totp_skew=10 so successive logins need not wait 30 s)."""
        step = max(int(time.time()) // 30, self.totp_step + 1)
        self.totp_step = step
        return run("oathtool", "--totp", "-b", self.totp_key, "--now", f"@{step * 30}").stdout.strip()

    def wrong_totp(self):
        """A 6-digit number that is no code of any step within the skew."""
        now = int(time.time()) // 30
        valid = set(run("oathtool", "--totp", "-b", self.totp_key, "-w", "25",
                        "--now", f"@{(now - 12) * 30}").stdout.split())
        while True:
            c = f"{secrets.randbelow(10 ** 6):06d}"
            if c not in valid:
                return c


def spawn_as(user, argv, umask, timeout=20):
    """`argv` on a new pseudo-terminal owned by `user` (0620 root:tty as after a login),
    with real and effective uid/gid of `user` and umask `umask` (octal string). user=None:
    as root (login is started by root, as getty does)."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "TERM": "dumb", "LANG": "C.UTF-8"}
    if user is None:
        env.update(HOME="/root", USER="root", LOGNAME="root",
                   PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        cmd, args, uid = argv[0], argv[1:], 0
    else:
        pw = pwd.getpwnam(user)
        env.update(HOME=pw.pw_dir, USER=user, LOGNAME=user, SHELL=pw.pw_shell)
        cmd = "setpriv"
        args = ["--reuid", user, "--regid", user, "--init-groups", "--", *argv]
        uid = pw.pw_uid
    tty_gid = grp.getgrnam("tty").gr_gid

    def prepare():
        os.umask(int(umask, 8))
        os.fchown(0, uid, tty_gid)
        os.fchmod(0, 0o620)

    cwd = env["HOME"]
    return pexpect.spawn(cmd, args, env=env, cwd=cwd, encoding="utf-8", timeout=timeout,
                         preexec_fn=prepare, dimensions=(24, 200), codec_errors="replace")


def finish(child, timeout=20):
    """Waits for the end; returns (everything it printed since the last match, exit status).
    A child still running after `timeout` is killed: status None, output marked TIMEOUT."""
    try:
        child.expect(pexpect.EOF, timeout=timeout)
        out = child.before
    except pexpect.TIMEOUT:
        out = (child.before or "") + f"\n[TIMEOUT after {timeout}s: killed]"
        child.terminate(force=True)
    child.close()
    return out, child.exitstatus


def transcript(child):
    """What the child printed so far (for failure messages)."""
    return (child.before or "") + (child.after if isinstance(child.after, str) else "")


def check_profile():
    """Deb mode: `pam-auth-update --enable mfa` put one pam_mfa line into common-auth,
    after the password (pam_unix) and the block's pam_deny/pam_permit; each service
    includes common-auth and names pam_mfa nowhere else (or it would ask twice)."""
    with open("/etc/pam.d/common-auth") as f:
        lines = [l for l in f.read().splitlines() if l.strip() and not l.lstrip().startswith("#")]
    mfa = [i for i, l in enumerate(lines) if "pam_mfa.so" in l]
    primary = [i for i, l in enumerate(lines) if re.search(r"pam_(unix|deny|permit)\.so", l)]
    assert len(mfa) == 1 and len(primary) >= 3 and mfa[0] > max(primary), \
        "common-auth after `pam-auth-update --enable mfa`: want one pam_mfa line after " \
        "the password block (pam_unix, pam_deny, pam_permit):\n" + "\n".join(lines)
    assert re.match(r"auth\s+(required|requisite|\[[^]]*\])\s+pam_mfa\.so\b", lines[mfa[0]]), lines[mfa[0]]
    for s in PAM_SERVICES + ["su-l", "common-account", "common-session", "common-password"]:
        with open(f"/etc/pam.d/{s}") as f:
            text = f.read()
        assert "pam_mfa" not in text, f"/etc/pam.d/{s} names pam_mfa itself: it would ask twice"
        if s in PAM_SERVICES:
            assert re.search(r"^@include common-auth\s*$", text, re.M), \
                f"/etc/pam.d/{s} does not include common-auth: the profile does not cover it"


class System:
    def __init__(self):
        self.procs = {}
        self.mailbox = Mailbox(os.path.join(WORK, "mail.jsonl"))
        self.alice = User("alice")
        self.target = User("target")
        self.sshd_port = None
        self.smtp_port = None

    # ---- set-up, in the order an administrator follows the README -------------------------
    def up(self):
        self.init()
        self.smtp()
        self.users()
        self.rules()
        self.pam()
        self.sender()
        self.sshd()

    def init(self):
        if MODE == "deb":  # the postinst ran it; nobody else may (test_1_install checks its work)
            try:
                pwd.getpwnam("mfa")
            except KeyError:
                raise AssertionError("the package's postinst did not create the system user `mfa`")
            return
        admin("init")
        # Idempotent: a second run succeeds (and repairs owners and modes).
        admin("init")
        try:
            pwd.getpwnam("mfa")
        except KeyError:
            raise AssertionError("`mfa-admin init` did not create the system user `mfa` "
                                 "(the sender's account, [sender] user)")

    def smtp(self):
        port = self.smtp_port = free_port()
        ready = os.path.join(WORK, "smtp.ready")
        log = open(os.path.join(WORK, "smtp.log"), "w")
        self.procs["smtp"] = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(REPO, "pam_mfa/tests/system/smtp_sink.py"),
             str(port), self.mailbox.path, ready], stdout=log, stderr=log)
        wait_for(lambda: os.path.exists(ready), 10, "the SMTP server")
        # The sender's own send limits off (as the module's, in rules()): every case sends
        # alice another code. init wrote the [sender] table with its defaults.
        text = open(CONFIG).read()
        for key in ("destination_limit", "hourly_limit"):  # (the packaged file has comments)
            text, n = re.subn(rf"(?m)^({key}\s*=\s*)\d+", r"\g<1>0", text)
            assert n == 1, f"{key} not in {CONFIG}:\n{text}"
        with open(CONFIG, "w") as f:
            f.write(text)
            f.write(f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\ntls = "none"\n'
                    f'from = "mfa@{DOMAIN}"\ntimeout = "10s"\n')

    def users(self):
        for u in (self.alice, self.target):
            run("useradd", "--create-home", "--shell", "/bin/bash", u.name)
            run("chpasswd", input=f"{u.name}:{u.password}\n")
            admin("user", "add", u.name)
            admin("contact", "add", u.name, "--email", u.email)
        with open("/etc/sudoers.d/mfa-installed-test", "w") as f:
            f.write("alice ALL=(ALL:ALL) ALL\n")
        os.chmod("/etc/sudoers.d/mfa-installed-test", 0o440)
        out = json.loads(admin("totp", "enroll", "alice", "--json").stdout)
        self.alice.totp_key = out["key"]

    def rules(self):
        # attempts=1: a wrong code ends the login (the command is refused at once);
        # totp_skew=10: successive TOTP logins use later steps instead of waiting 30 s.
        admin("settings", "set", "enabled=on", "attempts=1", "totp_skew=10",
              # every case logs alice in again and again: no send limit gets in the way
              "send_limit_user=0", "send_limit_destination=0", "send_limit_host=0")
        for s in ("su", "sudo", "login", "sshd"):
            admin("service", "set", s, "passcode")

    def pam(self):
        """One line after `@include common-auth`, with the README's own sed command (deb mode:
        checks the profile's line instead)."""
        if MODE == "deb":
            self.pam_profile()
            return
        for s in PAM_SERVICES:
            path = f"/etc/pam.d/{s}"
            run("sed", "-i", f"/^@include common-auth$/a {PAM_LINE}", path)
            with open(path) as f:
                lines = f.read().splitlines()
            at = lines.index("@include common-auth") if "@include common-auth" in lines else -1
            assert at >= 0 and lines[at + 1] == PAM_LINE, \
                f"{path}: no `{PAM_LINE}` after `@include common-auth`:\n" + "\n".join(lines)
        with open("/etc/pam.d/su-l") as f:  # `su -` and `su -l`: covered through su
            assert re.search(r"^auth\s+include\s+su\s*$", f.read(), re.M), "su-l does not include su"
        # The sshd drop-in the examples ship (doctor reads sshd_config).
        self.sshd_dropin()

    def sshd_dropin(self):
        src = f"{EXAMPLES}/ssh/sshd_config.d/mfa.conf"
        if os.path.exists(src) and os.path.isdir("/etc/ssh/sshd_config.d"):
            run("install", "-m", "0644", src, "/etc/ssh/sshd_config.d/mfa.conf")

    def pam_profile(self):
        """Deb mode: the profile's line is in common-auth (check_profile), then the sshd
        drop-in, as in make mode."""
        check_profile()
        self.sshd_dropin()

    def sender(self):
        """mfa-sender as user mfa, as the unit runs it (User=mfa, Group=mfa, UMask=0027)."""
        log = open(os.path.join(WORK, "sender.log"), "w")
        self.procs["sender"] = subprocess.Popen(
            ["setpriv", "--reuid", "mfa", "--regid", "mfa", "--init-groups", "--",
             f"{SBIN}/mfa-sender", "--config", CONFIG],
            stdout=log, stderr=log, cwd="/", preexec_fn=lambda: os.umask(0o027),
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        hb = "/run/mfa/sender.heartbeat"

        def beating():
            if self.procs["sender"].poll() is not None:
                raise AssertionError(
                    f"mfa-sender (as user mfa) exited {self.procs['sender'].returncode}:\n"
                    + open(os.path.join(WORK, "sender.log")).read())
            return os.path.exists(hb)

        wait_for(beating, 15, f"mfa-sender's heartbeat {hb}")

    def sshd(self):
        d = os.path.join(WORK, "sshd")
        os.makedirs(d, exist_ok=True)
        key = os.path.join(d, "host_ed25519")
        if not os.path.exists(key):  # (a second System in the same run reuses it)
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
        for _ in range(5):
            port = free_port()
            conf = os.path.join(d, "sshd_config")
            with open(conf, "w") as f:
                f.write(f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {key}\nPidFile none\n"
                        "UsePAM yes\nKbdInteractiveAuthentication yes\n"
                        "PasswordAuthentication no\nPubkeyAuthentication no\n"
                        "PermitRootLogin no\nAllowUsers target\nLogLevel VERBOSE\n")
            logpath = os.path.join(d, "sshd.log")
            log = open(logpath, "w")
            p = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", conf],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and p.poll() is None:
                if "Server listening on" in open(logpath).read():
                    self.procs["sshd"] = p
                    self.sshd_port = port
                    return
                time.sleep(0.05)
            p.kill()
            p.wait()
        raise AssertionError("sshd did not start:\n" + open(logpath).read())

    def down(self):
        for name, p in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in self.procs.items():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def last_auth(self, user):
        """The newest auth-log record of `user` ({service, outcome, method, reason, ...})."""
        rows = json.loads(admin("log", "show", "--user", user, "--limit", "1", "--json").stdout)
        assert rows, f"no auth-log record for {user}"
        return rows[-1]

    def assert_logged(self, user, service, outcome, reason=None):
        """The module recorded the case's login: the PAM service it ran under, its outcome."""
        r = self.last_auth(user)
        assert (r["service"], r["outcome"]) == (service, outcome), f"auth log: {r}"
        if reason:
            assert reason in r["reason"], f"auth log: {r}"

    def logs(self):
        """The sender's and sshd's logs, for failure messages."""
        out = []
        for name in ("sender.log", "sshd/sshd.log"):
            try:
                with open(os.path.join(WORK, name)) as f:
                    out.append(f"--- {name} (last lines) ---\n" + "".join(f.readlines()[-15:]))
            except OSError:
                pass
        return "\n".join(out)

    # ---- Duo (issue 14): [duo] in mfa.toml, the sender stopped and started -------------

    def stop_sender(self):
        """SIGTERM to the sender (as systemd stops it), waited for; its heartbeat goes with it
        (a stopped sender has none: the next start is then seen by its fresh heartbeat)."""
        p = self.procs.get("sender")
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        try:
            os.unlink("/run/mfa/sender.heartbeat")
        except FileNotFoundError:
            pass

    def start_sender(self):
        """The sender as the suite starts it (user mfa, the unit's command line); with [duo] in
        mfa.toml, also waits for the broker's socket."""
        self.sender()
        if "\n[duo]\n" in open(CONFIG).read():
            wait_for(lambda: os.path.exists(DUO_SOCKET), 15,
                     f"the Duo broker's socket {DUO_SOCKET} (see {WORK}/sender.log)")

    def duo_configure(self, mock, extra=""):
        """What the README's Duo section asks of an administrator: the secret key in a file
        only root and the sender can read (0640 root:mfa), a [duo] table in mfa.toml (here with
        the mock's CA file), then the sender restarted. `duo_unconfigure` undoes it all."""
        self._duo_saved_config = open(CONFIG).read()
        with open(DUO_SKEY_FILE, "w") as f:
            f.write(DUO_SKEY + "\n")
        os.chown(DUO_SKEY_FILE, 0, grp.getgrnam("mfa").gr_gid)
        os.chmod(DUO_SKEY_FILE, 0o640)
        # Like every file under /etc/mfa: root:mfa 0640 (postgres must read nothing there).
        run("install", "-m", "0640", "-o", "root", "-g", "mfa", mock.cert, DUO_CA_FILE)
        with open(CONFIG, "a") as f:
            f.write(f'\n[duo]\nhost = "127.0.0.1:{mock.port}"\nikey = "{DUO_IKEY}"\n'
                    f'skey_file = "{DUO_SKEY_FILE}"\nca_file = "{DUO_CA_FILE}"\n'
                    f'timeout = "20s"\n{extra}')
        self.stop_sender()
        self.start_sender()

    def duo_unconfigure(self):
        """mfa.toml as it was before `duo_configure`, the key and CA files gone, the sender
        restarted without a broker (and running, whatever state a case left it in)."""
        saved = getattr(self, "_duo_saved_config", None)
        if saved is not None:
            with open(CONFIG, "w") as f:
                f.write(saved)
            self._duo_saved_config = None
        for path in (DUO_SKEY_FILE, DUO_CA_FILE):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self.stop_sender()
        self.sender()
        assert not os.path.exists(DUO_SOCKET), f"{DUO_SOCKET} left behind by the sender"


# ---- Duo (issue 14): the Auth API mock ------------------------------------------------
# The mock (tests/lib/mock_duo.py) runs as root inside the namespace on 127.0.0.1 with a
# throwaway leaf certificate; the sender (as user mfa) trusts it through [duo] ca_file.
DUO_IKEY = "DIWJ8X6AEYOR5OMC6TQ1"
DUO_SKEY = "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep"
DUO_SKEY_FILE = "/etc/mfa/duo-skey"
DUO_CA_FILE = "/etc/mfa/duo-ca.pem"  # the sender cannot read $MFA_WORK (a 0700 tmpfs)
DUO_SOCKET = "/run/mfa/duo.sock"
DUO_DEVICE = "iOS (XXX-XXX-1234)"  # the mock's default device
DUO_MENU_PROMPT = r"Choice \[1-[0-9]\] or passcode: "  # a Duo passcode may be typed there
# The mock's users: target and alice have its default phone (push, phone, sms) and these Duo
# passcodes; test_95_duo changes the push answers with DuoMock.set_users().
DUO_USERS = {"target": {"passcodes": ["135790"]}, "alice": {"passcodes": ["246802"]}}


class DuoMock:
    """tests/lib/mock_duo.py on 127.0.0.1 (HTTPS, signatures verified). `users` is its users
    file (see its docstring), rewritten by `set_users` (the mock re-reads it per request);
    `requests()` is its log, one dict per request."""

    def __init__(self, users):
        self.dir = os.path.join(WORK, "duo")
        os.makedirs(self.dir, exist_ok=True)
        self.users_path = os.path.join(self.dir, "users.json")
        self.log_path = os.path.join(self.dir, "requests.jsonl")
        self.cert = os.path.join(self.dir, "cert.pem")
        key = os.path.join(self.dir, "key.pem")
        # A leaf certificate (basicConstraints CA:FALSE): rustls refuses a CA certificate as
        # the server's; the same file is the sender's ca_file.
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-keyout", key, "-out", self.cert)
        self.set_users(users)
        ready = os.path.join(self.dir, "port")
        if os.path.exists(ready):
            os.unlink(ready)
        self.stderr = open(os.path.join(self.dir, "mock.log"), "w")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(REPO, "tests/lib/mock_duo.py"), "--ready", ready,
             "--cert", self.cert, "--key", key, "--ikey", DUO_IKEY, "--skey", DUO_SKEY,
             "--users", self.users_path, "--log", self.log_path],
            stdout=self.stderr, stderr=self.stderr)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"mock_duo.py exited {self.proc.returncode}:\n"
                                     + open(os.path.join(self.dir, "mock.log")).read())
            return os.path.exists(ready)

        wait_for(listening, 20, "the Duo mock's port")
        self.port = int(open(ready).read().strip())

    def set_users(self, users):
        tmp = self.users_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(users, f)
        os.rename(tmp, self.users_path)

    def requests(self):
        try:
            with open(self.log_path, encoding="utf-8") as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def auths(self, since=0):
        """The successful /auth/v2/auth requests after the first `since` requests."""
        return [q for q in self.requests()[since:]
                if q["path"] == "/auth/v2/auth" and q["status"] == 200]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()

