#!/usr/bin/env bash
# bench/scale_bench.sh — is mfa flat with scale? Builds two private installations side by side,
# a small one (10 users, 10 network rules, 1,000 auth-log rows) and a full one (100,000 users,
# 10,000 network rules, 1,000,000 auth-log rows), and prints for both, with the ratio
# full/small and the goal beside each (issue 13):
#
#   login paths, Δp50 over pam_permit     bypass (trusted network), repeat window, passcode
#                                         issue (in-process loops, the small, full and
#                                         pam_permit cases alternated in rounds), TOTP valid
#                                         code for a returning user (its login-state file
#                                         exists; one process per login, alternated too):
#                                         full within +10 % of small
#   a login that reaches a lockout        the time of that login (≤ 5 ms at full size) and its
#                                         process's peak RSS (full at most 512 KiB above small;
#                                         also shown: above a wrong code that does not lock)
#   user add, contact add, net add        wall time and peak RSS of mfa-admin: ≤ 50 ms
#   export, import of that export         ≤ 1 s; import of 1/2, 1 and 2 × the rules (into an
#                                         installation of 10 users): linear (each doubling of
#                                         the rules at most 2.5 × the time)
#   doctor (and doctor --full if offered) ≤ 1 s (the quick check; --full has no goal)
#   log show with a filter, --limit 20    --user, --service, --outcome, --since, --address:
#                                         ≤ 20 ms
#   auth-log inbox                        bypass logins in loops of 100 until the inbox has
#                                         passed its size limit (1 MiB, mfa_core::authlog)
#                                         twice over: whether a login moved the inbox into the
#                                         database (the goal: never), the slowest login (the
#                                         p99 of 100 is their maximum); then the slowest login
#                                         with mfa-admin moving the inbox beside the logins
#
# Both installations are built through the supported bulk path: a document in the format of
# `mfa-admin export` (mfa_core::export) written here and loaded with `mfa-admin import`; the
# auth-log rows are inserted with sqlite3 (mfa-admin has no bulk path for them). The users the
# bench logs in are named m-* and sort in the middle of the fillers (a000001... before them,
# z000001... after), so neither size finds them at an edge. Three users get a TOTP key through
# `mfa-admin totp enroll`. Everything lives in a temporary directory (never /etc/mfa,
# /var/lib/mfa or /var/spool/mfa), removed on exit.
#
# Uses bench/common.sh (build, installation, pambench runners, the machine line).
#
# Usage: bench/scale_bench.sh            (as root, or as any user who can build)
# Environment:
#   PAMBENCH_C      pambench.c to build, if set (else <repo>/../shared/tools/pambench.c)
#   SCALE_USERS     users of the full installation (default 100000)
#   SCALE_RULES     network rules of the full installation (default 10000)
#   SCALE_LOG       auth-log rows of the full installation (default 1000000)
#   SMALL_USERS, SMALL_RULES, SMALL_LOG   the small one (defaults 10, 10, 1000)
#   N               iterations of each in-process pambench chunk (default 400)
#   ROUNDS          rounds of chunks (in-process) per login path (default 7)
#   N_TOTP          measured rounds of the one-process-per-login TOTP case (default 200)
#   N_CMD           runs of each mfa-admin command (the median is shown; default 5)
#   N_LOCK          lockouts timed per size (default 5)
#   INBOX_LOOPS     loops of 100 logins beside mfa-admin moving the inbox (default 30)
#   WARMUP          unreported iterations before each case (default 50)
#   CARGO_TARGET_DIR  as for cargo (default <repo>/target)
#   KEEP=1          keep the temporary directory (its path is printed)
#   CONSOLE=keep    do not hide /dev/console from pambench (see bench_console in common.sh)
#
# Quick run: SCALE_USERS=10000 SCALE_RULES=1000 SCALE_LOG=100000 N=200 ROUNDS=3 N_TOTP=50
#
# Exit status: 0 when every case ran as intended (goals met or not: PASS/MISS is in the
# table); 1 when something failed to build or run, or a case did not take the path it was
# meant to (wrong success count, wrong auth-log reason).

set -euo pipefail

bench_name=scale_bench
. "$(cd "$(dirname "$0")" && pwd)/common.sh"
full_users=${SCALE_USERS:-100000}
full_rules=${SCALE_RULES:-10000}
full_log=${SCALE_LOG:-1000000}
small_users=${SMALL_USERS:-10}
small_rules=${SMALL_RULES:-10}
small_log=${SMALL_LOG:-1000}
n_chunk=${N:-400}
rounds=${ROUNDS:-7}
n_totp=${N_TOTP:-200}
n_cmd=${N_CMD:-5}
n_lock=${N_LOCK:-5}
inbox_loops=${INBOX_LOOPS:-30}
[ "$small_users" -ge 10 ] && [ "$full_users" -ge 10 ] || die "at least 10 users per installation"
[ "$small_rules" -ge 2 ] && [ "$full_rules" -ge 2 ] || die "at least 2 network rules per installation"

# Background loops (the sender heartbeat, the inbox mover) are stopped on exit.
loop_pid='' mover=''
cleanup_extra() {
    local p
    for p in $loop_pid $mover; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
}
bench_start oathtool python3
t_start=$(date +%s)
phase() { note "$* ($(($(date +%s) - t_start)) s since the start)"; }
bench_build

