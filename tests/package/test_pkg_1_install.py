"""`apt-get install ./mfa_*.deb ./libpam-mfa_*.deb` on a machine without mfa, without systemd
running (a container, like CI's), by an administrator whose umask is 077 (a hardened root
shell: nothing may depend on 022): the maintainer scripts succeed, postinst made the account
mfa and the ownership model of issue 9 without anyone running `mfa-admin init`, no pam.d file
changed (the profile is `Default: no`), the documentation and completions are where man and
the shells look; last, `pam-auth-update --enable mfa` puts pam_mfa into common-auth after the
password, and only there. The login cases (tests/installed in deb mode) run after this file."""

import os
import pwd
import re
import subprocess

import pytest

import harness
import pkg
from harness import ownership_errors, run

MANPAGES = [("8", "pam_mfa"), ("8", "mfa-admin"), ("8", "mfa-sender"), ("8", "mfa-fleetd"),
            ("5", "mfa.toml")]
COMPLETIONS = {
    "bash": "/usr/share/bash-completion/completions/mfa-admin",
    "zsh": "/usr/share/zsh/vendor-completions/_mfa-admin",
    "fish": "/usr/share/fish/vendor_completions.d/mfa-admin.fish",
}
UNITS = ["mfa-sender.service", "mfa-maintenance.service", "mfa-maintenance.timer", "mfa-fleetd.service"]


@pytest.fixture(scope="module")
def install():
    """The install itself, once: (exit status, apt's output)."""
    assert not os.path.exists("/run/systemd/system"), "systemd runs here: this case is for a machine without it"
    assert pkg.status("mfa") in ("unknown", "unknown ok not-installed"), pkg.status("mfa")
    status, out = pkg.install(pkg.DEB_MFA, pkg.DEB_PAM, umask=0o077)
    with open(os.path.join(harness.WORK, "install.log"), "w") as f:
        f.write(out)
    return status, out


def test_apt_install_succeeds_without_systemd(install):
    status, out = install
    assert status == 0, out
    version = pkg.deb_version(pkg.DEB_MFA)
    for p in ("mfa", "libpam-mfa"):
        assert pkg.status(p) == f"install ok installed {version}", f"{p}: {pkg.status(p)}\n{out}"
    # Enabled for the next boot (deb-systemd-helper works without systemd), not started by
    # hand: no sender runs until systemd (or the administrator) starts one.
    for unit in ("mfa-sender.service", "mfa-maintenance.timer"):
        with open(f"/lib/systemd/system/{unit}") as f:
            targets = " ".join(re.findall(r"(?m)^WantedBy=(.*)$", f.read())).split()
        assert targets, f"{unit} has no WantedBy="
        for t in targets:
            link = f"/etc/systemd/system/{t}.wants/{unit}"
            assert os.path.islink(link) and os.readlink(link) == f"/lib/systemd/system/{unit}", \
                f"{unit} not enabled by the postinst: no {link}\n{out}"
    assert pkg.processes("mfa-sender") == [], "the postinst started mfa-sender outside systemd"
    # mfa-fleetd is for fleet hosts only: installed, not enabled, not started.
    assert os.path.isfile("/lib/systemd/system/mfa-fleetd.service")
    wants = [os.path.join(d, n) for d, _, ns in os.walk("/etc/systemd/system") for n in ns
             if n == "mfa-fleetd.service"]
    assert not wants, f"the postinst enabled mfa-fleetd.service on a single machine: {wants}"
    assert pkg.processes("mfa-fleetd") == [], "the postinst started mfa-fleetd"
    errors = [l for l in out.splitlines() if re.match(r"(E: |dpkg: error|.*maintainer script)", l)]
    assert not errors, out


def test_config_is_a_conffile(install):
    conffiles = run("dpkg-query", "-W", "-f", "${Conffiles}", "mfa").stdout.split()
    assert "/etc/mfa/mfa.toml" in conffiles, f"mfa.toml is not a conffile: {conffiles}"
    # Never world-readable, not even between unpack and postinst (0640 in the package).
    st = run("dpkg-deb", "-c", pkg.DEB_MFA).stdout
    assert re.search(r"(?m)^-rw-r----- root/root .* \./etc/mfa/mfa\.toml$", st), st


def test_postinst_made_the_account_and_the_ownership_model(install):
    pw = pwd.getpwnam("mfa")
    assert pw.pw_uid < 1000, f"mfa is not a system account: {pw}"
    assert pw.pw_shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false"), pw
    assert not os.path.exists(pw.pw_dir) or pw.pw_dir == "/nonexistent", pw
    assert os.getgrouplist("mfa", pw.pw_gid) == [pw.pw_gid], "mfa belongs to more groups than its own"
    wrong = ownership_errors()
    assert not wrong, "after the install under umask 077 (nobody ran init):\n" + "\n".join(wrong)
    assert harness.mode_owner("/var/lib/mfa/mfa.db")[:2] == (0o600, "root")


def test_install_changes_no_pam_file(install):
    pristine = pkg.common_files(pkg.PRISTINE)
    assert pkg.common_files() == pristine, "the install changed /etc/pam.d/common-*: the profile must be Default: no"
    for name in sorted(os.listdir(pkg.PRISTINE)):
        with open(os.path.join(pkg.PRISTINE, name), "rb") as a, open(f"/etc/pam.d/{name}", "rb") as b:
            assert a.read() == b.read(), f"the install changed /etc/pam.d/{name}"
    assert sorted(os.listdir("/etc/pam.d")) == sorted(os.listdir(pkg.PRISTINE))


