"""fail_mode=safe on a healthy install (sender running, spool usable) changes nothing for a
caller: sudo and su still ask for the second factor, and the password alone is refused (an
empty answer and an interrupted prompt do not get through)."""

import pexpect
import pytest

from harness import MENU_PROMPT, PASSCODE_PROMPT, admin, finish, spawn_as, transcript


@pytest.fixture
def safe(system):
    admin("settings", "set", "fail_mode=safe")
    admin("service", "set", "sudo", "passcode")
    yield
    admin("settings", "reset", "fail_mode")


CASES = {
    "sudo id": (["sh", "-c", 'sudo -k; exec sudo id'], r"\[sudo\] password for alice: ", "alice", "uid=0"),
    "su - target": (["su", "-", "target", "-c", "id"], "Password: ", "target", "uid="),
}


@pytest.mark.parametrize("case", CASES)
def test_fail_mode_safe_still_requires_second_factor(system, safe, case, umask):
    argv, prompt, who, success = CASES[case]
    user = system.alice if who == "alice" else system.target
    child = spawn_as("alice", argv, umask)
    child.expect(prompt)
    child.sendline(user.password)
    i = child.expect([PASSCODE_PROMPT, pexpect.EOF, MENU_PROMPT])
    assert i == 0, f"fail_mode=safe: no passcode prompt, the password alone decided:\n{transcript(child)}"
    # Interrupt the prompt instead of answering: the password alone must not be enough.
    child.sendeof()
    i = child.expect([r"\[sudo\] password for alice: ", pexpect.EOF])
    if i == 0:
        child.sendintr()
    out, status = finish(child)
    assert status != 0 and success not in out, out