# The bench's users (present in both sizes) and addresses: 10.1.1.0/24 is trusted for sshd
# (rule k = 1 below); 10.200.0.0/16 is only inside 10.0.0.0/8, which requires 2FA.
bypass_user=m-bypass bypass_rhost=10.1.1.77
repeat_user=m-repeat repeat_rhost=10.200.0.9
issue_user=m-issue issue_rhost=10.200.0.5
totp_user=m-totp totp_rhost=10.200.0.7 prime_rhost=10.200.0.6
lock_user=m-lock lock_rhost=10.200.0.8
bench_users=("$bypass_user" "$repeat_user" "$issue_user" "$totp_user" "$lock_user")

# ---------------------------------------------------------------- the export document
# export_doc USERS RULES: an `mfa-admin export` document. Settings: on, one try per code, no
# lockout, no send limits (the bench logs one user in again and again), repeat_window 10m;
# sshd asks a passcode, service "totp" an authenticator code (the repeat-window and TOTP cases). Rules: 10.0.0.0/8 requires 2FA
# for every service, then RULES - 1 rules inside it (IPv4 /24s 10.A.B.0, A from 1) or IPv6
# /48s (every tenth), for sshd, ftp or every service, one in seven requiring 2FA. Users: the
# five m-* users and USERS - 5 fillers, each with one email contact.
export_doc() { # USERS RULES
    awk -v users="$1" -v rules="$2" -v benchusers="${bench_users[*]}" '
BEGIN {
    print "format = 1"
    print ""
    print "[settings]"
    print "enabled = \"on\""
    print "attempts = 1"
    print "lockout_after = 0"
    print "repeat_window = \"10m\""
    print "send_limit_destination = 0"
    print "send_limit_host = 0"
    print "send_limit_user = 0"
    print ""
    print "[services]"
    print "\"*\" = \"any\""
    print "sshd = \"passcode\""
    print "totp = \"totp\""
    print ""
    print "[[networks]]\nservice = \"*\"\nrange = \"10.0.0.0/8\"\nrequire = true\nnote = \"corporate\"\n"
    for (k = 0; k < rules - 1; k++) {
        svc = (k % 3 == 0) ? "*" : (k % 3 == 1) ? "sshd" : "ftp"
        req = (k % 7 == 0) ? "true" : "false"
        if (k % 10 == 9) range = sprintf("2001:db8:%x::/48", k)
        else range = sprintf("10.%d.%d.0/24", int(k / 250) + 1, k % 250)
        printf "[[networks]]\nservice = \"%s\"\nrange = \"%s\"\nrequire = %s\nnote = \"rule %d\"\n\n", svc, range, req, k
    }
    nb = split(benchusers, bu, " ")
    fill = users - nb
    before = int(fill / 2)
    for (i = 1; i <= before; i++) user(sprintf("a%06d", i))
    for (i = 1; i <= nb; i++) user(bu[i])
    for (i = 1; i <= fill - before; i++) user(sprintf("z%06d", i))
}
function user(name) {
    printf "[[users]]\nname = \"%s\"\nfull_name = \"Bench User %s\"\nenabled = true\n\n", name, name
    printf "[[users.contacts]]\nseq = 1\nemail = \"%s@example.com\"\n\n", name
}'
}

# load_log ROWS: ROWS auth-log rows over the last 30 days, oldest first, for the users in
# turn, from 1,000 addresses in 10.0.0.0/8 (address keys as mfa_core::store::logs stores
# them: the family byte 4, then the 16-byte key of mfa_core::net, IPv4 in the low 4 bytes).
load_log() { # ROWS
    local now
    now=$(date +%s)
    {
        echo "BEGIN;"
        echo "CREATE TEMP TABLE bench_addr (i INTEGER PRIMARY KEY, address TEXT, k BLOB);"
        awk 'BEGIN {
            srand(1)
            for (i = 0; i < 1000; i++) {
                a = 1 + int(rand() * 200); b = int(rand() * 256); c = 1 + int(rand() * 254)
                printf "INSERT INTO bench_addr VALUES (%d, '\''10.%d.%d.%d'\'', X'\''04000000000000000000000000%08X'\'');\n", \
                    i, a, b, c, 10 * 16777216 + a * 65536 + b * 256 + c
            }
        }'
        echo "CREATE TEMP TABLE bench_user (i INTEGER PRIMARY KEY, name TEXT);"
        echo "INSERT INTO bench_user (i, name) SELECT row_number() OVER (ORDER BY name) - 1, name FROM users;"
        cat <<SQL
INSERT INTO auth_log (ts, user, service, address, addr_key, tty, outcome, method, destination, reason)
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $1 - 1)
SELECT $now - 30 * 86400 + n.i * (30 * 86400) / $1,
       (SELECT name FROM bench_user WHERE bench_user.i = (n.i * 7919) % (SELECT count(*) FROM bench_user)),
       CASE n.i % 6 WHEN 3 THEN 'ftp' WHEN 4 THEN 'su' WHEN 5 THEN 'sudo' ELSE 'sshd' END,
       a.address, a.k, 'pts/' || (n.i % 10),
       CASE (n.i * 13) % 5 WHEN 0 THEN 'success' WHEN 4 THEN 'deny' ELSE 'ignore' END,
       CASE WHEN (n.i * 13) % 5 IN (0, 4) THEN 'passcode' ELSE '' END,
       CASE (n.i * 13) % 5 WHEN 0 THEN 'u***@e***.com' ELSE '' END,
       CASE (n.i * 13) % 5 WHEN 0 THEN '' WHEN 4 THEN 'wrong passcode; attempts used up'
            ELSE CASE n.i % 2 WHEN 0 THEN 'trusted network (rule 17)' ELSE 'repeat window' END END
