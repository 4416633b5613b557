#!/usr/bin/env bash
# bench/fleet_bench.sh — HOSTS simulated fleet hosts following one PostgreSQL (issue 16):
#
#   1. a change made with mfa-admin on host 0 (`user add`), to the LAST host's new policy
#      snapshot: p50 / p99 over CHANGES changes, per host too; baseline in the same run,
#      interleaved: the same change on a single machine (SQLite), to its own snapshot;
#   2. central log ingestion (rows/s): ROWS auth-log rows in every host's local log, every
#      mfa-fleetd started at once, until the central count holds them all; baseline: host 0
#      shipping alone; checked: each host's rows centrally exactly once;
#   3. the login path on a fleet host vs a single-machine host with the same rules and
#      users (pambench through the system's libpam, interleaved rounds, p50/p99 and the
#      difference in %): the bypass path (trusted network) and the passcode path; the
#      fleet host's mfa-fleetd runs meanwhile, as it would.
#
# Each host is a directory of its own (mfa.toml, database, snapshot, spool, runtime) made by
# `mfa-admin init`; host 0 gets USERS users (email contact each), a trusted network for
# sshd and 10.0.0.0/8 requiring 2FA, then `migrate --to postgres`; the others `fleet join`.
# Every host runs its own `mfa-fleetd` (default [store] poll, 5 s). The single-machine host
# gets the same rules by the same commands. PostgreSQL is the newest installed
# (/usr/lib/postgresql/N), a throwaway cluster on 127.0.0.1 with TLS (the hosts verify it
# with a CA made here) and scram-sha-256, fsync on, max_connections sized for HOSTS.
# The measuring of 1 and 2 is mfa-fleet/examples/fleet_bench.rs. Everything lives in
# temporary directories (never /etc/mfa, /var/lib/mfa or /var/spool/mfa); every process
# (daemons, server, loops) and directory goes on exit, also on Ctrl-C.
#
# Usage: bench/fleet_bench.sh        (as root: the daemons run as root, the server as postgres)
# Environment:
#   HOSTS       fleet hosts (default 100)
#   CHANGES     measured changes (default 20; 2 more unreported first)
#   ROWS        auth-log rows per host for the ingestion (default 2000)
#   USERS       users in the rule set (default 1000)
#   N_LOGIN     pambench iterations per round and case (default 200); ROUNDS rounds (default 10)
#   WARMUP      unreported pambench iterations per case (default 50)
#   PAMBENCH_C, CARGO_TARGET_DIR, KEEP=1, CONSOLE=keep, NSS=system: as bench/common.sh
#
# Exit status: 0 when every part ran as intended; 1 when something failed to build or run,
# a change never reached a host, a host's rows did not arrive exactly once, or a login case
# did not take the path it was meant to.

# shellcheck disable=SC2059,SC2317  # printf formats in variables (as common.sh); the trap function
set -euo pipefail
bench_name=fleet_bench
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

hosts=${HOSTS:-100}
changes=${CHANGES:-20}
rows=${ROWS:-2000}
users=${USERS:-1000}
n_login=${N_LOGIN:-200}
rounds=${ROUNDS:-10}
[ "$hosts" -ge 2 ] || die "HOSTS must be at least 2"
[ "$(id -u)" = 0 ] || die "run as root (mfa-fleetd runs as root; PostgreSQL's server as postgres)"
id postgres >/dev/null 2>&1 || die "no user postgres (apt-get install postgresql)"

