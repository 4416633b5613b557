#!/bin/bash
# tests/installed/run.sh — entry point of the installed-system suite (`make test-installed`).
#
# Installs mfa with `make install` into the real paths (/usr/local/sbin, the multiarch PAM
# directory, /lib/systemd/system) of a throwaway root, runs `mfa-admin init`, starts
# mfa-sender as the system user `mfa` against a local SMTP server, creates real users and
# drives su, su -, su -l, sudo, sudo -i, login and a real sshd on a pseudo-terminal from the
# non-root user `alice` (real uid alice, euid 0 inside su/sudo), reading each passcode from
# the delivered mail; every flow under umask 022 and 077 (tests/installed/test_*.py). A
# throwaway PostgreSQL logs users in through PAM as `postgres`, which pam_mfa serves through
# the setuid helper mfa-check, driven by psql and pamtester; the helper is abused directly
# as postgres and nobody (test_91_unprivileged.py). Duo (test_95_duo.py): the sender brokers
# a local Auth API mock (tests/lib/mock_duo.py, a throwaway openssl certificate) for ssh, su,
# sudo and mfa-admin. Many users (test_96_many_users.py): groups following Unix groups,
# notices through the real sender, imports, backup/restore during logins, mfa-admin verify,
# and the units' commands run in a sandbox like the units' (unitsandbox.py: needs
# systemd-analyze and libseccomp.so.2).
#
# The throwaway root is a mount namespace (namespace.sh): private copies of /etc, the PAM
# module directory and /lib/systemd/system, overlays on /var and /usr/local, tmpfs on /run
# and /home. It also has its own PID namespace, so every process it started (sshd, sender,
# SMTP server) dies with it, whatever happens. The machine is left as it was: no user, no
# pam.d line, no file under /etc, /var, /usr/local survives the run.
#
# Needs root; prints SKIP and exits 0 without it. MFA_PROFILE=release|debug picks the build
# that gets installed (target/<profile>, which must exist: `make build` or `make test`
# builds it). Arguments go to pytest (`run.sh -k sudo -x`). Exit status: 0 when every case
# passed.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" != 0 ]; then
  echo "SKIP tests/installed: needs root (it installs mfa into a private mount namespace)"
  exit 0
fi

profile=${MFA_PROFILE:-release}
missing=()
for f in "target/$profile/mfa-admin" "target/$profile/mfa-sender" "target/$profile/mfa-fleetd" "target/$profile/libpam_mfa.so" \
         "target/$profile/mfa-check"; do
  [ -f "$f" ] || missing+=("$f (run: make build, or MFA_PROFILE=debug after cargo build)")
done
for c in unshare:util-linux setpriv:util-linux su:util-linux login:login sudo:sudo \
         useradd:passwd chpasswd:passwd /usr/sbin/sshd:openssh-server ssh:openssh-client \
         ssh-keygen:openssh-client oathtool:oathtool make:make psql:postgresql \
         pamtester:pamtester prlimit:util-linux openssl:openssl gpasswd:passwd \
         systemd-analyze:systemd; do
  command -v "${c%%:*}" >/dev/null || missing+=("${c%%:*} (apt-get install ${c#*:})")
done
for m in pexpect:python3-pexpect pytest:python3-pytest aiosmtpd:python3-aiosmtpd; do
  /usr/bin/python3 -c "import ${m%%:*}" 2>/dev/null || missing+=("python module ${m%%:*} (apt-get install ${m#*:})")
done
if [ ${#missing[@]} -gt 0 ]; then
  printf 'FAIL tests/installed: missing %s\n' "${missing[@]}" >&2
  exit 1
fi

# What the suite changes inside its namespace, as seen from the machine: must not change.
pamdir=$(make -s --no-print-directory print-pamdir)
fingerprint() {
  sha256sum /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/sudoers 2>&1 | grep -v '^sha256sum' || true
  for s in su su-l sudo sudo-i login sshd postgresql; do sha256sum "/etc/pam.d/$s" 2>&1 || true; done
  ls -la /etc/sudoers.d /etc/ssh/sshd_config.d 2>&1 || true
  ls -lad /etc/mfa /var/lib/mfa /var/spool/mfa /run/mfa /run/sshd /home/alice /home/target \
    /usr/local/sbin/mfa-admin /usr/local/sbin/mfa-sender /usr/local/sbin/mfa-fleetd /usr/local/share/doc/mfa \
    "$pamdir/pam_mfa.so" /lib/systemd/system/mfa-sender.service /lib/systemd/system/mfa-fleetd.service 2>&1 || true
}
before=$(fingerprint)

work=$(mktemp -d /tmp/mfa-installed.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Private mounts (nothing propagates back), a PID namespace whose processes all die when
# the suite ends (--kill-child: also when this script is killed), a hard time limit.
set +e
timeout --kill-after=10 420 \
  unshare --mount --propagation private --pid --fork --mount-proc --kill-child \
  env MFA_PROFILE="$profile" MFA_REPO="$PWD" MFA_WORK="$work" tests/installed/namespace.sh "$@"
rc=$?
set -e
[ $rc -eq 124 ] && echo "FAIL tests/installed: timed out after 420 s" >&2
after=$(fingerprint)
if [ "$before" = "$after" ]; then
  echo "PASS tests/installed: the machine is as it was (accounts, pam.d, sudoers, mfa's paths)"
else
  echo "FAIL tests/installed: the machine changed (or something else changed it meanwhile):" >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  rc=1
fi
[ $rc -eq 0 ] && echo "PASS tests/installed" || echo "FAIL tests/installed (exit $rc)"
exit $rc