FROM n JOIN bench_addr a ON a.i = (n.i * 31) % 1000;
COMMIT;
SQL
    } >"$work/log.sql"
    sqlite3 "$db" <"$work/log.sql" >/dev/null
}

declare -A cfg dbs insts sizes
make_instance() { # NAME USERS RULES LOGROWS
    local name=$1 counts t0
    t0=$(date +%s)
    note "building the $name installation: $2 users, $3 network rules, $4 auth-log rows"
    bench_install "$work/$name"
    cfg[$name]=$config dbs[$name]=$db insts[$name]=$inst
    sizes[$name]="$2 users, $3 rules, $4 log rows"
    export_doc "$2" "$3" >"$work/$name.toml"
    mfa import "$work/$name.toml" >/dev/null || die "mfa-admin import of $work/$name.toml failed"
    load_log "$4"
    counts=$(sqlite3 "$db" "SELECT (SELECT count(*) FROM users) || ' ' || (SELECT count(*) FROM contacts) || ' ' ||
                                   (SELECT count(*) FROM networks) || ' ' || (SELECT count(*) FROM auth_log)")
    [ "$counts" = "$2 $2 $3 $4" ] || die "$name: unexpected row counts (users contacts networks auth_log): $counts, expected $2 $2 $3 $4"
    for u in "$totp_user" "$lock_user" "$repeat_user"; do
        mfa --json totp enroll "$u" >"$work/$name-$u.totp" || die "$name: totp enroll $u failed"
    done
    mfa settings show >/dev/null || die "$name: mfa-admin could not read the loaded database"
    [ -s "$db-policy" ] || die "$name: no policy snapshot $db-policy"
    check_net sshd "$bypass_rhost" trusted
    check_net sshd "$issue_rhost" required
    check_net totp "$totp_rhost" required
    note "  $name built in $(($(date +%s) - t0)) s"
}
use() { # NAME: make NAME's installation the one `mfa` and $db mean
    config=${cfg[$1]} db=${dbs[$1]} inst=${insts[$1]}
}

# The hex key of a user's TOTP key, from totp enroll's JSON (the otpauth URI's base-32 secret).
totp_hex() { # NAME USER
    local b32
    b32=$(grep -m1 -o 'secret=[A-Z2-7]*' "$work/$1-$2.totp" | cut -d= -f2)
    [ -n "$b32" ] || die "$1: no secret in totp enroll's output for $2: $(head -c 300 "$work/$1-$2.totp")"
    python3 -c 'import base64, sys; s = sys.argv[1]; print(base64.b32decode(s + "=" * (-len(s) % 8)).hex())' "$b32"
}

make_instance small "$small_users" "$small_rules" "$small_log"
make_instance full "$full_users" "$full_rules" "$full_log"

# Background loop: the sender's heartbeat of both installations (the passcode path refuses a
# stale one), refreshed every second.
(
    nap=
    trap '[ -n "$nap" ] && kill "$nap" 2>/dev/null; exit 0' TERM
    while :; do
        touch "${insts[small]}/run/sender.heartbeat" "${insts[full]}/run/sender.heartbeat"
        sleep 1 &
        nap=$!
        wait "$nap" || true
    done
) &
loop_pid=$!

# ---------------------------------------------------------------- PAM service files
confdir=$work/pam.d
mkdir -p "$confdir"
echo "auth required pam_permit.so" >"$confdir/bench-permit"
for s in small full; do
    for p in bypass issue; do
        printf 'auth [success=done ignore=ignore default=die] %s config=%s service=sshd\nauth required pam_permit.so\n' \
            "$module" "${cfg[$s]}" >"$confdir/bench-$s-$p"
    done
    for p in repeat totp; do
        printf 'auth [success=done ignore=ignore default=die] %s config=%s service=totp\nauth required pam_permit.so\n' \
            "$module" "${cfg[$s]}" >"$confdir/bench-$s-$p"
    done
done

# The repeat window's grant comes from a real login: the repeat user passes a TOTP challenge
# from its address on service totp (just before its case), which leaves a grant that the
# measured logins (service totp, same address, repeat_window 10m) are let in by.

# ---------------------------------------------------------------- runs
bench_console
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
note "running (warm-up $warmup iterations per case, not counted; load average $load_start)"

# Auth-log marks of both installations (sqlite3 reads the table without moving the inbox).
rows() { sqlite3 "${dbs[$1]}" "SELECT coalesce(max(id), 0) FROM auth_log"; }
expect_log_in() { # SIZE NAME MARK OUTCOME:REASON-PREFIX N
    use "$1"
    expect_log "$2" "$3" "$4" "$5"
}
spool_clean() { find "${insts[$1]}/spool/new" "${insts[$1]}/spool/tmp" -maxdepth 1 -type f -delete 2>/dev/null || true; }

login_case() { # PATH RESPONSE RHOST USER OUTCOME:REASON WANT-OK(all|0)
    local path=$1 resp=$2 rhost=$3 user=$4 want=$5 wantok=$6 ms mf total
    phase "login path $path: $rounds rounds of pambench -n $n_chunk (permit, small, full alternated)"
    alt_case "permit-$path" bench-permit "$user" "$rhost" "$resp"
    alt_case "small-$path" "bench-small-$path" "$user" "$rhost" "$resp"
    alt_case "full-$path" "bench-full-$path" "$user" "$rhost" "$resp"
    use small; ms=$(log_mark)
    use full; mf=$(log_mark)
    run_alternating "$rounds" "$n_chunk" "permit-$path" "small-$path" "full-$path"
    total=$((rounds * n_chunk))
    expect_ok "permit-$path" "$total"
    if [ "$wantok" = all ]; then wantok=$total; fi
    expect_ok "small-$path" "$wantok"
    expect_ok "full-$path" "$wantok"
    expect_log_in small "small-$path" "$ms" "$want" $((total + warmup))
    expect_log_in full "full-$path" "$mf" "$want" $((total + warmup))
    spool_clean small
    spool_clean full
}
login_case bypass 000000 "$bypass_rhost" "$bypass_user" "ignore:trusted network" all
for s in small full; do
    code=$(oathtool --totp "$(totp_hex "$s" "$repeat_user")")
    out=$(env "${pb_prefix[@]}" "$pambench" -c "$confdir" -r "$repeat_rhost" -n 1 "bench-$s-repeat" "$repeat_user" "$code" 2>&1) || true
    [ "$(field "$out" ok)" = 1 ] || die "$s: the TOTP login that opens $repeat_user's repeat window failed: $out"
done
login_case repeat 000000 "$repeat_rhost" "$repeat_user" "ignore:repeat window" all
login_case issue 000000 "$issue_rhost" "$issue_user" "deny:wrong passcode; attempts used up" 0

# TOTP, a valid code, a returning user: its login-state file exists. pam_mfa accepts a step
# once (and no earlier one), so each size's user first logs in with the previous step's code
# (accepted: totp_skew 1); that state file is saved and put back before each measured login,
# which answers the current code. One pambench process per login; permit, small and full in
# an order rotated each round.
phase "TOTP returning user: $warmup + $n_totp rounds of 3 logins, one process per login"
per_login_script
declare -A hex restore
for s in small full; do
    hex[$s]=$(totp_hex "$s" "$totp_user")
    use "$s"
    state_dir="$db-users"
    [ -d "$state_dir" ] || mkdir -m 0700 "$state_dir"
    touch "$work/before-prime"
    sleep 0.01
    prev=$(oathtool --totp -N "@$(($(date +%s) - 30))" "${hex[$s]}")
    # From another address than the measured logins': its repeat-window grant does not apply.
    out=$(env "${pb_prefix[@]}" "$pambench" -c "$confdir" -r "$prime_rhost" -n 1 "bench-$s-totp" "$totp_user" "$prev" 2>&1) || true
    [ "$(field "$out" ok)" = 1 ] || die "$s: the priming TOTP login with the previous step's code failed: $out"
    sf=$(find "$state_dir" -type f -newer "$work/before-prime" -print -quit)
    [ -n "$sf" ] || die "$s: the priming TOTP login left no login-state file in $state_dir"
    cp "$sf" "$work/$s-totp.state"
    restore[$s]="$work/$s-totp.state>$sf"
done
awk -v rounds=$((warmup + n_totp)) -v u="$totp_user" -v rh="$totp_rhost" -v hs="${hex[small]}" -v hf="${hex[full]}" \
    -v rs="${restore[small]}" -v rf="${restore[full]}" 'BEGIN {
    c[0] = "permit-totp bench-permit " u " " rh " - -"
    c[1] = "small-totp bench-small-totp " u " " rh " " hs " " rs
    c[2] = "full-totp bench-full-totp " u " " rh " " hf " " rf
    for (r = 0; r < rounds; r++) for (k = 0; k < 3; k++) print r, c[(r + k) % 3]
}' >"$work/plan-totp"
use small; ms=$(log_mark)
use full; mf=$(log_mark)
per_login "$work/plan-totp" "$work/totp.out"
for name in permit-totp small-totp full-totp; do
    per_login_stats "$work/totp.out" "$name" "$warmup"
    expect_ok "$name" "$n_totp"
