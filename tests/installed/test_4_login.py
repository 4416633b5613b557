"""login on a terminal, started by root as getty does (`login target`): the password, then the
passcode from the mail, then a shell that runs `id`. PAM service login."""

import pexpect

from harness import MENU_PROMPT, PASSCODE_PROMPT, WRONG_PASSCODE, finish, spawn_as, transcript, wrong


def login(system, umask, right):
    t = system.target
    child = spawn_as(None, ["/bin/login", t.name], umask, timeout=30)
    child.expect("Password: ")
    mark = system.mailbox.mark()
    child.sendline(t.password)
    i = child.expect([PASSCODE_PROMPT, "Login incorrect", pexpect.EOF, MENU_PROMPT])
    assert i == 0, f"no passcode prompt after the password:\n{transcript(child)}\n{system.logs()}"
    code = system.mailbox.code(t.email, child.match.group(1), mark)
    child.sendline(code if right else wrong(code))
    if right:
        i = child.expect([r"\$ ", "Login incorrect", pexpect.EOF])
        if i == 0:
            child.sendline("id; exit")
        return finish(child)
    i = child.expect(["Login incorrect", r"\$ ", pexpect.EOF], timeout=30)
    seen = child.before + (child.after if i == 0 else "")
    if i == 1:  # a shell: show what it is
        child.sendline("id; exit")
    child.terminate(force=True)
    out, status = finish(child)
    return seen + out, status


def test_login_right_passcode(system, umask):
    out, _ = login(system, umask, right=True)
    assert f"uid={system.target.uid}({system.target.name})" in out, out
    system.assert_logged("target", "login", "success")


def test_login_wrong_passcode_refused(system, umask):
    out, _ = login(system, umask, right=False)
    assert WRONG_PASSCODE in out and "Login incorrect" in out and "uid=" not in out, out
    system.assert_logged("target", "login", "deny", "wrong")
