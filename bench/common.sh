# shellcheck shell=bash disable=SC2034,SC2059,SC2154
# bench/common.sh — what the PAM benchmarks (bench/pam_bench.sh, bench/totp_bench.sh) share.
# Sourced, not run. The script sets bench_name (the prefix of its messages) and `set -euo
# pipefail` first, then sources this file, which sets here, repo, pambench_c, warmup and
# target_dir and defines:
#
#   die, note              messages prefixed with "$bench_name: "
#   find_pam_module FILE   the path of a module in the system's PAM module directory
#   bench_start TOOL...    checks that cc, cargo, sqlite3, awk and each TOOL are installed, finds
#                          pam_google_authenticator.so (ga_module), makes the temporary directory
#                          $work (umask 077) and the exit trap that removes it (KEEP=1 keeps it),
#                          after calling the script's cleanup_extra function if it has one
#   bench_build            builds pambench, the release pam_mfa module and mfa-admin; sets
#                          pambench, module, admin
#   bench_install [DIR]    a fresh installation in DIR (default $work/mfa; never /etc/mfa,
#                          /var/lib/mfa or /var/spool/mfa): sets inst, config, db; defines
#                          `mfa ARGS...`
#   bench_load             loads 10,000 users u00001..u10000 (one email contact each), 1,000
#                          network rules (10.0.0.0/8 requires 2FA; 10.1.1.0/24 is trusted for
#                          sshd; 10.200.0.0/16 is only inside 10.0.0.0/8) and 100,000 auth-log rows
#   check_net SERVICE ADDRESS required|trusted
#   bench_console          sets pb_prefix (as root: run pambench in a private mount namespace
#                          where /dev/console is /dev/null when there is no /dev/log, and
#                          nsswitch.conf says "files" for passwd/group unless NSS=system) and
#                          console_note
#   run NAME N SERVICE USER RHOST RESPONSE...
#                          WARMUP unreported iterations, then N measured ones, in one pambench
#                          process each; calls the script's before_measured NAME in between, if
#                          defined; sets line[NAME], iters[NAME], oks[NAME]
#   field LINE KEY         a numeric KEY=value of a pambench summary line
#   percentiles FILE       "n p50 p99" of the numbers in FILE, indexed as pambench does
#   delta A B              A - B, signed, one decimal
#   expect_ok NAME WANT, log_mark, log_since MARK, expect_log NAME MARK OUTCOME:REASON N
#                          checks; a failed one is added to problems
#   machine_line           the first line of a report: kernel, CPUs, date, load averages
#   table_header, table_row CASE ITERS OK P50 P99 DELTA TARGET RESULT
#   report_problems        prints problems and exits 1 if there are any
#   alt_case NAME SERVICE USER RHOST RESPONSE...
#   run_alternating ROUNDS N NAME...
#                          cases measured side by side: WARMUP iterations of each, then ROUNDS
#                          rounds of one pambench -n N per case, the order rotated each round
#                          (drift and other load hit every case alike); calls the script's
#                          before_chunk NAME before each, if defined; sets line/iters/oks[NAME]
#                          (p50: the median of the rounds' p50s; p99: the median of their p99s)
#   per_login_script       writes $work/per-login.sh, the runner of per_login
#   per_login PLAN OUT     one pambench -n 1 process per line "ROUND NAME SERVICE USER RHOST
#                          KEYHEX RESTORE" of PLAN (KEYHEX: answer the current TOTP code of that
#                          hex key, or "-": answer 000000; RESTORE: "-" or SRC>DST, a file
#                          copied just before the login, e.g. a login-state file put back);
#                          appends "ROUND NAME <pambench summary>" to OUT
#   per_login_stats OUT NAME SKIP
#                          sets line/iters/oks[NAME] from OUT's lines of rounds >= SKIP
#   timed_cmd CMD...       runs CMD (output discarded, errors in $work/cmd.err); sets t_ms
#                          (wall, ms), t_kb (peak RSS, KiB), t_cpu (user + system, ms) and
#                          t_rc (its exit status), through $work/rusage (rusage_script)
#   median                 the median of the numbers on standard input

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
pambench_c=${PAMBENCH_C:-"$(cd "$here/../.." && pwd)/shared/tools/pambench.c"}
warmup=${WARMUP:-50}
target_dir=${CARGO_TARGET_DIR:-$repo/target}

