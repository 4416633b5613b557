"""A real sshd (UsePAM, keyboard-interactive, PAM service sshd) on 127.0.0.1 and the OpenSSH
client run by alice: target's password, then the passcode from the mail, then `id`."""

import pexpect

from harness import MENU_PROMPT, PASSCODE_PROMPT, finish, spawn_as, transcript, wrong


def ssh(system, umask, right):
    t = system.target
    child = spawn_as("alice", [
        "ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        "-o", "PreferredAuthentications=keyboard-interactive", "-o", "PubkeyAuthentication=no",
        "-o", "NumberOfPasswordPrompts=1",
        "-p", str(system.sshd_port), f"{t.name}@127.0.0.1", "id"], umask)
    child.expect("Password: ")
    mark = system.mailbox.mark()
    child.sendline(t.password)
    i = child.expect([PASSCODE_PROMPT, pexpect.EOF, MENU_PROMPT])
    assert i == 0, f"no passcode prompt after the password:\n{transcript(child)}\n{system.logs()}"
    code = system.mailbox.code(t.email, child.match.group(1), mark)
    child.sendline(code if right else wrong(code))
    if right:
        return finish(child)
    i = child.expect(["Password: ", pexpect.EOF])
    seen = child.before + ("Password: [asked again]" if i == 0 else "")
    if i == 0:
        child.sendintr()
    out, status = finish(child)
    return seen + out, status


def test_ssh_right_passcode(system, umask):
    out, status = ssh(system, umask, right=True)
    assert status == 0 and f"uid={system.target.uid}({system.target.name})" in out, \
        out + "\n" + system.logs()
    system.assert_logged("target", "sshd", "success")


def test_ssh_wrong_passcode_refused(system, umask):
    out, status = ssh(system, umask, right=False)
    # ssh shows no PAM error text here: the auth log says why the module refused.
    assert status == 255 and "uid=" not in out, out
    assert "Permission denied" in out or "asked again" in out, out
    system.assert_logged("target", "sshd", "deny", "wrong")
