"""What `make install` and `mfa-admin init` (MFA_INSTALL=deb: the packages and their postinst,
nobody ran init) leave on the machine: files, owners, modes (the ownership model of issue 9),
`doctor` on the clean install, and a test message queued under umask 077 that still reaches
the sender (the spool file's mode is set whatever the umask)."""

import os

from harness import EXAMPLES, MODE, SBIN, admin, mode_owner, ownership_errors, run


def test_installed_files(system):
    for b in ("mfa-admin", "mfa-sender"):
        assert mode_owner(f"{SBIN}/{b}") == (0o755, "root", "root")
    assert mode_owner(os.environ["MFA_PAMDIR"] + "/pam_mfa.so") == (0o644, "root", "root")
    unit = open("/lib/systemd/system/mfa-sender.service").read()
    assert f"ExecStart={SBIN}/mfa-sender " in unit
    # dh_compress may compress a long example in the package.
    assert any(os.path.isfile(f"{EXAMPLES}/mfa.toml{z}") for z in ("", ".gz")), EXAMPLES
    if MODE == "deb":
        assert not os.path.exists("/usr/local/sbin/mfa-admin"), "a make install is in the way"


def test_init_ownership_model(system):
    wrong = ownership_errors()
    by = "the package's postinst (nobody ran init)" if MODE == "deb" else "`mfa-admin init`"
    assert not wrong, f"after {by}:\n" + "\n".join(wrong)


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