pgdir='' pg_pid='' loop_pid='' fleetd_pid='' driver_pid=''
cleanup_extra() {
    local pid i
    [ -z "$loop_pid" ] || kill "$loop_pid" 2>/dev/null || true
    [ -z "$driver_pid" ] || kill "$driver_pid" 2>/dev/null || true
    # Every mfa-fleetd started (the driver's and ours), by pid, if it is still one.
    if [ -n "${work:-}" ] && [ -f "$work/fleetd.pids" ]; then
        while read -r pid; do
            [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mfa-fleetd ] && kill -TERM "$pid" 2>/dev/null
        done <"$work/fleetd.pids"
        for i in $(seq 50); do
            alive=0
            while read -r pid; do
                [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mfa-fleetd ] && alive=1
            done <"$work/fleetd.pids"
            [ "$alive" = 0 ] && break
            sleep 0.1
        done
        while read -r pid; do
            [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mfa-fleetd ] && kill -KILL "$pid" 2>/dev/null
        done <"$work/fleetd.pids"
    fi
    if [ -n "$pg_pid" ]; then
        kill -INT "$pg_pid" 2>/dev/null || true
        for i in $(seq 100); do [ -d "/proc/$pg_pid" ] || break; sleep 0.1; done
        kill -KILL "$pg_pid" 2>/dev/null || true
        wait "$pg_pid" 2>/dev/null || true
    fi
    [ -z "$pgdir" ] || rm -rf "$pgdir"
    return 0
}
bench_start openssl setpriv unshare
: >"$work/fleetd.pids"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
t_begin=$(date +%s)

# ---------------------------------------------------------------- build
note "building pambench, pam_mfa, mfa-admin, mfa-fleetd and the driver (release)"
cc -O2 -o "$work/pambench" "$pambench_c" -lpam
(cd "$repo" && cargo build --quiet --release -p pam_mfa -p mfa-admin -p mfa-fleet &&
    cargo build --quiet --release -p mfa-fleet --example fleet_bench)
module=$target_dir/release/libpam_mfa.so
admin=$target_dir/release/mfa-admin
fleetd=$target_dir/release/mfa-fleetd
driver=$target_dir/release/examples/fleet_bench
pambench=$work/pambench
for f in "$module" "$admin" "$fleetd" "$driver"; do [ -f "$f" ] || die "$f was not built"; done

# ---------------------------------------------------------------- PostgreSQL
pgbin=$(find /usr/lib/postgresql -maxdepth 3 -path '*/bin/postgres' 2>/dev/null | sort -V | tail -n1)
[ -n "$pgbin" ] || die "PostgreSQL is not installed (apt-get install postgresql)"
pgbin=$(dirname "$pgbin")
pgdir=$(mktemp -d /tmp/mfa-fleet_bench-pg.XXXXXX)
chmod 0755 "$pgdir"
mkdir -m 0700 "$pgdir/data" "$pgdir/sock" "$pgdir/tls"
(
    cd "$pgdir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
        -out ca.crt -days 3 -subj /CN=fleet-bench-ca -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >tls/ext
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout tls/server.key \
        -out tls/server.csr -subj /CN=localhost
    openssl x509 -req -in tls/server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
        -out tls/server.crt -days 3 -extfile tls/ext
    rm -f ca.key
) >/dev/null 2>&1 || die "openssl could not make the test CA and server certificate"
chmod 0644 "$pgdir/ca.crt"
printf 'local all postgres trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n' >"$pgdir/tls/pg_hba.conf"
chown -R postgres:postgres "$pgdir/data" "$pgdir/sock" "$pgdir/tls"
pg_password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
printf '%s\n' "$pg_password" >"$pgdir/password"
chmod 0600 "$pgdir/password"
as_postgres() { setpriv --reuid postgres --regid postgres --init-groups -- "$@"; }
(cd "$pgdir" && env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME="$pgdir" \
    setpriv --reuid postgres --regid postgres --init-groups -- "$pgbin/initdb" -D "$pgdir/data" \
    -U postgres --auth=trust --no-sync --no-instructions -E UTF8 --locale=C) >"$pgdir/initdb.log" 2>&1 ||
    die "initdb failed: $(tail -n5 "$pgdir/initdb.log")"
