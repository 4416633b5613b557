#!/bin/bash
# tests/package/namespace.sh — runs inside the mount and PID namespaces tests/package/run.sh
# made: turns this namespace into a throwaway copy of the machine without mfa, then runs the
# phase's pytest files (MFA_PHASE=install|upgrade|hostile|attacks). Never run it directly: its mounts and
# package installs would change the machine.
#
#   /etc             a full copy (cp -a): adduser, pam-auth-update, dpkg's conffiles
#   /usr, /var       overlays whose upper layers live on a tmpfs: the packages' files (on a
#                    usrmerged system /lib is /usr/lib: the PAM module, the units), dpkg's
#                    and apt's databases, /var/lib/mfa, /var/spool/mfa, /var/log, /var/mail
#   /run, /home      empty tmpfs (with /run/sshd, /run/lock, /run/utmp)
#   $MFA_WORK        a tmpfs: copies, upper layers, logs, TMPDIR, and a copy of the .debs (a
#                    `make deb` running meanwhile does not change what is tested)
set -euo pipefail
[ "$$" = 1 ] || { echo "namespace.sh: not in a new PID namespace; run tests/package/run.sh" >&2; exit 2; }
: "${MFA_WORK:?}" "${MFA_REPO:?}" "${MFA_PHASE:?}" "${MFA_DEB_MFA:?}" "${MFA_DEB_PAM:?}"
w=$MFA_WORK
cd "$MFA_REPO"

mount --make-rprivate /
# Every copy, upper layer, temporary file and log of the run lives on this tmpfs: it vanishes
# with the namespace, and overlays work even where /tmp is itself an overlay (containers).
mount -t tmpfs -o mode=0700 tmpfs "$w"
mkdir -m 1777 "$w/tmp" "$w/debs"
cp "$MFA_DEB_MFA" "$MFA_DEB_PAM" "$w/debs/"
export MFA_DEB_MFA="$w/debs/${MFA_DEB_MFA##*/}" MFA_DEB_PAM="$w/debs/${MFA_DEB_PAM##*/}" TMPDIR="$w/tmp"

# copy_over, overlay, fresh_run_and_home
. "$MFA_REPO/tests/lib/throwaway-root.sh"

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
pamdir=/lib/$multiarch/security
copy_over /etc
overlay /usr
overlay /var
# Not usrmerged: the packages also write under /lib (the module, the units).
if [ ! -L /lib ]; then
  copy_over "$pamdir"
  copy_over /lib/systemd/system
fi
fresh_run_and_home

# A machine without mfa: whatever a real install (packages or make install) left here is
# hidden, in this copy only.
if dpkg-query -W -f '${Status}\n' mfa libpam-mfa 2>/dev/null | grep -qv 'not-installed'; then
  echo "note: mfa's packages are installed on this machine: purging them in the throwaway root"
  dpkg --purge libpam-mfa mfa >"$w/pre-purge.log" 2>&1 || { cat "$w/pre-purge.log"; exit 1; }
fi
rm -rf /etc/mfa /var/lib/mfa /var/spool/mfa /etc/sudoers.d/mfa-* /etc/ssh/sshd_config.d/mfa.conf \
  "$pamdir/pam_mfa.so" /usr/local/sbin/mfa-admin /usr/local/sbin/mfa-sender /usr/share/pam-configs/mfa
# The FTP servers this machine has for pam_mfa's own system tests (proftpd-basic) are not
# part of the machine these suites install on: with pam_mfa in common-auth, doctor rightly
# fails proftpd's default proftpd.conf (no authoritative AuthOrder). Gone in this copy only.
rm -rf /etc/pam.d/proftpd /etc/pam.d/vsftpd /etc/proftpd
for u in alice target bob mfa; do
  if getent passwd "$u" >/dev/null; then userdel -f "$u"; fi
  if getent group "$u" >/dev/null; then groupdel "$u" || true; fi
done
if grep -q pam_mfa /etc/pam.d/common-auth; then
  echo "FAIL: /etc/pam.d/common-auth of this machine names pam_mfa although mfa's packages are" \
    "not installed: the suite compares common-* with the state before the install" >&2
  exit 1
fi
# Debian's pam.d files as they were: purge must give back exactly these common-* files.
cp -a /etc/pam.d "$w/pam.d.pristine"

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8 MFA_PAMDIR="$pamdir" MFA_INSTALL=deb \
  DEBIAN_FRONTEND=noninteractive
unset MFA_CONFIG

rc=0
pytest() { # pytest DIR FILE...: one pytest session in DIR; rc=1 when it fails
  local dir=$1 r
  shift
  (cd "$dir" && /usr/bin/python3 -m pytest -p no:cacheprovider -v -rfEs --tb=short --no-header \
    "$@" "${ARGS[@]}")
  r=$?
  # 5: no test selected (a -k of the caller's matched nothing in this session)
  if [ $r -ne 0 ] && [ $r -ne 5 ]; then rc=1; fi
  return $r
}
ARGS=("$@")
set +e
case $MFA_PHASE in
  install)
    echo "== install: apt-get install the packages, the profile enabled"
    pytest tests/package test_pkg_1_install.py
    if [ -n "${MFA_PACKAGE_NO_LOGINS:-}" ]; then
      echo "NOTE: MFA_PACKAGE_NO_LOGINS is set: the login cases are left out"
    elif dpkg-query -W -f '${Status}' mfa 2>/dev/null | grep -q 'ok installed' &&
       grep -q pam_mfa /etc/pam.d/common-auth; then
      echo "== install: the installed-system login cases against the packages (MFA_INSTALL=deb)"
      pytest tests/installed .
    else
      echo "FAIL: the packages are not installed or the profile is not enabled: the login cases did not run" >&2
      rc=1
    fi
    echo "== install: reinstall, remove, purge"
    pytest tests/package test_pkg_2_remove.py
    ;;
  upgrade)
    echo "== upgrade: a lower version of the same source, used, then the new packages; the README's Uninstall"
    pytest tests/package test_pkg_3_upgrade.py test_pkg_5_readme.py
    ;;
  hostile)
    echo "== hostile: the maintainer scripts on a machine that is not as they expect"
    pytest tests/package test_pkg_4_hostile.py
    ;;
  attacks)
    echo "== attacks: an administrator's mistakes a local user can use, each from a machine without mfa"
    pytest tests/package test_pkg_6_attacks.py
    ;;
  *)
    echo "namespace.sh: unknown MFA_PHASE=$MFA_PHASE" >&2
    exit 2
    ;;
esac
exit $rc
