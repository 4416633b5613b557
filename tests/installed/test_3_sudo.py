"""sudo id and sudo -i id typed by alice (in sudoers) on a terminal: her password, then a
passcode from the mail or an authenticator code (oathtool), as the rule `service set sudo
passcode|totp` says; sudo-i has no rule of its own and follows sudo. `sudo -k; sudo -i id`
after a successful sudo asks for both factors again."""

import pexpect
import pytest

from harness import MENU_PROMPT, PASSCODE_PROMPT, TOTP_PROMPT, admin, finish, spawn_as, transcript, wrong

COMMANDS = {"sudo id": ["sudo", "id"], "sudo -i id": ["sudo", "-i", "id"]}
SERVICE = {"sudo id": "sudo", "sudo -i id": "sudo-i"}


@pytest.fixture(params=["passcode", "totp"])
def method(request, system):
    admin("service", "set", "sudo", request.param)
    return request.param


def second_factor(system, child, method, right, mark):
    """Answers the module's prompt (a passcode: from a mail that came after `mark`); returns
    without waiting for the end."""
    a = system.alice
    prompt = PASSCODE_PROMPT if method == "passcode" else TOTP_PROMPT
    i = child.expect([prompt, r"\[sudo\] password for", pexpect.EOF, MENU_PROMPT])
    if i == 3:
        child.sendintr()
    assert i == 0, f"no {method} prompt after the password:\n{transcript(child)}\n{system.logs()}"
    if method == "passcode":
        code = system.mailbox.code(a.email, child.match.group(1), mark)
        child.sendline(code if right else wrong(code))
    else:
        child.sendline(a.totp() if right else a.wrong_totp())


def sudo(system, command, method, umask, right):
    a = system.alice
    child = spawn_as("alice", ["sh", "-c", 'sudo -k; exec "$@"', "sh", *COMMANDS[command]], umask)
    child.expect(r"\[sudo\] password for alice: ")
    mark = system.mailbox.mark()
    child.sendline(a.password)
    second_factor(system, child, method, right, mark)
    if right:
        return finish(child)
    # sudo asks again after a failure ("Sorry, try again."): interrupt it there.
    i = child.expect([r"\[sudo\] password for alice: ", pexpect.EOF])
    seen = child.before
    if i == 0:
        child.sendintr()
    out, status = finish(child)
    return seen + out, status


@pytest.mark.parametrize("command", COMMANDS)
def test_sudo_right_code(system, command, method, umask):
    out, status = sudo(system, command, method, umask, right=True)
    assert status == 0 and "uid=0(root)" in out, out
    system.assert_logged("alice", SERVICE[command], "success")


@pytest.mark.parametrize("command", COMMANDS)
def test_sudo_wrong_code_refused(system, command, method, umask):
    out, status = sudo(system, command, method, umask, right=False)
    # sudo authenticates with PAM_SILENT (its pam_silent default): the module's "Wrong
    # passcode." is not shown, sudo's "Sorry, try again." is; the auth log has the reason.
    assert status == 1 and "Sorry, try again." in out and "uid=0" not in out, out
    system.assert_logged("alice", SERVICE[command], "deny", "wrong")


def test_sudo_k_then_sudo_i_asks_again(system, umask):
    admin("service", "set", "sudo", "passcode")
    a = system.alice
    child = spawn_as("alice", ["sh", "-c", "sudo id && sudo -k && sudo -i id; echo done=$?"], umask)
    for _ in ("sudo id", "sudo -k; sudo -i id"):
        child.expect(r"\[sudo\] password for alice: ")
        mark = system.mailbox.mark()
        child.sendline(a.password)
        second_factor(system, child, "passcode", True, mark)
        child.expect(r"uid=0\(root\)")
    out, _ = finish(child)
    assert "done=0" in out, out