done
expect_log_in small small-totp "$ms" "success:" $((n_totp + warmup))
expect_log_in full full-totp "$mf" "success:" $((n_totp + warmup))

# ---------------------------------------------------------------- a login that reaches a lockout
# lockout_after=3 from here on (one try per login: the third wrong code locks). Each time: the
# user unlocked, a first wrong code (the comparison: a failure that does not lock), a second
# one, then the third, which locks. Each timed login is its own pambench -n 1 process, run by
# rusage (common.sh): pambench's time of the login, the process's peak RSS and CPU time.
phase "lockout: $n_lock times per size, the third wrong code locks (lockout_after=3)"
declare -A lock_ms lock_kb nolock_ms nolock_kb lock_cpu nolock_cpu
rusage_script
timed_login() { # SERVICE USER RHOST CODE -> sets tl_us (pambench's time of the login), tl_kb
                # (the process's peak RSS), tl_cpu (its CPU time, ms), tl_ok
    local out
    env "${pb_prefix[@]}" "$work/rusage" "$work/lock.time" "$work/lock.out" "$work/lock.err" \
        "$pambench" -c "$confdir" -r "$3" -n 1 "$1" "$2" "$4" || true
    out=$(cat "$work/lock.out" "$work/lock.err")
    [[ "$out" == service=* ]] || die "pambench $1 failed: $out"
    tl_us=$(field "$out" p50_us)
    tl_ok=$(field "$out" ok)
    read -r _ tl_kb tl_cpu _ <"$work/lock.time"
}
for s in small full; do
    use "$s"
    mfa settings set lockout_after=3 >/dev/null
    lhex=$(totp_hex "$s" "$lock_user")
    t=$(date +%s)
    near=$(for d in -60 -30 0 30 60 90; do oathtool --totp -N "@$((t + d))" "$lhex"; done)
    wrong=
    for c in 000000 111111 222222 333333 444444 555555 666666 777777 888888 999999; do
        if ! grep -qx "$c" <<<"$near"; then wrong=$c; break; fi
    done
    : >"$work/lock-$s" ; : >"$work/nolock-$s"
    mark=$(log_mark)
    for ((i = 0; i < n_lock; i++)); do
        mfa user unlock "$lock_user" >/dev/null || die "$s: user unlock $lock_user failed"
        timed_login "bench-$s-totp" "$lock_user" "$lock_rhost" "$wrong"
        echo "$tl_us $tl_kb $tl_cpu" >>"$work/nolock-$s"
        env "${pb_prefix[@]}" "$pambench" -c "$confdir" -r "$lock_rhost" -n 1 "bench-$s-totp" "$lock_user" "$wrong" >/dev/null 2>&1 || true
        timed_login "bench-$s-totp" "$lock_user" "$lock_rhost" "$wrong"
        echo "$tl_us $tl_kb $tl_cpu" >>"$work/lock-$s"
        [ "$tl_ok" = 0 ] || problems+=("$s lockout: a wrong code succeeded")
    done
    got=$(log_since "$mark")
    echo "  $s: auth log of the lockout logins: ${got//$'\n'/; }"
    locked=$(mfa --json user show "$lock_user" | grep -ci 'lock' || true)
    [ "$locked" -gt 0 ] || problems+=("$s lockout: user show $lock_user says nothing of a lockout")
    lock_ms[$s]=$(awk '{ print $1 / 1000 }' "$work/lock-$s" | median | xargs printf '%.2f')
    lock_kb[$s]=$(cut -d' ' -f2 "$work/lock-$s" | median)
    nolock_ms[$s]=$(awk '{ print $1 / 1000 }' "$work/nolock-$s" | median | xargs printf '%.2f')
    nolock_kb[$s]=$(cut -d' ' -f2 "$work/nolock-$s" | median)
    lock_cpu[$s]=$(cut -d' ' -f3 "$work/lock-$s" | median | xargs printf '%.1f')
    nolock_cpu[$s]=$(cut -d' ' -f3 "$work/nolock-$s" | median | xargs printf '%.1f')
    echo "  $s: locking login ${lock_ms[$s]} ms, peak RSS ${lock_kb[$s]} KiB, process CPU ${lock_cpu[$s]} ms; a wrong code that does not lock ${nolock_ms[$s]} ms, ${nolock_kb[$s]} KiB, CPU ${nolock_cpu[$s]} ms"
    mfa user unlock "$lock_user" >/dev/null
    mfa settings set lockout_after=0 >/dev/null
