"""What `make install` and `mfa-admin init` leave on the machine: files, owners, modes (the
ownership model of issue 9), `doctor` on the clean install, and a test message queued under
umask 077 that still reaches the sender (the spool file's mode is set whatever the umask)."""

import grp
import os
import pwd
import stat

from harness import admin, run


def mode_owner(path):
    st = os.stat(path)
    return (stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name,
            grp.getgrgid(st.st_gid).gr_name)


def test_make_install_files(system):
    for b in ("mfa-admin", "mfa-sender"):
        assert mode_owner(f"/usr/local/sbin/{b}") == (0o755, "root", "root")
    assert mode_owner(os.environ["MFA_PAMDIR"] + "/pam_mfa.so") == (0o644, "root", "root")
    unit = open("/lib/systemd/system/mfa-sender.service").read()
    assert "ExecStart=/usr/local/sbin/mfa-sender " in unit
    assert os.path.isfile("/usr/local/share/doc/mfa/examples/mfa.toml")


def test_init_ownership_model(system):
    want = {
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
    wrong = []
    for path, (mode, user, group) in want.items():
        got = mode_owner(path)
        if got[0] != mode or got[1] != user or (group and got[2] != group):
            wrong.append(f"{path}: {oct(got[0])} {got[1]}:{got[2]}, want {oct(mode)} {user}:{group or '*'}")
    assert not wrong, "after `mfa-admin init`:\n" + "\n".join(wrong)


def test_doctor_clean_install(system):
    p = admin("doctor", check=False)
    out = p.stdout + p.stderr
    fails = [l for l in out.splitlines() if l.lstrip().startswith("FAIL")]
    assert p.returncode == 0 and not fails, f"doctor on the clean install exited {p.returncode}:\n{out}"


def test_admin_test_message_under_umask_077(system):
    mark = system.mailbox.mark()
    p = run("sh", "-c", "umask 077; exec mfa-admin test target", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    system.mailbox.wait_mail(system.target.email, mark)
    assert os.listdir("/var/spool/mfa/failed") == [], run("mfa-admin", "queue", "list", check=False).stdout
