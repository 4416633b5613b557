#!/usr/bin/env bash
# scripts/demo.sh — see mfa work on a fresh Debian 12 machine, as root, in one command:
#
#     sudo scripts/demo.sh
#
# Installs what it needs, builds mfa, and starts (all on 127.0.0.1): a demo sshd on port
# 2222 guarded by pam_mfa (password + passcode), a local SMTP server that prints the mail it
# receives, and mfa-sender. Creates a demo user and tells you how to log in. Ctrl-C stops it
# and leaves the machine as it was: processes stopped, the demo user (and the account mfa,
# if the demo created it), PAM file and temporary files removed, the Debian packages (and the rustup toolchain) it installed removed again
# (the build in target/ stays).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "run as root: sudo $0" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/.." && pwd)
port=${MFA_DEMO_PORT:-2222}
smtp_port=${MFA_DEMO_SMTP_PORT:-2525}
user=mfademo
password=$(head -c 9 /dev/urandom | base64 | tr -d '/+=' | head -c 10)
service=mfa-demo-sshd
work=$(mktemp -d /tmp/mfa-demo.XXXXXX)
pids=()
installed=()
rustup_installed=
# The sender's system account, as on a real install; removed again if the demo created it.
sender_account_created=

cleanup() {
  set +e
  trap - EXIT INT TERM
  echo; echo "stopping the demo..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  userdel -r "$user" 2>/dev/null
  [ -n "$sender_account_created" ] && userdel mfa 2>/dev/null
  rm -f "/etc/pam.d/$service"
  rm -rf "$work"
  if [ -n "$rustup_installed" ]; then
    echo "removing the Rust toolchain this demo installed"
    "$HOME/.cargo/bin/rustup" self uninstall -y >/dev/null 2>&1
  fi
  if [ ${#installed[@]} -gt 0 ]; then
    echo "purging the packages this demo installed: ${installed[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${installed[@]}" >/dev/null
  fi
  echo "done: the machine is as it was (the build stays in $repo/target)."
}
trap cleanup EXIT INT TERM

need=(openssh-server python3-aiosmtpd libpam0g-dev gcc make pkg-config ca-certificates)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -q >/dev/null
  # Do not let the package start the system's own sshd.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
  installed=("${missing[@]}")
fi
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null; then
  # Debian 12's rustc is too old for this code: fetch the current toolchain with rustup
  # (minimal profile), and remove it again when the demo stops.
  echo "installing Rust with rustup (removed again when the demo stops)"
  command -v curl >/dev/null || { apt-get update -q >/dev/null; apt-get install -y -q --no-install-recommends curl >/dev/null; installed+=(curl); }
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y -q --profile minimal --no-modify-path
  rustup_installed=1
fi

echo "building mfa (release)..."
(cd "$repo" && cargo build --release -q -p mfa-admin -p mfa-sender -p pam_mfa)
bin="$repo/target/release"

mkdir -p "$work/ssh"
# mfa-sender runs as the unprivileged account mfa: it must reach its config, spool and binary.
chmod 755 "$work"
cp "$bin/mfa-sender" "$work/mfa-sender"
id mfa >/dev/null 2>&1 || sender_account_created=1
cat > "$work/mfa.toml" <<TOML
[paths]
database = "$work/db/mfa.db"
spool = "$work/spool"
runtime = "$work/run"

[smtp]
host = "127.0.0.1"
port = $smtp_port
tls = "none"
from = "mfa-demo@localhost"
TOML
chmod 600 "$work/mfa.toml"
admin() { "$bin/mfa-admin" --config "$work/mfa.toml" "$@" >/dev/null; }
# Creates the account mfa and gives it the config (root:mfa 0640), spool and runtime directory.
admin init
admin settings set enabled=on repeat_window=0
useradd -m -s /bin/bash "$user"
echo "$user:$password" | chpasswd
admin user add "$user" --full-name "mfa demo user"
admin contact add "$user" --email "$user@demo.example"

# The SMTP server prints every mail it receives (the passcode is in it).
/usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Debugging stdout &
pids+=($!)
sleep 1
setpriv --reuid mfa --regid mfa --init-groups "$work/mfa-sender" --config "$work/mfa.toml" 2> "$work/sender.log" &
pids+=($!)
sleep 1
if [ ! -e "$work/run/sender.heartbeat" ]; then
  echo "mfa-sender did not start:" >&2; cat "$work/sender.log" >&2; exit 1
fi

# sshd's PAM service is the name it is started by: a symlink keeps /etc/pam.d/sshd untouched.
cat > "/etc/pam.d/$service" <<PAM
auth     requisite pam_unix.so
auth     required  $bin/libpam_mfa.so config=$work/mfa.toml
account  required  pam_unix.so
session  required  pam_permit.so
PAM
admin service set "$service" passcode
ssh-keygen -q -t ed25519 -N '' -f "$work/ssh/host_key"
cat > "$work/ssh/sshd_config" <<SSHD
ListenAddress 127.0.0.1
Port $port
HostKey $work/ssh/host_key
PidFile $work/ssh/sshd.pid
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
PubkeyAuthentication no
AuthenticationMethods keyboard-interactive
AllowUsers $user
SSHD
mkdir -p /run/sshd
ln -s /usr/sbin/sshd "$work/ssh/$service"
"$work/ssh/$service" -D -e -f "$work/ssh/sshd_config" 2> "$work/sshd.log" &
pids+=($!)
sleep 1

cat <<MSG

mfa demo is running.
  Log in from another terminal:   ssh -p $port $user@127.0.0.1
  Password:                       $password
  Passcode:                       printed below, in the mail the local SMTP server receives
  The auth log:                   $bin/mfa-admin --config $work/mfa.toml log show
Press Ctrl-C here to stop the demo and clean up.

MSG
wait