done

# ---------------------------------------------------------------- mfa-admin commands
declare -A cmd_ms cmd_kb cmd_cpu
# time_cmd KEY SIZE CMD...: N_CMD runs (the command may use $i, the run's number, through the
# caller's loop), the median time and peak RSS in cmd_ms/cmd_kb[KEY:SIZE]
collect_cmd() { # KEY SIZE FILE
    cmd_ms[$1:$2]=$(cut -d' ' -f1 "$3" | median | xargs printf '%.1f')
    cmd_kb[$1:$2]=$(cut -d' ' -f2 "$3" | median)
    cmd_cpu[$1:$2]=$(cut -d' ' -f3 "$3" | median | xargs printf '%.1f')
    echo "  $2 $1: ${cmd_ms[$1:$2]} ms, ${cmd_kb[$1:$2]} KiB peak RSS, ${cmd_cpu[$1:$2]} ms CPU (runs: $(cut -d' ' -f1 "$3" | tr '\n' ' '))"
}
checked() { # WHAT: after timed_cmd
    if [ "$t_rc" != 0 ]; then problems+=("$1 failed (exit $t_rc): $(head -c 300 "$work/cmd.err")"); fi
    echo "$t_ms $t_kb $t_cpu"
}
phase "mfa-admin single changes: $n_cmd runs each"
for s in small full; do
    use "$s"
    mfa settings show >/dev/null # the inbox moved before the timing
    : >"$work/c1"; : >"$work/c2"; : >"$work/c3"
    for ((i = 1; i <= n_cmd; i++)); do
        timed_cmd "$admin" --config "$config" user add "m-add$i" --full-name "Added $i"
        checked "$s user add" >>"$work/c1"
        timed_cmd "$admin" --config "$config" contact add --email "m-add$i@example.com" "m-add$i"
        checked "$s contact add" >>"$work/c2"
        timed_cmd "$admin" --config "$config" net add --service sshd --cidr "192.168.$i.0/24" --require no
        checked "$s net add" >>"$work/c3"
    done
    collect_cmd "user add" "$s" "$work/c1"
    collect_cmd "contact add" "$s" "$work/c2"
    collect_cmd "net add" "$s" "$work/c3"
done

