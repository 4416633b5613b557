"""What the package cases share: the .deb files under test, apt-get and dpkg as an
administrator runs them (non-interactive, offline), and listings of the state (files, owners,
modes, contents; /etc/pam.d/common-*) to compare before and after a package operation."""

import difflib
import hashlib
import os
import re
import sqlite3
import stat
import subprocess

import harness

DEB_MFA = os.environ.get("MFA_DEB_MFA", "")
DEB_PAM = os.environ.get("MFA_DEB_PAM", "")
PRISTINE = os.path.join(harness.WORK, "pam.d.pristine")  # /etc/pam.d before any install
STATE = ["/etc/mfa", "/var/lib/mfa", "/var/spool/mfa", "/run/mfa"]
COMMON = ["common-auth", "common-account", "common-password", "common-session",
          "common-session-noninteractive"]
OURS = {"mfa", "libpam-mfa"}


def deb_version(path):
    return harness.run("dpkg-deb", "-f", path, "Version").stdout.strip()


def command(argv, umask=0o022):
    """Runs a package command the way an administrator's terminal would not: stdin /dev/null
    (a prompt fails instead of waiting), DEBIAN_FRONTEND=noninteractive, the given umask.
    Returns (exit status, stdout+stderr)."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, env=env, timeout=300, preexec_fn=lambda: os.umask(umask))
    return p.returncode, f"$ {' '.join(argv)}\n{p.stdout}"


def apt(*args, umask=0o022):
    """apt-get with the options of an unattended run; (status, output)."""
    return command(["apt-get", "-y", "-o", "Dpkg::Use-Pty=0", *args], umask=umask)


def install(*debs, reinstall=False, umask=0o022):
    """`apt-get install ./x.deb ...`, offline: no `apt-get update`, every dependency must be
    on the machine. When apt's plan (-s) would fetch another package, `dpkg -i` instead, and
    the output says so. (apt-get's --no-download fails on local .debs: "Pathname to install
    is not absolute".) Returns (status, output)."""
    args = ["install", *(["--reinstall"] if reinstall else []), *debs]
    status, plan = apt("-s", *args, umask=umask)
    fetch = sorted(set(re.findall(r"(?m)^Inst (\S+)", plan)) - OURS)
    if status != 0 or fetch:
        s2, out2 = command(["dpkg", "-i", *debs], umask=umask)
        return s2, (plan + f"\nNOTE: apt-get would fetch {fetch or 'something'} from the network "
                    "(above): fell back to dpkg -i\n" + out2)
    return apt(*args, umask=umask)


def status(pkg):
    """dpkg's state of `pkg`: e.g. 'install ok installed 0.1.0', or 'unknown' when dpkg
    knows nothing of it."""
    p = harness.run("dpkg-query", "-W", "-f", "${Status} ${Version}", pkg, check=False)
    return p.stdout.strip() if p.returncode == 0 else "unknown"


def installed(pkg):
    return status(pkg).startswith("install ok installed")


def common_files(root="/etc/pam.d"):
    """{name: bytes} of the common-* files pam-auth-update manages."""
    out = {}
    for n in COMMON:
        try:
            with open(os.path.join(root, n), "rb") as f:
                out[n] = f.read()
        except FileNotFoundError:
            out[n] = None
    return out


def listing(roots=STATE):
    """Every file and directory under `roots`: {path: (type, mode, uid, gid, content)}, the
    content a sha256 for files and the target for links."""
    out = {}
    for top in roots:
        for d, dirs, files in os.walk(top):
            for p in [d] + [os.path.join(d, n) for n in files]:
                st = os.lstat(p)
                if stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as f:
                        content = hashlib.sha256(f.read()).hexdigest()[:16]
                elif stat.S_ISLNK(st.st_mode):
                    content = os.readlink(p)
                else:
                    content = ""
                out[p] = (stat.S_IFMT(st.st_mode), oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid, content)
    return out


def diff(before, after):
    """The differences of two listings, one line each."""
    lines = []
    for p in sorted(set(before) | set(after)):
        if before.get(p) != after.get(p):
            lines.append(f"{p}: {before.get(p)} -> {after.get(p)}")
    return "\n".join(lines)


def pam_mfa_modules():
    """Every pam_mfa.so under the library directories (usrmerged or not)."""
    found = []
    for top in ("/usr/lib", "/lib"):
        for d, _, files in os.walk(top):
            found += [os.path.join(d, n) for n in files if n.startswith("pam_mfa")]
    return sorted(set(os.path.realpath(p) for p in found))


def processes(name):
    """PIDs (in this PID namespace) whose command is `name`."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == name[:15]:
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


def db_dump(path):
    """The SQL text of an SQLite database (read-only), one statement a line."""
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(c.iterdump())
    finally:
        c.close()


def db_diff(before, after):
    """What changed between two dumps of db_dump, as a unified diff."""
    return "\n".join(difflib.unified_diff(before, after, "before", "after", lineterm="", n=0))