max_conn=$((hosts * 2 + 40))
pg_port=
for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    : >"$pgdir/server.log"
    (cd "$pgdir" && exec env -i PATH=/usr/bin:/bin LANG=C.UTF-8 unshare --ipc \
        setpriv --reuid postgres --regid postgres --init-groups -- "$pgbin/postgres" -D "$pgdir/data" \
        -c port="$port" -c listen_addresses=127.0.0.1 -c unix_socket_directories="$pgdir/sock" \
        -c hba_file="$pgdir/tls/pg_hba.conf" -c ssl=on -c ssl_cert_file="$pgdir/tls/server.crt" \
        -c ssl_key_file="$pgdir/tls/server.key" -c dynamic_shared_memory_type=mmap \
        -c logging_collector=off -c max_connections="$max_conn" -c shared_buffers=64MB) \
        >>"$pgdir/server.log" 2>&1 </dev/null &
    pg_pid=$!
    for _ in $(seq 300); do
        grep -q 'ready to accept connections' "$pgdir/server.log" && break
        [ -d "/proc/$pg_pid" ] || break
        sleep 0.1
    done
    if grep -q 'ready to accept connections' "$pgdir/server.log"; then pg_port=$port; break; fi
    kill -KILL "$pg_pid" 2>/dev/null || true
    wait "$pg_pid" 2>/dev/null || true
    pg_pid=
done
[ -n "$pg_port" ] || die "the PostgreSQL server did not start: $(tail -n5 "$pgdir/server.log")"
psql_su() { as_postgres "$pgbin/psql" -X -w -q -At -v ON_ERROR_STOP=1 -h "$pgdir/sock" -p "$pg_port" -U postgres -d "$1" -c "$2"; }
psql_su postgres "CREATE ROLE mfa LOGIN PASSWORD '$pg_password'" >/dev/null || die "psql: CREATE ROLE failed"
psql_su postgres "CREATE DATABASE mfa OWNER mfa" >/dev/null || die "psql: CREATE DATABASE failed"
pg_url="postgresql://mfa@127.0.0.1:$pg_port/mfa"
pg_version=$("$pgbin/postgres" --version | awk '{ print $3 }')

# ---------------------------------------------------------------- hosts
# new_host DIR [STORE-HOST-NAME]: an installation; in the fleet when a name is given.
new_host() {
    mkdir -p "$1/db"
    {
        printf '[paths]\ndatabase = "%s/db/mfa.db"\nspool = "%s/spool"\nruntime = "%s/run"\n' "$1" "$1" "$1"
        printf '\n# init must not create the sender'"'"'s account mfa on the bench machine.\n[sender]\nuser = "nobody"\n'
        if [ -n "${2:-}" ]; then
            printf '\n[store]\nbackend = "postgres"\nurl = "%s"\npassword_file = "%s"\nca_file = "%s"\nhost = "%s"\n' \
                "$pg_url" "$pgdir/password" "$pgdir/ca.crt" "$2"
        fi
    } >"$1/mfa.toml"
    "$admin" --config "$1/mfa.toml" init >/dev/null 2>&1 || die "mfa-admin init in $1 failed"
}
# rules CONFIG: the rule set both the fleet and the single host get.
awk -v n="$users" 'BEGIN { print "user,full_name,email"; for (i = 1; i <= n; i++) printf "u%05d,Bench User %d,u%05d@example.com\n", i, i, i }' >"$work/users.csv"
rules() {
    local c=(--config "$1")
    "$admin" "${c[@]}" settings set enabled=on repeat_window=10m attempts=1 lockout_after=0 \
        send_limit_user=0 send_limit_destination=0 send_limit_host=0 >/dev/null
    "$admin" "${c[@]}" service set sshd passcode >/dev/null
    "$admin" "${c[@]}" user import --csv "$work/users.csv" >/dev/null
    "$admin" "${c[@]}" net add --service '*' --cidr 10.0.0.0/8 --require yes --note corporate >/dev/null
    "$admin" "${c[@]}" net add --service sshd --cidr 10.1.1.0/24 --require no --note trusted >/dev/null
}

