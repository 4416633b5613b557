"""The README's Quick start, run as written: every ```sh block of that section, in order, as
root (`sudo` as root asks nothing), in a nested mount namespace where /etc/mfa,
/var/lib/mfa, /var/spool/mfa and /run/mfa start empty and /etc/pam.d holds Debian's own
files. What the README leaves to prose is done between the blocks: the [smtp] section for
the local server after the first block, and `systemctl enable --now mfa-sender` becomes the
sender started as user mfa (no systemd here; other systemctl lines are skipped). Each block
must succeed as a whole (`set -e`), the test message must arrive, and `doctor` at the end
must exit 0. MFA_INSTALL=deb: the same from the packages' state (the packaged mfa.toml and
the postinst's `mfa-admin init` in the empty directories first; the examples where the
README's prose says the packages put them)."""

import os
import re
import subprocess

import harness


def quick_start_blocks():
    with open(os.path.join(harness.REPO, "README.md")) as f:
        text = f.read()
    m = re.search(r"^## Quick start\n(.*?)(?=^## )", text, re.M | re.S)
    assert m, "README.md has no '## Quick start' section"
    blocks = re.findall(r"^```sh\n(.*?)^```", m.group(1), re.M | re.S)
    assert blocks, "the Quick start has no ```sh block"
    return blocks


START_SENDER = f"""\
setpriv --reuid mfa --regid mfa --init-groups -- {harness.SBIN}/mfa-sender --config /etc/mfa/mfa.toml \\
  >>"$D/sender.log" 2>&1 &
SENDER=$!
for i in $(seq 100); do [ -e /run/mfa/sender.heartbeat ] && break; sleep 0.1; done
[ -e /run/mfa/sender.heartbeat ] || {{ echo "sender did not start:"; cat "$D/sender.log"; exit 1; }}
"""
# "(From the packages the examples are in /usr/share/doc/mfa/examples.)"
MAKE_EXAMPLES = "/usr/local/share/doc/mfa/examples"


def script(blocks, smtp_port):
    out = ["set -e", 'trap \'[ -n "${SENDER:-}" ] && kill $SENDER 2>/dev/null; true\' EXIT']
    for n, block in enumerate(blocks, 1):
        out.append(f"echo '== README Quick start, block {n}'")
        for line in block.splitlines():
            if "systemctl" in line:
                if "mfa-sender" in line and ("--now" in line or " start" in line):
                    out.append(START_SENDER)
                continue
            out.append(line.replace(MAKE_EXAMPLES, harness.EXAMPLES))
        if n == 1:  # "Then give the sender a way out (an [smtp] section ...)"
            out.append(f"printf '\\n[smtp]\\nhost = \"127.0.0.1\"\\nport = {smtp_port}\\n"
                       f"tls = \"none\"\\nfrom = \"mfa@{harness.DOMAIN}\"\\n' >> /etc/mfa/mfa.toml")
    return "\n".join(out) + "\n"


# Deb mode: what the package leaves before the administrator's first command: its conffile
# and the postinst's init.
PACKAGE_STATE = """dpkg-deb --fsys-tarfile "$MFA_DEB_MFA" | tar -x -C / ./etc/mfa/mfa.toml
mfa-admin init >"$D/postinst-init.log"
"""


def test_readme_quick_start_runs_as_written(system):
    d = os.path.join(harness.WORK, "readme")
    os.makedirs(d, exist_ok=True)
    body = script(quick_start_blocks(), system.smtp_port)
    with open(os.path.join(d, "quick-start.sh"), "w") as f:
        f.write(body)
    setup = f"""set -e
D={d}
for p in /etc/mfa /var/lib/mfa /var/spool/mfa /run/mfa; do mount -t tmpfs -o mode=0755 tmpfs $p; done
cp -a "$MFA_WORK/pam.d.pristine" "$D/pam.d"
mount --bind "$D/pam.d" /etc/pam.d
{PACKAGE_STATE if harness.MODE == "deb" else ""}
cd "$D"
export D
exec bash -x "$D/quick-start.sh"
"""
    mark = system.mailbox.mark()
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", setup],
                       capture_output=True, text=True, timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode == 0, f"the Quick start stopped (exit {p.returncode}):\n{out[-4000:]}"
    assert f"== README Quick start, block {body.count('== README')}" in out, out[-4000:]
    system.mailbox.wait_mail("alice@example.com", mark)
    assert "mfa-admin doctor" in body, "the Quick start no longer runs doctor"
    # Its pam.d step put the line into Debian's files (in the nested copy).
    for s in harness.PAM_SERVICES:
        with open(os.path.join(d, "pam.d", s)) as f:
            assert harness.PAM_LINE in f.read().splitlines(), f"/etc/pam.d/{s} after the Quick start"
