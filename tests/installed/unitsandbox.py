"""A systemd unit's confinement without systemd, for the installed-system suite (whose
throwaway root has no systemd running): `unit_sandbox(unit, argv)` starts `argv` as the unit
file says its ExecStart runs — User= (else root), no capabilities (CapabilityBoundingSet=,
NoNewPrivileges), SystemCallFilter= through libseccomp (the groups expanded by
`systemd-analyze syscall-filter`; other calls fail with SystemCallErrorNumber=, or kill the
process as systemd's default does), PrivateNetwork= (a new network namespace),
ProtectSystem=strict (every mount read-only but ReadWritePaths=), InaccessiblePaths=,
PrivateTmp=, ProtectHome=, UMask= and a bare environment. Not emulated: the other Protect*
and Restrict* settings, IPAddressDeny=, DevicePolicy=.

Run it as root inside the throwaway root: its mounts are made in a new mount namespace of
its own (unshare), so nothing outside the process changes.
"""

import errno
import os
import subprocess

from harness import run


def unit_values(path, key):
    with open(path) as f:
        return [l.split("=", 1)[1].strip() for l in f if l.startswith(f"{key}=")]


SANDBOX = r"""
set -eu
# ReadWritePaths: their own mounts, left writable.
for p in $RW; do mount --bind "$p" "$p"; done
# ProtectSystem=strict: every other mount read-only.
for mp in $(awk '{print $5}' /proc/self/mountinfo | sort -u); do
  case " $RW " in *" $mp "*) continue ;; esac
  mount -o remount,bind,ro "$mp" 2>/dev/null || true
done
# PrivateTmp, ProtectHome, InaccessiblePaths.
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
for h in /home /root $HIDE; do mount -t tmpfs -o mode=0 tmpfs "$h"; done
umask "$UNIT_UMASK"
ids=""
[ -n "$RUN_AS" ] && ids="--reuid $RUN_AS --regid $RUN_AS --init-groups"
exec setpriv $ids --no-new-privs --bounding-set=-all --inh-caps=-all --ambient-caps=-all -- \
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  SECCOMP_ALLOW="$SECCOMP_ALLOW" SECCOMP_DEFAULT="$SECCOMP_DEFAULT" \
  /usr/bin/python3 -c "$SECCOMP_PY" "$@"
"""

# SystemCallFilter= through libseccomp: the syscalls allowed; every other fails with the
# unit's SystemCallErrorNumber, or kills the process (systemd's default), loaded under
# no_new_privs as systemd loads it.
SECCOMP_PY = r"""
import ctypes, os, sys
lib = ctypes.CDLL("libseccomp.so.2")
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
ctx = lib.seccomp_init(int(os.environ.pop("SECCOMP_DEFAULT")))
for name in filter(None, os.environ.pop("SECCOMP_ALLOW").split(",")):
    nr = lib.seccomp_syscall_resolve_name(name.encode())
    if nr >= 0 and lib.seccomp_rule_add(ctx, 0x7FFF0000, nr, 0) != 0:
        sys.exit(f"seccomp: cannot allow {name}")
if lib.seccomp_load(ctx) != 0:
    sys.exit("seccomp: cannot load the filter")
os.execvp(sys.argv[1], sys.argv[1:])
"""
SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_ERRNO = 0x00050000


def syscall_set(group, seen=None):
    """The system calls a systemd group (@system-service) stands for, nested groups expanded."""
    seen = set() if seen is None else seen
    out = set()
    listing = run("systemd-analyze", "syscall-filter", group).stdout.splitlines()[1:]
    for word in (l.strip() for l in listing):
        if not word or word.startswith("#"):
            continue
        if word.startswith("@"):
            if word not in seen:
                seen.add(word)
                out |= syscall_set(word, seen)
        else:
            out.add(word)
    return out


def unit_syscalls(unit):
    """The system calls the unit's SystemCallFilter= lines allow (allow-lists, then
    ~denials) and libseccomp's action for the others."""
    allow, deny = set(), set()
    for v in unit_values(unit, "SystemCallFilter"):
        into = deny if v.startswith("~") else allow
        for word in v.lstrip("~").split():
            into |= syscall_set(word) if word.startswith("@") else {word}
    assert allow, f"{unit}: the emulation assumes an allow-list"
    errno_name = unit_values(unit, "SystemCallErrorNumber")
    if not errno_name:
        return allow - deny, SCMP_ACT_KILL_PROCESS
    return allow - deny, SCMP_ACT_ERRNO | getattr(errno, errno_name[0])


def unit_sandbox(unit, argv, **popen):
    """`argv` as `unit` runs its ExecStart: its User= (else root), without capabilities
    (CapabilityBoundingSet=, NoNewPrivileges), its SystemCallFilter, a new network namespace
    with PrivateNetwork=yes, every mount read-only but ReadWritePaths (ProtectSystem=strict),
    InaccessiblePaths hidden, a private /tmp, no /home nor /root, the unit's UMask and a bare
    environment. Not emulated: the other Protect*/Restrict* settings. A Popen (argv as
    `popen` says)."""
    allow, default = unit_syscalls(unit)
    env = {"PATH": os.environ["PATH"], "SECCOMP_PY": SECCOMP_PY,
           "SECCOMP_ALLOW": ",".join(sorted(allow)), "SECCOMP_DEFAULT": str(default),
           "RW": " ".join(p for v in unit_values(unit, "ReadWritePaths") for p in v.split()),
           "HIDE": " ".join(p.lstrip("-") for v in unit_values(unit, "InaccessiblePaths")
                            for p in v.split()),
           "RUN_AS": (unit_values(unit, "User") or [""])[0],
           "UNIT_UMASK": (unit_values(unit, "UMask") or ["0022"])[0]}
    net = ["--net"] if unit_values(unit, "PrivateNetwork") == ["yes"] else []
    return subprocess.Popen(["unshare", "--mount", *net, "--propagation", "private",
                             "bash", "-c", SANDBOX, "sandbox", *argv], env=env, **popen)
