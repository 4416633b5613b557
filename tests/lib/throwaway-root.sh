# tests/lib/throwaway-root.sh — the mounts that turn a new mount namespace into a throwaway
# copy of the machine, shared by tests/installed/namespace.sh and tests/package/namespace.sh.
# Sourced (not run) after `mount --make-rprivate /`, with $w the run's tmpfs: every copy and
# upper layer lives there and vanishes with the namespace.

# copy_over DIR: bind a private copy of DIR (created empty when missing) over it.
copy_over() {
  local d=$1 c
  c="$w/copy$(echo "$d" | tr / _)"
  if [ -d "$d" ]; then cp -a "$d" "$c"; else mkdir -p "$d" "$c"; fi
  mount --bind "$c" "$d"
}

# overlay DIR: writes to DIR go to an upper layer in $w.
overlay() {
  local d=$1 n
  n="$w/ov$(echo "$d" | tr / _)"
  mkdir -p "$n/up" "$n/work"
  mount -t overlay overlay -o "lowerdir=$d,upperdir=$n/up,workdir=$n/work" "$d"
}

# fresh_run_and_home: empty tmpfs on /run and /home, with what sshd, su and login expect
# (/run/sshd, /run/lock, /run/utmp).
fresh_run_and_home() {
  mount -t tmpfs -o mode=0755 tmpfs /run
  mount -t tmpfs -o mode=0755 tmpfs /home
  install -d -m 0755 /run/sshd
  install -d -m 1777 /run/lock
  install -m 0664 -g utmp /dev/null /run/utmp
}