n_slow=$(( n_cmd < 3 ? n_cmd : 3 ))
phase "export, import of that export, doctor: $n_slow runs each"
doctor_full=
# (The help read whole first: grep -q would stop reading at the match, and under pipefail the
# writer's SIGPIPE would make the test fail at random.)
doctor_help=$("$admin" doctor --help 2>/dev/null || true)
if grep -q -- '--full' <<<"$doctor_help"; then doctor_full=1; fi
for s in small full; do
    use "$s"
    : >"$work/c1"; : >"$work/c2"; : >"$work/c3"; : >"$work/c4"
    for ((i = 1; i <= n_slow; i++)); do
        rm -f "$work/$s-export.toml"
        timed_cmd "$admin" --config "$config" export "$work/$s-export.toml"
        checked "$s export" >>"$work/c1"
        timed_cmd "$admin" --config "$config" import "$work/$s-export.toml"
        checked "$s import" >>"$work/c2"
        # doctor's exit status says whether it found something (the bench's PAM stacks, a
        # shared sender account): only its time is of interest here.
        timed_cmd "$admin" --config "$config" doctor --pam-dir "$confdir"
        echo "$t_ms $t_kb $t_cpu" >>"$work/c3"
        if [ -n "$doctor_full" ]; then
            timed_cmd "$admin" --config "$config" doctor --full --pam-dir "$confdir"
            echo "$t_ms $t_kb $t_cpu" >>"$work/c4"
        fi
    done
    grep -q '^\[\[users\]\]' "$work/$s-export.toml" || problems+=("$s export: no users in the document")
    # The import changed nothing: exporting again gives the same document.
    mfa export "$work/$s-export2.toml" >/dev/null 2>&1 || problems+=("$s: the export after the import failed")
    cmp -s "$work/$s-export.toml" "$work/$s-export2.toml" ||
        problems+=("$s: export, import, export gave another document: $(diff "$work/$s-export.toml" "$work/$s-export2.toml" | head -n 4 | tr '\n' ' ' || true)")
    collect_cmd export "$s" "$work/c1"
    collect_cmd import "$s" "$work/c2"
    collect_cmd doctor "$s" "$work/c3"
    if [ -n "$doctor_full" ]; then collect_cmd "doctor --full" "$s" "$work/c4"; fi
done

# Import linearity: documents of 1/2, 1 and 2 × the full size's rules (and 10 users), each
# into a fresh installation.
declare -A lin_ms
lin_sizes=($((full_rules / 2)) "$full_rules" $((full_rules * 2)))
phase "import linearity: ${lin_sizes[*]} rules"
for r in "${lin_sizes[@]}"; do
    bench_install "$work/lin-$r"
    export_doc 10 "$r" >"$work/lin-$r.toml"
    timed_cmd "$admin" --config "$config" import "$work/lin-$r.toml"
    checked "import of $r rules" >/dev/null
    lin_ms[$r]=$t_ms
    [ "$(sqlite3 "$db" "SELECT count(*) FROM networks")" = "$r" ] || problems+=("import of $r rules: not $r rules in the database")
    echo "  import of $r rules: $t_ms ms, $t_kb KiB, $t_cpu ms CPU"
    rm -rf "$work/lin-$r"
done

# ---------------------------------------------------------------- log show
log_filters=("--user a000001" "--service ftp" "--outcome deny" "--since 2h" "--address 10.5.0.0/16"
             "--user a000001 --outcome success --since 7d")
phase "log show --limit 20 with a filter: $n_cmd runs each"
for s in small full; do
    use "$s"
    mfa settings show >/dev/null
    for f in "${log_filters[@]}"; do
        : >"$work/c1"
        for ((i = 1; i <= n_cmd; i++)); do
            # shellcheck disable=SC2086 # the filter is words
            timed_cmd "$admin" --config "$config" log show $f --limit 20
            checked "$s log show $f" >>"$work/c1"
        done
        # shellcheck disable=SC2086
        rows_shown=$("$admin" --config "$config" log show $f --limit 20 | wc -l)
        # Each single filter must find rows (an empty answer times nothing); the combination
        # may find none when the log has few rows per user (SCALE_LOG much below 10 × users).
        if [ "$rows_shown" -le 1 ]; then
            case $f in
                *--*--*) note "  $s log show $f: no rows shown" ;;
                *) problems+=("$s log show $f: no rows shown") ;;
            esac
        fi
        collect_cmd "log show $f" "$s" "$work/c1"
    done
done