note "PostgreSQL $pg_version on 127.0.0.1:$pg_port (max_connections $max_conn); making $hosts hosts and a single one"
t_hosts=$(date +%s.%N)
single=$work/single
new_host "$single"
rules "$single/mfa.toml" 2>/dev/null
hostdir() { printf '%s/hosts/h%03d' "$work" "$1"; }
mkdir -p "$work/hosts"
new_host "$(hostdir 0)" h000
rules "$(hostdir 0)/mfa.toml" 2>/dev/null
"$admin" --config "$(hostdir 0)/mfa.toml" migrate --to postgres "$pg_url" >"$work/migrate.out" 2>&1 ||
    die "migrate --to postgres failed: $(cat "$work/migrate.out")"
for ((i = 1; i < hosts; i++)); do
    d=$(hostdir "$i")
    new_host "$d" "$(printf 'h%03d' "$i")"
    "$admin" --config "$d/mfa.toml" fleet join >"$work/join.out" 2>&1 ||
        die "fleet join of $d failed: $(cat "$work/join.out")"
done
setup_s=$(awk -v a="$t_hosts" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
note "hosts made in $setup_s s"

# ---------------------------------------------------------------- 1 and 2
note "1. changes and 2. log ingestion (the driver: $driver)"
"$driver" --admin "$admin" --fleetd "$fleetd" --root "$work/hosts" --single "$single" \
    --hosts "$hosts" --changes "$changes" --rows "$rows" --pids "$work/fleetd.pids" >"$work/driver.out" &
driver_pid=$!
wait "$driver_pid" || { cat "$work/driver.out"; die "the driver failed"; }
driver_pid=
load_after_12=$(cut -d' ' -f1-3 /proc/loadavg)
# Let the server's and the disk's work of parts 1-2 finish before timing logins (at most
# 30 s: until the CPUs are less than 25 % busy or in iowait over a second).
psql_su mfa CHECKPOINT >/dev/null || true
sync
cpu_busy() { # percent of the CPUs busy or waiting for the disk over the next second
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $6 + $7 + $8, $5 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $6 + $7 + $8, $5 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x); split(b, y); t = (y[1] - x[1]) + (y[2] - x[2]); printf "%d", t ? (y[1] - x[1]) * 100 / t : 0 }'
}
for _ in $(seq 30); do
    busy=$(cpu_busy)
    [ "$busy" -lt 25 ] && break
done

# ---------------------------------------------------------------- 3. logins
fleet_host=$(hostdir 1)
# The fleet host's follower runs while it serves logins, as it would.
"$fleetd" --config "$fleet_host/mfa.toml" 2>>"$fleet_host/fleetd.log" &
fleetd_pid=$!
echo "$fleetd_pid" >>"$work/fleetd.pids"
# The passcode path refuses a stale sender heartbeat: keep both fresh.
(
    nap=
    trap '[ -n "$nap" ] && kill "$nap" 2>/dev/null; exit 0' TERM
    while :; do
        touch "$single/run/sender.heartbeat" "$fleet_host/run/sender.heartbeat"
        sleep 1 &
        nap=$!
        wait "$nap" || true
    done
) &
loop_pid=$!
sleep 0.2
for h in "$single" "$fleet_host"; do
    for probe in "sshd 10.1.1.77 trusted" "sshd 10.200.0.5 required"; do
        read -r svc addr want <<<"$probe"
        out=$("$admin" --config "$h/mfa.toml" --json net check --service "$svc" "$addr") || die "net check on $h failed"
        grep -Eq '"decision": *"'"$want"'"' <<<"$out" || die "net check $addr on $h: expected $want, got: $out"
    done
done
confdir=$work/pam.d
mkdir -p "$confdir"
echo "auth required pam_permit.so" >"$confdir/bench-permit"
for h in single fleet; do
    [ $h = single ] && cfg=$single/mfa.toml || cfg=$fleet_host/mfa.toml
    printf 'auth [success=done ignore=ignore default=die] %s config=%s service=sshd\nauth required pam_permit.so\n' \
        "$module" "$cfg" >"$confdir/bench-$h"
