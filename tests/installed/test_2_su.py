"""su, su - and su -l typed by the non-root user alice on a terminal (real uid alice, euid 0):
the target's password, then the passcode read from the mail. PAM services su and su-l (which
includes su); the rule `service set su passcode` governs both."""

import pexpect
import pytest

from harness import MENU_PROMPT, PASSCODE_PROMPT, WRONG_PASSCODE, finish, spawn_as, transcript, wrong

VARIANTS = {"su": ["su"], "su -": ["su", "-"], "su -l": ["su", "-l"]}
SERVICE = {"su": "su", "su -": "su-l", "su -l": "su-l"}  # the PAM service each one runs


def su(system, variant, umask, right):
    t = system.target
    child = spawn_as("alice", [*VARIANTS[variant], t.name, "-c", "id"], umask)
    child.expect("Password: ")
    mark = system.mailbox.mark()
    child.sendline(t.password)
    i = child.expect([PASSCODE_PROMPT, pexpect.EOF, MENU_PROMPT])
    assert i == 0, f"no passcode prompt after the password:\n{transcript(child)}\n{system.logs()}"
    code = system.mailbox.code(t.email, child.match.group(1), mark)
    child.sendline(code if right else wrong(code))
    return finish(child)


@pytest.mark.parametrize("variant", VARIANTS)
def test_su_right_passcode(system, variant, umask):
    out, status = su(system, variant, umask, right=True)
    assert status == 0 and f"uid={system.target.uid}({system.target.name})" in out, out
    system.assert_logged("target", SERVICE[variant], "success")


@pytest.mark.parametrize("variant", VARIANTS)
def test_su_wrong_passcode_refused(system, variant, umask):
    out, status = su(system, variant, umask, right=False)
    # Refused by the module (not by a crash or a timeout), and su says so.
    assert status == 1 and WRONG_PASSCODE in out and "Authentication failure" in out, out
    assert "uid=" not in out, out
    system.assert_logged("target", SERVICE[variant], "deny", "wrong")
