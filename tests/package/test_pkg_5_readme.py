"""The README's "Uninstall" section, run as written (its ```sh block, as root, each leading
`sudo ` dropped: it would reset the environment below) on the packaged install the upgrade cases left (profile enabled, in use): in
its order — the profile disabled, hand-made lines deleted, remove, purge — nothing warns, and
the machine is left with Debian's own /etc/pam.d and nothing of mfa but the account. The one
liberty: apt-get gets `APT::Get::Assume-Yes` from an APT_CONFIG file, as there is nobody at
the terminal to answer its question."""

import os
import re
import subprocess

import harness
import pkg


def uninstall_block():
    with open(os.path.join(harness.REPO, "README.md")) as f:
        text = f.read()
    m = re.search(r"^### Uninstall\n(.*?)(?=^##)", text, re.M | re.S)
    assert m, "README.md has no '### Uninstall' section"
    blocks = re.findall(r"^```sh\n(.*?)^```", m.group(1), re.M | re.S)
    assert len(blocks) == 1, f"the Uninstall section has {len(blocks)} ```sh blocks, want 1"
    return re.sub(r"(?m)^sudo ", "", blocks[0])


def test_readme_uninstall_as_written():
    assert pkg.installed("mfa") and pkg.installed("libpam-mfa"), "the upgrade cases left no install"
    with open("/etc/pam.d/common-auth") as f:
        assert "pam_mfa" in f.read(), "the profile is not enabled: the block's first step would prove nothing"
    block = uninstall_block()
    assert "apt-get purge" in block and "pam-auth-update --disable mfa" in block, block
    conf = os.path.join(harness.WORK, "apt-assume-yes.conf")
    with open(conf, "w") as f:
        f.write('APT::Get::Assume-Yes "true";\n')
    p = subprocess.run(["bash", "-e", "-x", "-c", block], cwd=harness.WORK, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, APT_CONFIG=conf, DEBIAN_FRONTEND="noninteractive"))
    out = p.stdout + p.stderr
    assert p.returncode == 0, f"the README's Uninstall block stopped (exit {p.returncode}):\n{out}"
    assert "WARNING" not in out, f"the README's order still warns:\n{out}"
    pristine, now = pkg.common_files(pkg.PRISTINE), pkg.common_files()
    assert now == pristine, "after the README's Uninstall: common-* not as before the install"
    for name in os.listdir("/etc/pam.d"):
        with open(f"/etc/pam.d/{name}") as f:
            assert "pam_mfa" not in f.read(), f"/etc/pam.d/{name} still names pam_mfa"
    left = [d for d in pkg.STATE if os.path.lexists(d)] + pkg.pam_mfa_modules()
    assert not left, f"left after the README's Uninstall: {left}"
    for p_ in ("mfa", "libpam-mfa"):
        assert pkg.status(p_) in ("unknown", "unknown ok not-installed"), f"{p_}: {pkg.status(p_)}"
