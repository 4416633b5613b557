#!/usr/bin/env bash
# bench/import_bench.sh — how long does a bulk import of users take? (issue 15)
#
# Times, each into a fresh private installation, the median of N_RUNS runs (wall time, CPU
# time and peak RSS of mfa-admin):
#
#   csv, groups        `mfa-admin user import --csv` of a generated file of USERS users, each
#                      with an email address, every second one an SMS number, every third one
#                      a carrier-gateway phone, three in four in one of 20 groups (the groups
#                      made first with `group add`, not timed)
#   csv, no groups     the same file without its group column into an installation without
#                      groups (baseline: what groups cost)
#   toml import        `mfa-admin import` of an export-format document with the same users,
#                      contacts and groups (baseline: the declarative path that existed before
#                      `user import`)
#   csv --dry-run      the checks of the first case alone (nothing written)
#
# and checks after each that the store holds every user and contact (a case that did not
# import what it should is a failure, not a number). The goal (issue 15): 10,000 users in
# one transaction, the snapshot built once; printed beside the numbers: µs per user and the
# ratio to the toml baseline measured in the same run.
#
# Uses bench/common.sh (installation, timing, the machine line). Everything lives in a
# temporary directory (never /etc/mfa, /var/lib/mfa or /var/spool/mfa), removed on exit.
#
# Usage: bench/import_bench.sh           (as root, or as any user who can build)
# Environment:
#   USERS             users in the file (default 10000)
#   N_RUNS            runs of each case (the median is shown; default 5)
#   PAMBENCH_C        pambench.c (only checked for by bench/common.sh)
#   CARGO_TARGET_DIR  as for cargo (default <repo>/target)
#   KEEP=1            keep the temporary directory (its path is printed)
#
# Exit status: 0 when every case imported what it should; 1 otherwise.

set -euo pipefail
bench_name=import_bench
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

users=${USERS:-10000}
n_runs=${N_RUNS:-5}
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
problems=()

bench_start seq
note "building mfa-admin (release)"
(cd "$repo" && cargo build --quiet --release -p mfa-admin)
admin=$target_dir/release/mfa-admin
[ -x "$admin" ] || die "$admin was not built"

# The inputs: one CSV with groups, the same without, and the export-format document.
awk -v n="$users" 'BEGIN {
    print "user,full_name,group,email,sms,phone,carrier"
    for (i = 0; i < n; i++) {
        g = (i % 4 == 3) ? "" : sprintf("g%02d", i % 20)
        sms = (i % 2 == 0) ? sprintf("+1415%07d", i) : ""
        phone = (i % 3 == 0) ? sprintf("555%07d", i) : ""
        carrier = (i % 3 == 0) ? "Verizon" : ""
        printf "u%06d,\"User %d, Jr.\",%s,u%d@example.com,%s,%s,%s\r\n", i, i, g, i, sms, phone, carrier
    }
}' >"$work/groups.csv"
awk -v n="$users" 'BEGIN {
    print "user,full_name,email,sms,phone,carrier"
    for (i = 0; i < n; i++) {
        sms = (i % 2 == 0) ? sprintf("+1415%07d", i) : ""
        phone = (i % 3 == 0) ? sprintf("555%07d", i) : ""
        carrier = (i % 3 == 0) ? "Verizon" : ""
        printf "u%06d,\"User %d, Jr.\",u%d@example.com,%s,%s,%s\r\n", i, i, i, sms, phone, carrier
    }
}' >"$work/nogroups.csv"
want_contacts=$(awk -v n="$users" 'BEGIN { c = 0; for (i = 0; i < n; i++) c += 1 + (i % 2 == 0) + (i % 3 == 0); print c }')