# ---------------------------------------------------------------- auth-log inbox
# Bypass logins in loops of pambench -n 100 (its p99 of 100 values is their maximum) until twice
# the inbox's size limit has been appended, alone; then INBOX_LOOPS loops with mfa-admin moving
# the inbox every 0.5 s beside them. A login that moved the inbox shows as auth_log rows
# appearing while no mfa-admin runs.
ingest_at=$((1 << 20))
declare -A inbox_max inbox_p50 inbox_moved inbox_cmax inbox_cp50 inbox_slow inbox_cslow
slow_loops() { # FILE: "k/n", the loops of 100 logins whose slowest took over 5 ms
    awk '{ n++; if ($2 > 5000) k++ } END { printf "%d/%d", k, n }' "$1"
}
inbox_run() { # SIZE OUT [LOOPS]: LOOPS loops of 100 bypass logins (default: until 2 × ingest_at
              # bytes were appended)
    local s=$1 out=$2 loops=${3:-} per_login size1
    : >"$out"
    env "${pb_prefix[@]}" "$pambench" -c "$confdir" -r "$bypass_rhost" -n 100 "bench-$s-bypass" "$bypass_user" >/dev/null 2>&1 || true
    size1=$(stat -c %s "${dbs[$s]}-authlog" 2>/dev/null || echo 0)
    per_login=$(( size1 / 100 ))
    [ "$per_login" -gt 0 ] || per_login=200
    if [ -z "$loops" ]; then loops=$(( 2 * ingest_at / per_login / 100 + 1 )); fi
    for ((i = 0; i < loops; i++)); do
        o=$(env "${pb_prefix[@]}" "$pambench" -c "$confdir" -r "$bypass_rhost" -n 100 "bench-$s-bypass" "$bypass_user" 2>&1) || true
        [[ "$o" == service=* ]] || die "pambench (inbox, $s) failed: $o"
        echo "$(field "$o" p50_us) $(field "$o" p99_us)" >>"$out"
    done
    echo "    $s: $loops loops of 100 logins, about $per_login bytes appended per login"
}
phase "auth-log inbox: bypass logins until 2 × $ingest_at bytes were appended"
for s in small full; do
    use "$s"
    mfa settings show >/dev/null # an empty inbox to start with
    before=$(rows "$s")
    inbox_run "$s" "$work/inbox-$s"
    after=$(rows "$s")
    inbox_moved[$s]=$((after - before))
    inbox_p50[$s]=$(cut -d' ' -f1 "$work/inbox-$s" | median)
    inbox_max[$s]=$(cut -d' ' -f2 "$work/inbox-$s" | sort -g | tail -n1)
    inbox_slow[$s]=$(slow_loops "$work/inbox-$s")
    echo "  $s alone: logins moved ${inbox_moved[$s]} rows into the database; p50 ${inbox_p50[$s]} µs, slowest login ${inbox_max[$s]} µs"
    # The same with mfa-admin moving the inbox beside the logins (what a login pays while
    # the mover holds the inbox).
    ( while :; do "$admin" --config "$config" settings show >/dev/null 2>&1 || true; sleep 0.5; done ) &
    mover=$!
    inbox_run "$s" "$work/inbox-c-$s" "$inbox_loops"
    kill "$mover" 2>/dev/null || true
    wait "$mover" 2>/dev/null || true
    mover=
    inbox_cp50[$s]=$(cut -d' ' -f1 "$work/inbox-c-$s" | median)
    inbox_cmax[$s]=$(cut -d' ' -f2 "$work/inbox-c-$s" | sort -g | tail -n1)
    inbox_cslow[$s]=$(slow_loops "$work/inbox-c-$s")
    echo "  $s with mfa-admin moving the inbox every 0.5 s: p50 ${inbox_cp50[$s]} µs, slowest login ${inbox_cmax[$s]} µs"
done

# ---------------------------------------------------------------- tables
phase "done"
echo
machine_line "$load_start"
echo "small: ${sizes[small]}; full: ${sizes[full]}"
echo "module: $module ($(du -k "$module" | cut -f1) KiB); $console_note"
echo "login paths: in-process pambench -n $n_chunk, $rounds rounds alternating permit/small/full (p50: median of the"
echo "  rounds' p50s); TOTP: one process per login, $n_totp rounds (its floor: permit, one process per login)"
echo
fmt='%-38s %18s %20s %7s %-22s %s\n'
printf "$fmt" what small full ratio goal result
printf "$fmt" -------------------------------------- ------------------ -------------------- ------- ---------------------- ------
for path in bypass repeat issue totp; do
    p0=$(field "${line[permit-$path]}" p50_us)
    ds=$(delta "$(field "${line[small-$path]}" p50_us)" "$p0")
    df=$(delta "$(field "${line[full-$path]}" p50_us)" "$p0")
    ratio=$(awk -v a="$df" -v b="$ds" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "-" }')
    verdict=$(awk -v a="$df" -v b="$ds" 'BEGIN { print (a + 0 <= (b + 0) * 1.10) ? "PASS" : "MISS" }')
    case $path in
        bypass) what="bypass (trusted net), Δp50" ;;
        repeat) what="repeat window, Δp50" ;;
        issue) what="passcode issue, Δp50" ;;
        totp) what="TOTP returning user, Δp50" ;;
    esac
    printf "$fmt" "$what" "$ds µs" "$df µs" "$ratio" "full ≤ small + 10 %" "$verdict"
done
row() { printf "$fmt" "$@"; }
ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
within() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 <= b + 0) ? "PASS" : "MISS" }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }

lk_s=$(awk -v a="${lock_kb[small]}" -v b="${nolock_kb[small]}" 'BEGIN { printf "%+d", a - b }')
lk_f=$(awk -v a="${lock_kb[full]}" -v b="${nolock_kb[full]}" 'BEGIN { printf "%+d", a - b }')
row "lockout login: time" "${lock_ms[small]} ms" "${lock_ms[full]} ms" "$(ratio_of "${lock_ms[full]}" "${lock_ms[small]}")" "≤ 5 ms" "$(within "${lock_ms[full]}" 5)"
row "  (a wrong code, no lockout)" "${nolock_ms[small]} ms" "${nolock_ms[full]} ms" "$(ratio_of "${nolock_ms[full]}" "${nolock_ms[small]}")" "-" "-"
row "lockout login: process CPU" "${lock_cpu[small]} ms" "${lock_cpu[full]} ms" "$(ratio_of "${lock_cpu[full]}" "${lock_cpu[small]}")" "-" "-"
row "  (a wrong code, no lockout)" "${nolock_cpu[small]} ms" "${nolock_cpu[full]} ms" "$(ratio_of "${nolock_cpu[full]}" "${nolock_cpu[small]}")" "-" "-"
lk_d=$(awk -v a="${lock_kb[full]}" -v b="${lock_kb[small]}" 'BEGIN { printf "%+d", a - b }')
row "lockout login: peak RSS" "$(mb "${lock_kb[small]}")" "$(mb "${lock_kb[full]}")" "$(ratio_of "${lock_kb[full]}" "${lock_kb[small]}")" "full ≤ small + 512 KiB" "$(within "$lk_d" 512)"
row "  RSS above a wrong code" "$lk_s KiB" "$lk_f KiB" "-" "-" "-"

