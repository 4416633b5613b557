"""After every flow: no message ended in the spool's failed/ directory, and the sender's
status reports no error (every code the module queued was delivered)."""

import os
import pwd

from harness import admin


def test_no_failed_messages(system):
    failed = os.listdir("/var/spool/mfa/failed")
    assert failed == [], admin("queue", "list", check=False).stdout


def test_sender_still_running_as_mfa(system):
    p = system.procs["sender"]
    assert p.poll() is None, f"mfa-sender exited {p.returncode}\n{system.logs()}"
    with open(f"/proc/{p.pid}/status") as f:
        uids = next(l for l in f if l.startswith("Uid:")).split()[1:]
    mfa = pwd.getpwnam("mfa").pw_uid
    assert set(map(int, uids)) == {mfa}, f"sender ids {uids}, want all {mfa}"