bench_install "$work/base" 2>/dev/null
mfa export "$work/base.toml" >/dev/null 2>&1
{
    cat "$work/base.toml"
    for g in $(seq -f 'g%02g' 0 19); do printf '\n[[groups]]\nname = "%s"\n' "$g"; done
    awk -v n="$users" 'BEGIN {
        for (i = 0; i < n; i++) {
            printf "\n[[users]]\nname = \"u%06d\"\nfull_name = \"User %d, Jr.\"\n", i, i
            if (i % 4 != 3) printf "group = \"g%02d\"\n", i % 20
            s = 1
            printf "[[users.contacts]]\nseq = %d\nemail = \"u%d@example.com\"\n", s++, i
            if (i % 2 == 0) printf "[[users.contacts]]\nseq = %d\nsms = \"+1415%07d\"\n", s++, i
            if (i % 3 == 0) printf "[[users.contacts]]\nseq = %d\nphone = \"555%07d\"\ncarrier = \"Verizon\"\n", s++, i
        }
    }'
} >"$work/doc.toml"

# fresh DIR WITH_GROUPS: a new installation (groups g00..g19 when WITH_GROUPS is yes).
fresh() {
    rm -rf "$1"
    # (init's warning that the sender's user nobody is shared: true, and not the point here)
    bench_install "$1" 2>/dev/null
    if [ "$2" = yes ]; then
        for g in $(seq -f 'g%02g' 0 19); do mfa group add "$g" >/dev/null; done
    fi
}

# check CASE: the installation holds every user and contact.
check() {
    local u c
    u=$(sqlite3 "$db" 'SELECT count(*) FROM users')
    c=$(sqlite3 "$db" 'SELECT count(*) FROM contacts')
    if [ "$u" != "$users" ] || [ "$c" != "$want_contacts" ]; then
        problems+=("$1: $u users and $c contacts after the import; want $users and $want_contacts")
    fi
}

declare -A ms cpu kb
# measure CASE WITH_GROUPS CHECK CMD...: N_RUNS runs, each into a fresh installation.
measure() {
    local name=$1 groups=$2 want=$3 _run
    shift 3
    : >"$work/runs"
    for _run in $(seq "$n_runs"); do
        fresh "$work/inst" "$groups"
        timed_cmd "$admin" --config "$config" "$@"
        if [ "$t_rc" != 0 ]; then
            problems+=("$name: mfa-admin exited $t_rc: $(head -c 300 "$work/cmd.err")")
        fi
        echo "$t_ms $t_kb $t_cpu" >>"$work/runs"
        if [ "$want" = yes ]; then check "$name"; fi
    done
    ms[$name]=$(cut -d' ' -f1 "$work/runs" | median | xargs printf '%.0f')
    kb[$name]=$(cut -d' ' -f2 "$work/runs" | median)
    cpu[$name]=$(cut -d' ' -f3 "$work/runs" | median | xargs printf '%.0f')
}

note "$users users, $want_contacts contacts; $n_runs runs of each case"
measure "toml import" no yes import "$work/doc.toml"
measure "csv, groups" yes yes user import --csv "$work/groups.csv"
measure "csv, no groups" no yes user import --csv "$work/nogroups.csv"
measure "csv --dry-run" yes no user import --csv "$work/groups.csv" --dry-run

# One transaction: exactly one audit line for the last real import.
fresh "$work/inst" yes
mfa user import --csv "$work/groups.csv" >/dev/null
n_audit=$(sqlite3 "$db" "SELECT count(*) FROM audit_log WHERE action = 'user import'")
[ "$n_audit" = 1 ] || problems+=("user import wrote $n_audit audit lines; want 1")

machine_line "$load_at_start"
base=${ms[toml import]}
printf '%-16s %10s %10s %10s %10s %14s\n' CASE "WALL ms" "CPU ms" "RSS KiB" "µs/user" "vs toml"
for c in "toml import" "csv, groups" "csv, no groups" "csv --dry-run"; do
    printf '%-16s %10s %10s %10s %10s %14s\n' "$c" "${ms[$c]}" "${cpu[$c]}" "${kb[$c]}" \
        "$(awk -v t="${ms[$c]}" -v n="$users" 'BEGIN { printf "%.0f", t * 1000 / n }')" \
        "$(awk -v t="${ms[$c]}" -v b="$base" 'BEGIN { printf "x%.2f", t / b }')"
done
if [ ${#problems[@]} -gt 0 ]; then
    printf '%s: problem: %s\n' "$bench_name" "${problems[@]}" >&2
    exit 1
fi