admin_row() { # KEY GOAL-MS (- for none)
    if [ "$2" = - ]; then
        row "$1" "${cmd_ms[$1:small]} ms" "${cmd_ms[$1:full]} ms" "$(ratio_of "${cmd_ms[$1:full]}" "${cmd_ms[$1:small]}")" "- (on request)" "-"
    else
        row "$1" "${cmd_ms[$1:small]} ms" "${cmd_ms[$1:full]} ms" "$(ratio_of "${cmd_ms[$1:full]}" "${cmd_ms[$1:small]}")" "≤ $2 ms" "$(within "${cmd_ms[$1:full]}" "$2")"
    fi
    row "  peak RSS" "$(mb "${cmd_kb[$1:small]}")" "$(mb "${cmd_kb[$1:full]}")" "$(ratio_of "${cmd_kb[$1:full]}" "${cmd_kb[$1:small]}")" "-" "-"
    row "  CPU (user + system)" "${cmd_cpu[$1:small]} ms" "${cmd_cpu[$1:full]} ms" "$(ratio_of "${cmd_cpu[$1:full]}" "${cmd_cpu[$1:small]}")" "-" "-"
}
admin_row "user add" 50
admin_row "contact add" 50
admin_row "net add" 50
admin_row export 1000
admin_row import 1000
l1=${lin_ms[${lin_sizes[0]}]} l2=${lin_ms[${lin_sizes[1]}]} l3=${lin_ms[${lin_sizes[2]}]}
lin_ok=$(awk -v a="$l1" -v b="$l2" -v c="$l3" 'BEGIN { print (b <= 2.5 * a && c <= 2.5 * b) ? "PASS" : "MISS" }')
row "import ${lin_sizes[0]}/${lin_sizes[1]}/${lin_sizes[2]} rules" "-" "$l1/$l2/$l3 ms" "$(ratio_of "$l3" "$l1")" "×2 rules ≤ ×2.5 time" "$lin_ok"
admin_row doctor 1000
if [ -n "$doctor_full" ]; then admin_row "doctor --full" -; fi
for f in "${log_filters[@]}"; do
    k="log show $f"
    label=$k
    if [ ${#label} -gt 38 ]; then label="log show $(sed 's/ [^-][^ ]*//g' <<<"$f")"; fi
    row "$label" "${cmd_ms[$k:small]} (${cmd_cpu[$k:small]}) ms" "${cmd_ms[$k:full]} (${cmd_cpu[$k:full]}) ms" "$(ratio_of "${cmd_ms[$k:full]}" "${cmd_ms[$k:small]}")" "≤ 20 ms" "$(within "${cmd_ms[$k:full]}" 20)"
done
row "inbox: rows a login moved" "${inbox_moved[small]}" "${inbox_moved[full]}" "-" "0 (never in a login)" \
    "$( [ "${inbox_moved[small]}" = 0 ] && [ "${inbox_moved[full]}" = 0 ] && echo PASS || echo MISS)"
row "inbox: slowest login, alone" "${inbox_max[small]} µs" "${inbox_max[full]} µs" "$(ratio_of "${inbox_max[full]}" "${inbox_max[small]}")" "-" "-"
row "  (its loops' p50)" "${inbox_p50[small]} µs" "${inbox_p50[full]} µs" "-" "-" "-"
row "  loops with a login > 5 ms" "${inbox_slow[small]}" "${inbox_slow[full]}" "-" "-" "-"
row "inbox: slowest, admin moving" "${inbox_cmax[small]} µs" "${inbox_cmax[full]} µs" "$(ratio_of "${inbox_cmax[full]}" "${inbox_cmax[small]}")" "-" "-"
row "  loops with a login > 5 ms" "${inbox_cslow[small]}" "${inbox_cslow[full]}" "-" "-" "-"
echo
echo "Δp50: p50 minus pam_permit's p50 measured alongside. Commands: the median of $n_cmd runs ($n_slow for export, import"
echo "and doctor): wall time, the process's peak RSS and CPU time (getrusage; wall minus CPU is mostly waiting for the"
echo "disk: fsyncs, slow on a shared machine); lockout: the median of $n_lock; the time is pambench's of the locking"
echo "login (its own process, so the module's loading included), RSS and CPU that process's. Inbox: logins in loops of 100"
echo "until 2 MiB were appended; 'slowest' is the slowest single login (scheduler noise included), 'admin moving'"
echo "with mfa-admin settings show (which moves the inbox) every 0.5 s beside $inbox_loops loops of 100 logins."
printf 'log show: wall (CPU) time, --limit 20 and'
printf ' [%s]' "${log_filters[@]}"
echo " (the user a000001 has rows at either size)."
echo
echo "command: $0 (SCALE_USERS=$full_users SCALE_RULES=$full_rules SCALE_LOG=$full_log N=$n_chunk ROUNDS=$rounds N_TOTP=$n_totp N_CMD=$n_cmd N_LOCK=$n_lock INBOX_LOOPS=$inbox_loops WARMUP=$warmup), $(($(date +%s) - t_start)) s"

report_problems "a case did not take the path it was meant to"
exit 0
