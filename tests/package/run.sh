#!/bin/bash
# tests/package/run.sh — entry point of the Debian package suite (`make test-package`, after
# `make deb`).
#
# Installs the packages of target/deb/ (mfa and libpam-mfa, never the -dbgsym ones) with
# `apt-get install ./…deb` into a throwaway root, as an administrator would, and checks what
# Debian expects of a PAM module's packages (tests/package/test_pkg_*.py):
#   install   postinst made the user mfa and the ownership model (nobody ran init), left
#             /etc/pam.d alone (the profile is Default: no) and did not fail without systemd;
#             man pages, completions, the units' Documentation=; `pam-auth-update --enable
#             mfa`; then the installed-system login cases of tests/installed (su, sudo, login,
#             sshd from the non-root alice, the code read from the delivered mail) in deb mode
#             (MFA_INSTALL=deb); a reinstall changes nothing and repairs a drifted mode;
#             remove (warns about a hand-written pam_mfa line; logins need no code) and purge
#             (/etc/pam.d/common-* byte-identical to before, nothing of mfa's left)
#   upgrade   a lower version of the same source installed and used (rules, users, a TOTP
#             key, an edited mfa.toml), then the new packages: everything kept, no conffile
#             prompt, a login still works, doctor clean, a schema-2 database migrated;
#             then the README's Uninstall block as written
#   hostile   a person (not a system account) called mfa; links and a FIFO the sender's
#             account planted in the spool; a corrupt database; a config that is no TOML
#   attacks   `debian/rules clean` keeps files outside debian/; a system user mfa in nogroup,
#             a person in the group mfa, a /var/lib/mfa a user prepared: refused before init
#             hands them anything; apt-get remove with an edited common-auth block keeps
#             the module rather than lock everyone out
#
# The throwaway root is a mount and PID namespace per phase (namespace.sh): a copy of /etc,
# overlays on /usr (usrmerged: also /lib, so the PAM module and unit directories) and /var
# (dpkg's and apt's databases), tmpfs on /run and /home, TMPDIR on a tmpfs. Nothing the
# packages do
# reaches the machine, whatever happens; the fingerprint below checks it.
#
# Needs root and dpkg; prints SKIP and exits 0 without them. MFA_DEBS=DIR takes the .debs
# from DIR instead of target/deb. MFA_PACKAGE_PHASES="install upgrade hostile attacks" (default)
# picks the phases; MFA_PACKAGE_NO_LOGINS=1 leaves out the login cases (quicker, while working on the
# packaging; never in CI). Arguments go to every pytest run (`run.sh -x`). Exit status 0 when all passed.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v dpkg >/dev/null 2>&1; then
  echo "SKIP tests/package: dpkg not found (not a Debian system: the packages cannot be installed here)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "SKIP tests/package: needs root (it installs the packages into a private mount namespace)"
  exit 0
fi

debdir=${MFA_DEBS:-target/deb}
missing=()
debs=()
for p in mfa libpam-mfa; do
  # Exactly one package of each name, never a dbgsym (mfa-dbgsym_… does not match mfa_*).
  mapfile -t found < <(find "$debdir" -maxdepth 1 -name "${p}_*.deb" 2>/dev/null | sort)
  if [ ${#found[@]} -ne 1 ]; then
    missing+=("one $debdir/${p}_*.deb (found ${#found[@]}: run make deb)")
  else
    debs+=("$(realpath "${found[0]}")")
  fi
done
for c in unshare:util-linux setpriv:util-linux su:util-linux login:login sudo:sudo \
         useradd:passwd chpasswd:passwd /usr/sbin/sshd:openssh-server ssh:openssh-client \
         ssh-keygen:openssh-client oathtool:oathtool apt-get:apt dpkg-deb:dpkg \
         pam-auth-update:libpam-runtime man:man-db openssl:openssl; do
  command -v "${c%%:*}" >/dev/null || missing+=("${c%%:*} (apt-get install ${c#*:})")
done
for m in pexpect:python3-pexpect pytest:python3-pytest aiosmtpd:python3-aiosmtpd; do
  /usr/bin/python3 -c "import ${m%%:*}" 2>/dev/null || missing+=("python module ${m%%:*} (apt-get install ${m#*:})")
done
if [ ${#missing[@]} -gt 0 ]; then
  printf 'FAIL tests/package: missing %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "tests/package: ${debs[*]}"

# What the suite changes inside its namespaces, as seen from the machine: must not change.
fingerprint() {
  sha256sum /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/sudoers 2>&1 | grep -v '^sha256sum' || true
  for s in /etc/pam.d/*; do sha256sum "$s" 2>&1 || true; done
  ls -la /etc/sudoers.d /etc/ssh/sshd_config.d 2>&1 || true
  getent passwd mfa alice target 2>&1 || true
  getent group mfa 2>&1 || true
  dpkg-query -W -f '${Package} ${Status} ${Version}\n' mfa libpam-mfa 2>&1 || true
  ls -lad /etc/mfa /var/lib/mfa /var/spool/mfa /run/mfa /run/sshd /home/alice /home/target \
    /usr/sbin/mfa-admin /usr/sbin/mfa-sender /usr/sbin/mfa-fleetd /usr/local/sbin/mfa-admin /usr/local/sbin/mfa-sender \
    /usr/lib/*/security/pam_mfa.so /lib/*/security/pam_mfa.so /usr/share/pam-configs/mfa \
    /lib/systemd/system/mfa-* /etc/systemd/system/*/mfa-* /usr/share/doc/mfa 2>&1 || true
}
before=$(fingerprint)

work=$(mktemp -d /tmp/mfa-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
rc=0
for phase in ${MFA_PACKAGE_PHASES:-install upgrade hostile attacks}; do
  case $phase in install|upgrade|hostile|attacks) ;; *) echo "FAIL tests/package: unknown phase $phase" >&2; exit 2;; esac
  echo "== tests/package: phase $phase"
  mkdir -p "$work/$phase"
  # Private mounts (nothing propagates back), a PID namespace whose processes all die with
  # it (--kill-child: also when this script is killed), a hard time limit.
  set +e
  timeout --kill-after=10 420 \
    unshare --mount --propagation private --pid --fork --mount-proc --kill-child \
    env MFA_PHASE="$phase" MFA_REPO="$PWD" MFA_WORK="$work/$phase" MFA_DEB_MFA="${debs[0]}" \
    MFA_DEB_PAM="${debs[1]}" tests/package/namespace.sh "$@"
  r=$?
  set -e
  [ $r -eq 124 ] && echo "FAIL tests/package: phase $phase timed out after 420 s" >&2
  [ $r -eq 0 ] && echo "PASS tests/package: phase $phase" || { echo "FAIL tests/package: phase $phase (exit $r)"; rc=1; }
done

after=$(fingerprint)
if [ "$before" = "$after" ]; then
  echo "PASS tests/package: the machine is as it was (accounts, pam.d, dpkg's state, mfa's paths)"
else
  echo "FAIL tests/package: the machine changed (or something else changed it meanwhile):" >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  rc=1
fi
[ $rc -eq 0 ] && echo "PASS tests/package" || echo "FAIL tests/package (exit $rc)"
exit $rc