done
bench_console
alt_case permit bench-permit u01234 10.1.1.77
alt_case single-bypass bench-single u01234 10.1.1.77
alt_case fleet-bypass bench-fleet u01234 10.1.1.77
alt_case single-issue bench-single u00777 10.200.0.5
alt_case fleet-issue bench-fleet u00777 10.200.0.5
note "3. logins: $rounds rounds of $n_login per case, interleaved (warm-up $warmup each)"
load_login=$(cut -d' ' -f1-3 /proc/loadavg)
run_alternating "$rounds" "$n_login" permit single-bypass fleet-bypass single-issue fleet-issue
total=$((rounds * n_login))
for c in permit single-bypass fleet-bypass; do expect_ok "$c" "$total"; done
for c in single-issue fleet-issue; do expect_ok "$c" 0; done
spooled_single=$(find "$single/spool/new" -maxdepth 1 -type f -name '*.json' | wc -l)
spooled_fleet=$(find "$fleet_host/spool/new" -maxdepth 1 -type f -name '*.json' | wc -l)
[ "$spooled_single" = "$spooled_fleet" ] ||
    problems+=("passcodes issued: single host spooled $spooled_single messages, fleet host $spooled_fleet")

# ---------------------------------------------------------------- report
echo
machine_line "$load_start"
echo "load average after parts 1-2: $load_after_12; before part 3: $load_login (CPUs ${busy}% busy or in iowait); $(nproc) cores; total $(($(date +%s) - t_begin)) s (hosts made in $setup_s s)"
echo "fleet: $hosts hosts (h000..h$(printf '%03d' $((hosts - 1)))), one mfa-fleetd each, PostgreSQL $pg_version (TLS, scram, fsync on) on this machine;"
echo "  rules: $users users (email contact each), 2 network rules, passcode for sshd"
echo
cat "$work/driver.out"
echo
echo "3. the login path, fleet host h001 (its mfa-fleetd running) vs the single host: same rules, users, files"
echo "  $console_note"
fmt='%-16s %7s %7s %10s %10s %14s %14s\n'
printf "$fmt" case iters ok "p50 µs" "p99 µs" "fleet-single µs" "fleet/single"
floor=$(field "${line[permit]}" p50_us)
for path in bypass issue; do
    # Paired: fleet minus single within each round (both met the same moment's load), the
    # median over the rounds: what the verdict rests on.
    pd=$(paste -d' ' "$work/alt-single-$path" "$work/alt-fleet-$path" | awk '{ print $7 - $3 }' | median)
    pp=$(paste -d' ' "$work/alt-single-$path" "$work/alt-fleet-$path" | awk '{ print ($7 - $3) / $3 * 100 }' | median)
    for c in single fleet; do
        l=${line[$c-$path]}
        if [ $c = fleet ]; then
            d=$(printf '%+.1f' "$pd") pc=$(printf '%+.1f %%' "$pp")
        else
            d=- pc=-
        fi
        printf "$fmt" "$c-$path" "${iters[$c-$path]}" "${oks[$c-$path]}" "$(field "$l" p50_us)" "$(field "$l" p99_us)" "$d" "$pc"
    done
done
printf "$fmt" permit "${iters[permit]}" "${oks[permit]}" "$floor" "$(field "${line[permit]}" p99_us)" - -
for path in bypass issue; do
    awk -v s="$(field "${line[single-$path]}" p50_us)" -v f="$(field "${line[fleet-$path]}" p50_us)" -v p="$floor" -v n="$path" \
        'BEGIN { printf "  %s over pam_permit (medians of the rounds): single +%.1f µs, fleet +%.1f µs (%+.1f %%)\n", n, s - p, f - p, ((f - p) - (s - p)) / (s - p) * 100 }'
done
echo "fleet-single, fleet/single: paired by round (the median over the rounds of fleet's p50 minus single's in that round)."
echo "p50/p99: the median of the $rounds rounds' p50s / p99s; the rounds' order rotates (load hits every case alike)."
echo "issue: a passcode issued, a wrong code answered (0 ok expected); spooled: single $spooled_single, fleet $spooled_fleet"

report_problems "a case did not take the path it was meant to"
exit 0
