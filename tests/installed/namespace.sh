#!/bin/bash
# tests/installed/namespace.sh — runs inside the mount and PID namespaces run.sh made:
# turns this namespace into a throwaway copy of the machine, installs mfa with
# `make install` and runs the pytest cases. Never run it directly: its mounts would change
# the machine.
#
#   /etc                       a full copy (cp -a), so useradd's renames and pam.d edits work
#   /var, /usr/local           overlays whose upper layers live on a tmpfs: /var/lib/mfa,
#                              /var/spool/mfa, /var/log, /var/mail change only there
#   /run, /home                empty tmpfs (with /run/sshd, /run/lock, /run/utmp)
#   PAM module dir, unit dir   private copies, so `make install` can write there
set -euo pipefail
[ "$$" = 1 ] || { echo "namespace.sh: not in a new PID namespace; run tests/installed/run.sh" >&2; exit 2; }
: "${MFA_WORK:?}" "${MFA_REPO:?}" "${MFA_PROFILE:?}"
w=$MFA_WORK
cd "$MFA_REPO"

# Every copy, upper layer and log of the run lives on this tmpfs: it vanishes with the
# namespace, and overlays work even where /tmp is itself an overlay (containers).
mount --make-rprivate /
mount -t tmpfs -o mode=0700 tmpfs "$w"
pamdir=$(make -s --no-print-directory print-pamdir)
unitdir=/lib/systemd/system

# copy_over, overlay, fresh_run_and_home
. "$MFA_REPO/tests/lib/throwaway-root.sh"

copy_over /etc
copy_over "$pamdir"
copy_over "$unitdir"
overlay /var
overlay /usr/local
fresh_run_and_home
# A fresh machine as far as mfa goes: whatever a real install left here is hidden.
rm -rf /etc/mfa /var/lib/mfa /var/spool/mfa /etc/sudoers.d/mfa-* \
  "$pamdir/pam_mfa.so" /usr/local/sbin/mfa-admin /usr/local/sbin/mfa-sender /usr/local/sbin/mfa-fleetd

# The FTP servers this machine has for pam_mfa's own system tests (proftpd-basic) are not
# part of the machine these suites install on: with pam_mfa in common-auth, doctor rightly
# fails proftpd's default proftpd.conf (no authoritative AuthOrder). Gone in this copy only.
rm -rf /etc/pam.d/proftpd /etc/pam.d/vsftpd /etc/proftpd
# A fresh machine: the accounts the suite and init create do not exist yet (in this copy).
for u in alice target mfa; do
  if getent passwd "$u" >/dev/null; then userdel -f "$u"; fi
  if getent group "$u" >/dev/null; then groupdel "$u" || true; fi
done

# Debian's pam.d files as they were (the README case starts from them).
cp -a /etc/pam.d "$w/pam.d.pristine"

echo "== make install (PROFILE=$MFA_PROFILE NO_BUILD=1)"
if ! make -s --no-print-directory install NO_BUILD=1 PROFILE="$MFA_PROFILE" >"$w/install.log" 2>&1; then
  cat "$w/install.log"
  echo "FAIL make install"
  exit 1
fi

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8 MFA_PAMDIR="$pamdir"
unset MFA_CONFIG
cd "$MFA_REPO/tests/installed"
set +e
/usr/bin/python3 -m pytest -p no:cacheprovider -v -rfE --tb=short --no-header "$@" .
rc=$?
exit $rc