def test_profile(install):
    with open("/usr/share/pam-configs/mfa") as f:
        text = f.read()
    fields = dict(re.findall(r"(?m)^([A-Z][\w-]*):[ \t]*(.*)$", text))
    assert fields.get("Default") == "no", text
    assert fields.get("Auth-Type") == "Additional", text  # after the password block
    assert re.search(r"(?m)^Auth:\s*\n\s+required\s+pam_mfa\.so", text), text
    assert harness.mode_owner("/usr/share/pam-configs/mfa") == (0o644, "root", "root")


def test_module_and_binaries(install):
    mods = pkg.pam_mfa_modules()
    assert mods == [os.path.realpath(f"{os.environ['MFA_PAMDIR']}/pam_mfa.so")], mods
    assert harness.mode_owner(mods[0]) == (0o644, "root", "root")
    for b in ("mfa-admin", "mfa-sender", "mfa-fleetd"):
        assert harness.mode_owner(f"/usr/sbin/{b}") == (0o755, "root", "root")
    # On a single machine ([store] backend sqlite) it refuses to run: exit 2, which the
    # unit's RestartPreventExitStatus=2 keeps from restarting.
    p = run("mfa-fleetd", "--once", check=False)
    assert p.returncode == 2 and "[store]" in p.stderr, p.stdout + p.stderr
    p = run("mfa-admin", "--version", check=False)
    assert p.returncode == 0 and pkg.deb_version(pkg.DEB_MFA).split("~")[0].split("-")[0] in p.stdout, \
        p.stdout + p.stderr


@pytest.mark.parametrize("section,name", MANPAGES, ids=[f"{n}({s})" for s, n in MANPAGES])
def test_man_page(install, section, name):
    p = run("man", "-w", section, name, check=False)
    path = p.stdout.strip()
    assert p.returncode == 0 and path.startswith(f"/usr/share/man/man{section}/{name}.{section}"), \
        f"man -w {section} {name}: {p.stdout}{p.stderr}"
    # It renders (the content checks are the man pages' own tests).
    r = subprocess.run(["man", "-P", "cat", section, name], capture_output=True, text=True,
                       env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
    assert r.returncode == 0 and len(r.stdout) > 200, r.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_unit_documentation_resolves(install, unit):
    path = f"/lib/systemd/system/{unit}"
    with open(path) as f:
        docs = " ".join(re.findall(r"(?m)^Documentation=(.*)$", f.read())).split()
    if unit in ("mfa-sender.service", "mfa-fleetd.service"):
        assert docs, f"{path} has no Documentation="
    for d in docs:
        m = re.fullmatch(r"man:([\w.+-]+)\((\d)\)", d)
        if m:
            p = run("man", "-w", m.group(2), m.group(1), check=False)
            assert p.returncode == 0, f"{path}: Documentation={d} does not resolve: {p.stderr}"
        elif d.startswith("file:"):
            assert os.path.exists(d[len("file:"):]), f"{path}: Documentation={d} does not exist"


@pytest.mark.parametrize("shell", COMPLETIONS)
def test_completion_installed(install, shell):
    path = COMPLETIONS[shell]
    assert harness.mode_owner(path)[:2] == (0o644, "root"), path
    with open(path) as f:
        text = f.read()
    want = {"bash": "mfa-admin", "zsh": "#compdef mfa-admin", "fish": "complete -c mfa-admin"}[shell]
    assert want in text, f"{path} does not look like a {shell} completion of mfa-admin"


def test_bash_completes_subcommands(install):
    """bash-completion loads the file on demand, as an interactive shell does."""
    loader = "/usr/share/bash-completion/bash_completion"
    if not os.path.exists(loader):
        pytest.skip("bash-completion is not installed")
    script = f"""
. {loader}
_completion_loader mfa-admin
f=$(complete -p mfa-admin | sed -n 's/.* -F \\([^ ]*\\) .*/\\1/p')
[ -n "$f" ] || {{ echo "no completion function for mfa-admin"; exit 1; }}
COMP_WORDS=(mfa-admin se); COMP_CWORD=1; COMP_LINE="mfa-admin se"; COMP_POINT=${{#COMP_LINE}}
"$f" mfa-admin se mfa-admin
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    p = run("bash", "-c", script, check=False)
    words = p.stdout.split()
    assert p.returncode == 0 and "service" in words and "settings" in words, p.stdout + p.stderr


def test_enable_profile_puts_pam_mfa_in_common_auth_only(install):
    status, out = pkg.command(["pam-auth-update", "--enable", "mfa"])
    assert status == 0, out
    pristine = pkg.common_files(pkg.PRISTINE)
    now = pkg.common_files()
    for name in pkg.COMMON:
        if name != "common-auth":
            assert now[name] == pristine[name], f"pam-auth-update --enable mfa changed {name}"
    before = pristine["common-auth"].decode().splitlines()
    after = now["common-auth"].decode().splitlines()
    added = [l for l in after if l not in before]
    assert len(added) == 1 and "pam_mfa.so" in added[0] and [l for l in after if l in before] == before, \
        "common-auth after --enable mfa:\n" + "\n".join(after)
    # After the password block (pam_unix, pam_deny, pam_permit), checked by the harness as
    # the login cases will use it; no service file names pam_mfa a second time.
    harness.check_profile()