die() { echo "$bench_name: $*" >&2; exit 1; }
note() { echo "$bench_name: $*"; }

problems=()
declare -A line iters oks
pb_env=()
pb_prefix=()

bench_start() {
    local tool
    [ -f "$pambench_c" ] || die "pambench.c not found at $pambench_c (set PAMBENCH_C)"
    for tool in cc cargo sqlite3 awk "$@"; do
        command -v "$tool" >/dev/null || die "$tool is not installed"
    done
    ga_module=$(find_pam_module pam_google_authenticator.so) ||
        die "pam_google_authenticator.so not found (apt-get install libpam-google-authenticator)"

    umask 077
    work=$(mktemp -d "${TMPDIR:-/tmp}/mfa-$bench_name.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

find_pam_module() { # FILE -> its path in the system's PAM module directory; fails if absent
    local d
    for d in /lib/x86_64-linux-gnu/security /usr/lib/x86_64-linux-gnu/security /lib/security /usr/lib/security \
             /lib64/security /usr/lib64/security "/usr/lib/$(uname -m)-linux-gnu/security"; do
        if [ -f "$d/$1" ]; then echo "$d/$1"; return 0; fi
    done
    return 1
}

bench_cleanup() {
    local rc=$?
    if declare -F cleanup_extra >/dev/null; then cleanup_extra || true; fi
    if [ "${KEEP:-0}" = 1 ]; then
        note "kept $work"
    else
        rm -rf "$work"
    fi
    exit "$rc"
}

bench_build() {
    note "building pambench, pam_mfa (release) and mfa-admin (release)"
    cc -O2 -o "$work/pambench" "$pambench_c" -lpam
    (cd "$repo" && cargo build --quiet --release -p pam_mfa -p mfa-admin)
    module=$target_dir/release/libpam_mfa.so
    admin=$target_dir/release/mfa-admin
    [ -f "$module" ] || die "$module was not built"
    [ -x "$admin" ] || die "$admin was not built"
    pambench=$work/pambench
}

mfa() { "$admin" --config "$config" "$@"; }

bench_install() { # [DIR]
    inst=${1:-$work/mfa}
    mkdir -p "$inst"
    config=$inst/mfa.toml
    cat >"$config" <<EOF
[paths]
database = "$inst/db/mfa.db"
spool = "$inst/spool"
runtime = "$inst/run"

# init must not create the sender's account mfa on the bench machine.
[sender]
user = "nobody"
EOF
    db=$inst/db/mfa.db
    mfa init >/dev/null
}

bench_load() {
    local now counts
    note "loading 10,000 users, 1,000 network rules, 100,000 auth-log rows"
    now=$(date +%s)
    awk -v now="$now" '
function hex32(n) { return sprintf("%08X", n) }
function v4key(n) { return "X'\''000000000000000000000000" hex32(n) "'\''" }
# An auth-log row'\''s address key: the family byte, then the 16-byte key (mfa_core::store::logs).
function logkey(n) { return "X'\''04000000000000000000000000" hex32(n) "'\''" }
BEGIN {
    print "PRAGMA foreign_keys = ON;"
    print "BEGIN;"
    # 10,000 users, each with one email contact.
    print "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)"
    print "INSERT INTO users (name, full_name, enabled, created)"
    print "  SELECT printf('\''u%05d'\'', i), printf('\''Bench User %d'\'', i), 1, " now " FROM n;"
    print "INSERT INTO contacts (user, seq, channel, address, carrier, label, created)"
    print "  SELECT name, 1, '\''email'\'', name || '\''@example.com'\'', NULL, '\'''\'', " now " FROM users;"

    # 1,000 network rules: 10.0.0.0/8 requires 2FA everywhere; 899 IPv4 /24s inside it and
    # 100 IPv6 /48s, for sshd, ftp or every service, one in seven requiring 2FA.
    printf "INSERT INTO networks (service, family, first, last, span, require, note, created) VALUES "
    printf "('\''*'\'', 4, %s, %s, %s, 1, '\''corporate'\'', %d)", v4key(10 * 16777216), v4key(10 * 16777216 + 16777215), v4key(16777215), now
    for (k = 0; k < 999; k++) {
        svc = (k % 3 == 0) ? "*" : (k % 3 == 1) ? "sshd" : "ftp"
        req = (k % 7 == 0) ? 1 : 0
        if (k % 10 == 9) {
            pre = sprintf("20010DB8%04X", k)
            first = "X'\''" pre "00000000000000000000'\''"
            last = "X'\''" pre "FFFFFFFFFFFFFFFFFFFF'\''"
            span = "X'\''000000000000FFFFFFFFFFFFFFFFFFFF'\''"
            fam = 6
        } else {
            a = int(k / 250) + 1; b = k % 250
            base = 10 * 16777216 + a * 65536 + b * 256
            first = v4key(base); last = v4key(base + 255); span = v4key(255)
            fam = 4
        }
        printf ",\n('\''%s'\'', %d, %s, %s, %s, %d, '\''rule %d'\'', %d)", svc, fam, first, last, span, req, k, now
    }
    print ";"

    # 100,000 auth-log rows over the last 30 days, oldest first.
    srand(1)
    split("success ignore ignore ignore deny", outcomes, " ")
    split("sshd sshd sshd ftp su sudo", services, " ")
    n = 100000; step = 30 * 86400 / n
    for (i = 0; i < n; i++) {
        if (i % 1000 == 0) {
            if (i) print ";"
            printf "INSERT INTO auth_log (ts, user, service, address, addr_key, tty, outcome, method, destination, reason) VALUES\n"
            sep = ""
        }
        ts = now - 30 * 86400 + int(i * step)
        user = sprintf("u%05d", 1 + int(rand() * 10000))
        a = 1 + int(rand() * 200); b = int(rand() * 256); c = 1 + int(rand() * 254)
        addr = sprintf("10.%d.%d.%d", a, b, c)
        key = logkey(10 * 16777216 + a * 65536 + b * 256 + c)
        o = outcomes[1 + int(rand() * 5)]
        if (o == "success") { m = "passcode"; dest = "u***@e***.com"; r = "" }
        else if (o == "deny") { m = "passcode"; dest = ""; r = "wrong passcode; attempts used up" }
        else { m = ""; dest = ""; r = (rand() < 0.5) ? "trusted network (rule 17)" : "repeat window" }
        printf "%s(%d, '\''%s'\'', '\''%s'\'', '\''%s'\'', %s, '\''pts/%d'\'', '\''%s'\'', '\''%s'\'', '\''%s'\'', '\''%s'\'')", \
            sep, ts, user, services[1 + int(rand() * 6)], addr, key, int(rand() * 10), o, m, dest, r
        sep = ",\n"
    }
    print ";"
    # Rows written behind mfa-admin'"'"'s back: a new policy generation makes the next
    # mfa-admin command rewrite the policy snapshot the module reads (mfa_core::snapshot).
    print "INSERT INTO meta (key, value) VALUES ('"'"'policy_generation'"'"', '"'"'1'"'"')"
    print "  ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT);"
    print "COMMIT;"
    print "PRAGMA wal_checkpoint(TRUNCATE);"
}' >"$work/load.sql"
    sqlite3 "$db" <"$work/load.sql" >/dev/null
    counts=$(sqlite3 "$db" "SELECT (SELECT count(*) FROM users) || ' ' || (SELECT count(*) FROM contacts) || ' ' ||
                                   (SELECT count(*) FROM networks) || ' ' || (SELECT count(*) FROM auth_log)")
    [ "$counts" = "10000 10000 1000 100000" ] || die "unexpected row counts (users contacts networks auth_log): $counts"
    mfa settings show >/dev/null || die "mfa-admin could not read the loaded database"
    [ -s "$db-policy" ] || die "mfa-admin did not write the policy snapshot $db-policy"
}

# The rules read back through mfa-admin as intended (this checks the blob encoding).
check_net() { # SERVICE ADDRESS WANT(required|trusted)
    local out
    out=$(mfa --json net check --service "$1" "$2") || die "net check $1 $2 failed"
    grep -Eq '"decision": *"'"$3"'"' <<<"$out" || die "net check --service $1 $2: expected $3, got: $out"
}

# With no syslog daemon (no /dev/log), pam_google_authenticator's syslog falls back to
# /dev/console (a slow serial console on many VMs: ~2 ms per login, 50 ms stalls), which no
# real host has in its login path. So, as root, each pambench runs in a private mount
# namespace where /dev/console is /dev/null; nothing outside that process sees it.
# pam_mfa and pam_permit never write to the console. CONSOLE=keep turns this off.
bench_console() {
    local binds=() nss=$work/nsswitch.conf
    pb_prefix=()
    console_note="syslog: $( [ -S /dev/log ] && echo "/dev/log is present" || echo "no /dev/log: syslog lines are dropped")"
    [ "$(id -u)" = 0 ] && command -v unshare >/dev/null || return 0
    if [ ! -S /dev/log ] && [ "${CONSOLE:-}" != keep ]; then
        binds+=("/dev/null:/dev/console")
    fi
    # pam_mfa looks PAM_USER up once (getpwnam: the account's canonical name). The bench
    # users are in no passwd file, so on Debian ("passwd: files systemd") each lookup falls
    # through to libnss_systemd, loaded afresh in every process (~250 µs a login) -- which a
    # real login does not pay: its user is found in /etc/passwd (or the name service), and
    # sshd, su and sudo looked the user up in that process before PAM. With NSS=files (the
    # default) pambench sees an nsswitch.conf whose passwd and group lines say "files":
    # a missing user then costs what a found one does. NSS=system keeps the machine's.
    if [ "${NSS:-files}" = files ] && [ -f /etc/nsswitch.conf ]; then
        sed -E 's/^(passwd|group|shadow):.*/\1: files/' /etc/nsswitch.conf >"$nss"
        chmod 0644 "$nss"
        binds+=("$nss:/etc/nsswitch.conf")
    fi
    [ ${#binds[@]} -gt 0 ] || return 0
    # shellcheck disable=SC2016
    pb_prefix=(unshare --mount --propagation private sh -c '
        while [ "$1" != -- ]; do mount --bind "${1%%:*}" "${1#*:}" || exit 1; shift; done
        shift; exec "$@"' sh "${binds[@]}" --)
    if "${pb_prefix[@]}" true 2>/dev/null; then
        case " ${binds[*]}" in *:/dev/console*)
            console_note="$console_note; pambench runs with /dev/console bound to /dev/null in a private mount namespace" ;;
        esac
        case " ${binds[*]}" in *:/etc/nsswitch.conf*)
            console_note="$console_note; pambench sees passwd/group from files only (NSS=files; bench users have no account)" ;;
        esac
    else
        pb_prefix=()
        console_note="$console_note; could not make pambench's mount namespace (google-authenticator may be slowed by console writes; missing users go through every name service)"
    fi
}

field() { # LINE KEY
    sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<" $1"
}

run() { # NAME N SERVICE USER RHOST RESPONSE...
    local name=$1 n=$2 svc=$3 user=$4 rhost=$5 out
    shift 5
    env "${pb_env[@]}" "${pb_prefix[@]}" "$pambench" -c "$confdir" -r "$rhost" -n "$warmup" "$svc" "$user" "$@" >/dev/null 2>&1 || true
    if declare -F before_measured >/dev/null; then before_measured "$name"; fi
    out=$(env "${pb_env[@]}" "${pb_prefix[@]}" "$pambench" -c "$confdir" -r "$rhost" -n "$n" "$svc" "$user" "$@" 2>&1) || true
    [[ "$out" == service=* ]] || die "pambench $svc failed: $out"
    line[$name]=$out
    iters[$name]=$(field "$out" n)
    oks[$name]=$(field "$out" ok)
    echo "  $name: $out"
}

percentiles() { # FILE -> "n p50 p99", the same order statistics as pambench's summary line
    sort -g "$1" | awk '{ v[n++] = $1 } END { if (n) printf "%d %.1f %.1f\n", n, v[int(n / 2)], v[int(n * 0.99)]; else print "0 - -" }'
}

delta() { # A B -> A - B, signed
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", a - b }'
}

# The module appends auth-log rows to an inbox file; any mfa-admin command moves them into
# the database (mfa_core::authlog), so read the log after one.
log_mark() { mfa settings show >/dev/null; sqlite3 "$db" "SELECT coalesce(max(id), 0) FROM auth_log"; }
log_since() { # MARK -> "count outcome:reason" lines
    mfa settings show >/dev/null
    sqlite3 -separator ' ' "$db" "SELECT count(*), outcome || ':' || reason FROM auth_log WHERE id > $1 GROUP BY 2 ORDER BY 1 DESC"
}

expect_ok() { # NAME WANT
    [ "${oks[$1]}" = "$2" ] || problems+=("$1: $2 successes expected, pambench counted ${oks[$1]}")
}
expect_log() { # NAME MARK WANT-OUTCOME:REASON-PREFIX N
    local got count reason
    got=$(log_since "$2")
    echo "    auth log: ${got//$'\n'/; }"
    read -r count reason <<<"$(head -n1 <<<"$got")"
    if [ "$(wc -l <<<"$got")" != 1 ] || [[ "$reason" != "$3"* ]] || [ "$count" != "$4" ]; then
        problems+=("$1: auth log should hold $4 rows '$3...', has: ${got//$'\n'/; }")
    fi
}

machine_line() { # LOAD-AT-START
    echo "$bench_name: $(uname -srm), $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'), load average at start $1, now $(cut -d' ' -f1-3 /proc/loadavg)"
}

table_fmt='%-22s %6s %6s %10s %10s %12s %14s  %s\n'
table_header() {
    printf "$table_fmt" case iters ok "p50 µs" "p99 µs" "Δp50 µs" "target Δp50" result
    printf "$table_fmt" ---------------------- ------ ------ ---------- ---------- ------------ -------------- ------
}
table_row() { # CASE ITERS OK P50 P99 DELTA TARGET RESULT
    printf "$table_fmt" "$@"
}

report_problems() { # HEADING
    if [ ${#problems[@]} -gt 0 ]; then
        echo
        echo "PROBLEMS ($1):"
        printf '  %s\n' "${problems[@]}"
        exit 1
    fi
}

# ---------------------------------------------------------------- side by side
declare -A alt_args
alt_case() { # NAME SERVICE USER RHOST RESPONSE...
    local name=$1
    shift
    alt_args[$name]=$(printf '%q ' "$@")
}

median() {
    sort -g | awk '{ v[n++] = $1 } END { if (n) print (n % 2) ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2; else print "-" }'
}

run_alternating() { # ROUNDS N NAME...
    local rounds=$1 n=$2 r k name out nc svc user rhost
    shift 2
    local names=("$@")
    nc=${#names[@]}
    for name in "${names[@]}"; do
        : >"$work/alt-$name"
        eval "set -- ${alt_args[$name]}"
        svc=$1 user=$2 rhost=$3
        shift 3
        env "${pb_env[@]}" "${pb_prefix[@]}" "$pambench" -c "$confdir" -r "$rhost" -n "$warmup" "$svc" "$user" "$@" >/dev/null 2>&1 || true
    done
    for ((r = 0; r < rounds; r++)); do
        for ((k = 0; k < nc; k++)); do
            name=${names[(r + k) % nc]}
            eval "set -- ${alt_args[$name]}"
            svc=$1 user=$2 rhost=$3
            shift 3
            if declare -F before_chunk >/dev/null; then before_chunk "$name"; fi
            out=$(env "${pb_env[@]}" "${pb_prefix[@]}" "$pambench" -c "$confdir" -r "$rhost" -n "$n" "$svc" "$user" "$@" 2>&1) || true
            [[ "$out" == service=* ]] || die "pambench $svc ($name) failed: $out"
            echo "$(field "$out" n) $(field "$out" ok) $(field "$out" p50_us) $(field "$out" p99_us)" >>"$work/alt-$name"
        done
    done
    for name in "${names[@]}"; do
        iters[$name]=$(awk '{ s += $1 } END { print s + 0 }' "$work/alt-$name")
        oks[$name]=$(awk '{ s += $2 } END { print s + 0 }' "$work/alt-$name")
        line[$name]="n=${iters[$name]} ok=${oks[$name]} p50_us=$(cut -d' ' -f3 "$work/alt-$name" | median) p99_us=$(cut -d' ' -f4 "$work/alt-$name" | median)"
        echo "  $name: ${line[$name]} (rounds' p50: $(cut -d' ' -f3 "$work/alt-$name" | tr '\n' ' '))"
    done
}

# ---------------------------------------------------------------- one process per login
per_login_script() {
    cat >"$work/per-login.sh" <<'EOF'
set -u
pambench=$1 confdir=$2 plan=$3 out=$4
while read -r round name svc user rhost hex restore; do
    code=000000
    if [ "$hex" != - ]; then code=$(oathtool --totp "$hex"); fi
    # Put back, then written out: the login does not pay for writing back the bench's copy.
    if [ "$restore" != - ]; then cat "${restore%%>*}" >"${restore#*>}" && sync "${restore#*>}"; fi
    res=$("$pambench" -c "$confdir" -r "$rhost" -n 1 "$svc" "$user" "$code" 2>&1) || true
    printf '%d %s %s\n' "$round" "$name" "${res//$'\n'/ }" >>"$out"
done <"$plan"
EOF
}

per_login() { # PLAN OUT
    : >"$2"
    env "${pb_env[@]}" "${pb_prefix[@]}" bash "$work/per-login.sh" "$pambench" "$confdir" "$1" "$2"
}

per_login_stats() { # OUT NAME SKIP
    local stats ran good count p50 p99
    : >"$work/vals"
    stats=$(awk -v name="$2" -v skip="$3" -v vals="$work/vals" '
        $2 == name && / service=/ {
            if ($1 < skip) next
            ran++
            match($0, / p50_us=[0-9.]+/); print substr($0, RSTART + 8, RLENGTH - 8) > vals
            if ($0 ~ / ok=1 /) ok++
        }
        END { printf "%d %d\n", ran, ok }' "$1")
    read -r ran good <<<"$stats"
    read -r count p50 p99 < <(percentiles "$work/vals")
    line[$2]="n=$count ok=$good p50_us=$p50 p99_us=$p99"
    iters[$2]=$count
    oks[$2]=$good
    echo "  $2: ${line[$2]}"
}

# ---------------------------------------------------------------- commands
# $work/rusage RESULT STDOUT STDERR CMD...: runs CMD with its output in the files STDOUT and
# STDERR, then writes to RESULT "wall-ms peak-RSS-KiB CPU-ms (user + system) exit-status" of
# CMD (wait4's rusage: microseconds, where /usr/bin/time rounds CPU to 10 ms; a small C
# parent, so that the child's peak RSS is its own and not an interpreter's copied image).
rusage_script() {
    cat >"$work/rusage.c" <<'EOF'
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: rusage RESULT STDOUT STDERR CMD...\n"); return 2; }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 2; }
    if (pid == 0) {
        int o = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600), e = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(126);
        execvp(argv[4], argv + 4);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) { perror("wait4"); return 2; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    FILE *r = fopen(argv[1], "w");
    if (!r) { perror(argv[1]); return 2; }
    fprintf(r, "%.1f %ld %.1f %d\n", (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6, ru.ru_maxrss,
            (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3,
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return fclose(r) ? 2 : 0;
}
EOF
    cc -O2 -o "$work/rusage" "$work/rusage.c" || die "cannot build $work/rusage"
}

timed_cmd() { # CMD...
    [ -x "$work/rusage" ] || rusage_script
    "$work/rusage" "$work/time.out" /dev/null "$work/cmd.err" "$@" || die "could not run $1"
    read -r t_ms t_kb t_cpu t_rc <"$work/time.out"
}
