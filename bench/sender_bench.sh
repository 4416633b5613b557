#!/usr/bin/env bash
# bench/sender_bench.sh — measures mfa-sender against Postfix's smtp-sink and compares it with
# Postfix's own load generator, smtp-source, sending to the same sink in the same run:
#
#   drain rate               N_TPUT messages already queued, `mfa-sender --once` started and
#                            timed until it exits with the spool empty: ≥ 50 % of
#                            `smtp-source -d` with as many sessions as the sender has workers
#                            (and ≥ 1,000 msg/s)
#   latency, idle sender     enqueue → accepted by the server, p50 ≤ 5 ms, p99 ≤ 20 ms
#   memory                   the daemon's peak RSS (VmHWM) at the end ≤ 20 MB
#
# The drain rate is the sender's own: the messages are enqueued (mfa_core::spool::enqueue, as
# pam_mfa does) while no sender runs, so the enqueue loop's speed is not in it. Each of ROUNDS
# rounds times `smtp-source -d -s WORKERS` and then the sender's drain, back to back on the
# same sink, and the table reports the medians and the ratio of the medians (the machine's
# load changes during a run; each round's pair is shown under "details"). Beside the rates,
# the CPU time (user+sys) each side spent per message, which the load disturbs much less:
# smtp-source only talks SMTP, the sender also claims, reads and deletes a spool file.
#
# One run installs Postfix if smtp-sink is missing (with /usr/sbin/policy-rc.d denying
# service starts, so the system's Postfix is never started), builds mfa-sender, mfa-admin and
# the driver mfa-sender/examples/enqueue_bench.rs (release), starts smtp-sink on a free port of
# 127.0.0.1, runs the drain rounds, then runs mfa-sender (daemon mode) on a private
# configuration and spool in a temporary directory and drives it with enqueue_bench, which
# sees each message claimed and accepted through inotify on <spool>/cur (latency; then a
# burst of N_TPUT enqueued at once, reported under details). Every process and temporary file
# goes away on exit.
#
# Usage: bench/sender_bench.sh            (as root on Debian 12, or as any user when
#                                          Postfix's smtp-sink/smtp-source are installed)
# Environment:
#   N_LAT       messages of the latency case, one at a time (default 500)
#   WARMUP      unreported messages sent before them (default 20)
#   GAP_MS      idle time before each latency message (default 2)
#   N_TPUT      messages of each drain and of each smtp-source run (default 10000)
#   ROUNDS      drain rounds, each smtp-source -d then mfa-sender --once (default 3)
#   WORKERS     [sender] workers, and smtp-source's parallel sessions (default 8)
#   CARGO_TARGET_DIR  as for cargo (default <repo>/target)
#   KEEP=1      keep the temporary directory (its path is printed)
#   SENDER_PRELOAD  a shared object to LD_PRELOAD into mfa-sender only (diagnostics, e.g. a
#               shim that sets TCP_NODELAY on every connect; off by default)
#
# Exit status: 0 when every case ran (targets met or not: PASS/MISS is in the table); 1 when
# something failed to install, build or run, or the sink did not receive every message.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
n_lat=${N_LAT:-500}
warmup=${WARMUP:-20}
gap_ms=${GAP_MS:-2}
n_tput=${N_TPUT:-10000}
rounds=${ROUNDS:-3}
workers=${WORKERS:-8}
target_dir=${CARGO_TARGET_DIR:-$repo/target}

# Targets.
target_p50_ms=5
target_p99_ms=20
target_tput=1000
target_ratio=50   # % of smtp-source -d
target_rss_mb=20

die() { echo "sender_bench: $*" >&2; exit 1; }
note() { echo "sender_bench: $*" >&2; }

# ---------------------------------------------------------------- install
sink_bin=/usr/sbin/smtp-sink
source_bin=/usr/sbin/smtp-source
if [ ! -x "$sink_bin" ] || [ ! -x "$source_bin" ]; then
    [ "$(id -u)" = 0 ] || die "smtp-sink/smtp-source missing; run as root to install postfix"
    note "installing postfix (for smtp-sink and smtp-source; its service is not started)"
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt_install_postfix() { apt-get install -y -q --no-install-recommends postfix >/dev/null; }
    ok=1
    apt_install_postfix || { apt-get update -q >/dev/null && apt_install_postfix; } || ok=0
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$ok" = 1 ] || die "apt-get install postfix failed"
    if [ ! -x "$sink_bin" ] || [ ! -x "$source_bin" ]; then
        die "postfix installed but smtp-sink/smtp-source missing"
    fi
fi
for tool in cargo awk sort; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done

# ---------------------------------------------------------------- build
note "building mfa-sender, mfa-admin and examples/enqueue_bench (release)"
(cd "$repo" && cargo build --quiet --release -p mfa-sender -p mfa-admin --bins --example enqueue_bench) \
    || die "cargo build failed"
sender_bin=$target_dir/release/mfa-sender
admin_bin=$target_dir/release/mfa-admin
driver_bin=$target_dir/release/examples/enqueue_bench
for b in "$sender_bin" "$admin_bin" "$driver_bin"; do [ -x "$b" ] || die "$b missing after build"; done

# ---------------------------------------------------------------- temp dir and cleanup
umask 077
work=$(mktemp -d "${TMPDIR:-/tmp}/mfa-sender-bench.XXXXXX")
sink_pid=
sender_pid=
stop() { # pid: TERM, then KILL after 5 s
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    local rc=$?
    [ -n "$sender_pid" ] && stop "$sender_pid"
    [ -n "$sink_pid" ] && stop "$sink_pid"
    if [ "${KEEP:-0}" = 1 ]; then note "kept $work"; else rm -rf "$work"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { echo "$EPOCHREALTIME"; }   # seconds with µs, bash ≥ 5

# ---------------------------------------------------------------- smtp-sink
# -c: running counters on stdout ("... mesg=N"), read to check every message arrived.
sink_user=()
[ "$(id -u)" = 0 ] && sink_user=(-u nobody)
port=
for _ in 1 2 3 4 5; do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    # Skip ports someone already listens on.
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
    "$sink_bin" -c "${sink_user[@]}" "127.0.0.1:$p" 1000 >"$work/sink.out" 2>"$work/sink.err" &
    sink_pid=$!
    for _ in $(seq 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
        kill -0 "$sink_pid" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$port" ] && break
    stop "$sink_pid"; sink_pid=
done
[ -n "$port" ] || die "smtp-sink did not start: $(cat "$work/sink.err" 2>/dev/null)"
note "smtp-sink (pid $sink_pid) on 127.0.0.1:$port"
sink_count() { tr '\r' '\n' <"$work/sink.out" | awk -F'mesg=' 'NF>1 {n=$2+0} END {print n+0}'; }

# ---------------------------------------------------------------- baseline: smtp-source
src_rate() { # extra options...; prints msg/s
    local t0 t1
    t0=$(now)
    "$source_bin" "$@" -s "$workers" -m "$n_tput" -l 300 -f a@example.com -t b@example.com \
        "127.0.0.1:$port" >"$work/source.out" 2>&1 || die "smtp-source $*: $(cat "$work/source.out")"
    t1=$(now)
    awk -v n="$n_tput" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}'
}
note "baseline: smtp-source, $n_tput messages, $workers sessions"
"$source_bin" -d -s 2 -m 200 -l 300 "127.0.0.1:$port" >/dev/null 2>&1 || die "smtp-source warm-up failed"
src_fresh=$(src_rate)      # a new connection per message, for context

# ---------------------------------------------------------------- configuration
cfg=$work/mfa.toml
cat >"$cfg" <<EOF
[paths]
database = "$work/lib/mfa.db"
spool = "$work/spool"
runtime = "$work/run"

[smtp]
host = "127.0.0.1"
port = $port
tls = "none"
from = "mfa@example.com"
timeout = "10s"

[sender]
workers = $workers
# init must not create the account mfa on the bench machine; the sender runs as root here.
user = "nobody"
EOF
chmod 600 "$cfg"
"$admin_bin" --config "$cfg" init >"$work/init.out" 2>&1 || die "mfa-admin init: $(cat "$work/init.out")"
spool=$work/spool
kv() { # line key -> value
    tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2}'
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR] = $1} END {
    if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------- drain rounds
# Each round: smtp-source -d (connections kept, WORKERS sessions), then N_TPUT messages
# queued with no sender running, then mfa-sender --once timed from its start to its exit
# (it exits when the spool is empty), and the sink's count checked.
problems=()
# CPU seconds (user+sys) of this shell's finished children so far: the load of the machine
# changes the rates, much less the CPU each side spends per message.
# (`times` in this shell, not in a $(...) subshell, which has children of its own.)
cpu_mark() { # variable name
    times >"$work/times"
    printf -v "$1" '%s' "$(awk 'NR == 2 { t = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] + 0 }
        printf "%.3f", t }' "$work/times")"
}
per_msg_us() { awk -v a="$1" -v b="$2" -v n="$n_tput" 'BEGIN {printf "%.0f", (b - a) * 1e6 / n}'; }
src_rates=() drain_rates=() src_cpus=() drain_cpus=() round_lines=()
for r in $(seq "$rounds"); do
    cpu_mark c0
    s_rate=$(src_rate -d)
    cpu_mark c1
    fill=$("$driver_bin" fill "$spool" "$n_tput") || die "enqueue_bench fill failed"
    before=$(sink_count)
    cpu_mark c2
    t0=$(now)
    ${SENDER_PRELOAD:+env LD_PRELOAD=$SENDER_PRELOAD} "$sender_bin" --config "$cfg" --once \
        </dev/null >"$work/once.out" 2>"$work/once-$r.log" \
        || die "mfa-sender --once (round $r) failed: $(tail -3 "$work/once-$r.log")"
    t1=$(now)
    cpu_mark c3
    s_cpu=$(per_msg_us "$c0" "$c1") d_cpu=$(per_msg_us "$c2" "$c3")
    sleep 0.3   # let smtp-sink print its last counter
    got=$(( $(sink_count) - before ))
    left=$(find "$spool/new" "$spool/cur" "$spool/failed" -type f | wc -l)
    [ "$got" = "$n_tput" ] || problems+=("round $r: smtp-sink counted $got messages from mfa-sender --once, expected $n_tput")
    [ "$left" = 0 ] || problems+=("round $r: $left file(s) left in new/, cur/ or failed/")
    d_rate=$(awk -v n="$n_tput" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')
    conns=$(grep -o '[0-9]* SMTP connection(s) opened' "$work/once-$r.log" | awk '{print $1}' || true)
    src_rates+=("$s_rate") drain_rates+=("$d_rate") src_cpus+=("$s_cpu") drain_cpus+=("$d_cpu")
    round_lines+=("$(printf 'round %s: smtp-source -d %6s msg/s (%s µs CPU/msg), mfa-sender --once %6s msg/s (%s µs CPU/msg) (%3s%%), %s s, %s connection(s); %s' \
        "$r" "$s_rate" "$s_cpu" "$d_rate" "$d_cpu" "$(awk -v a="$d_rate" -v b="$s_rate" 'BEGIN {printf "%.0f", 100 * a / b}')" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" "${conns:-?}" "$fill")")
    note "${round_lines[-1]}"
done
src_reuse=$(echo "${src_rates[*]}" | median)
rate=$(echo "${drain_rates[*]}" | median)
ratio=$(awk -v a="$rate" -v b="$src_reuse" 'BEGIN {printf "%.0f", 100 * a / b}')
src_cpu=$(echo "${src_cpus[*]}" | median)
drain_cpu=$(echo "${drain_cpus[*]}" | median)
sink_before=$(sink_count)

# ---------------------------------------------------------------- mfa-sender daemon

${SENDER_PRELOAD:+env LD_PRELOAD=$SENDER_PRELOAD} "$sender_bin" --config "$cfg" </dev/null >"$work/sender.out" 2>"$work/sender.log" &
sender_pid=$!
for _ in $(seq 100); do
    grep -q "started:" "$work/sender.log" 2>/dev/null && break
    kill -0 "$sender_pid" 2>/dev/null || die "mfa-sender exited: $(cat "$work/sender.log")"
    sleep 0.05
done
grep -q "started:" "$work/sender.log" || die "mfa-sender did not start: $(cat "$work/sender.log")"
note "mfa-sender (pid $sender_pid) started: $(grep -m1 'started:' "$work/sender.log")"
rss_idle_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$sender_pid/status")

note "latency: $n_lat messages one at a time (after $warmup unreported), ${gap_ms} ms apart"
lat=$("$driver_bin" latency "$spool" "$n_lat" "$warmup" "$gap_ms") || die "latency run failed"
kill -0 "$sender_pid" 2>/dev/null || die "mfa-sender died during the latency run"

note "burst: $n_tput messages enqueued at once into the running daemon"
tput=$("$driver_bin" throughput "$spool" "$n_tput") || die "throughput run failed"
kill -0 "$sender_pid" 2>/dev/null || die "mfa-sender died during the throughput run"

status=/proc/$sender_pid/status
hwm_kb=$(awk '/^VmHWM:/ {print $2}' "$status")
rss_kb=$(awk '/^VmRSS:/ {print $2}' "$status")
threads=$(awk '/^Threads:/ {print $2}' "$status")
cpu_s=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$sender_pid/stat")

# ---------------------------------------------------------------- checks
expected=$((warmup + n_lat + n_tput))
sleep 0.3   # let smtp-sink print its last counter
sent_log=$(grep -c " sent (250)" "$work/sender.log" || true)
sink_got=$(( $(sink_count) - sink_before ))
failed_files=$(find "$spool/failed" -type f | wc -l)
[ "$(kv "$lat" failed)" = 0 ] || problems+=("latency: $(kv "$lat" failed) message(s) failed")
[ "$(kv "$tput" failed)" = 0 ] || problems+=("throughput: $(kv "$tput" failed) message(s) failed")
[ "$(kv "$tput" left)" = 0 ] || problems+=("throughput: $(kv "$tput" left) message(s) left in the spool")
[ "$sent_log" = "$expected" ] || problems+=("sender logged $sent_log sent (250), expected $expected")
[ "$sink_got" = "$expected" ] || problems+=("smtp-sink counted $sink_got messages from the sender, expected $expected")
[ "$failed_files" = 0 ] || problems+=("$failed_files file(s) in failed/")

# ---------------------------------------------------------------- table
ms() { awk -v u="$1" 'BEGIN {printf "%.2f", u / 1000}'; }
verdict() { # value op target
    awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
        ok = (op == "<=") ? (v <= t) : (v >= t); print ok ? "PASS" : "MISS" }'
}
p50=$(ms "$(kv "$lat" p50_us)")
p99=$(ms "$(kv "$lat" p99_us)")
hwm_mb=$(awk -v k="$hwm_kb" 'BEGIN {printf "%.1f", k / 1024}')

echo
echo "mfa-sender benchmark: $(nproc) CPU(s), smtp-sink on 127.0.0.1:$port, workers=$workers, $(date -u +%Y-%m-%dT%H:%MZ)"
[ -n "${SENDER_PRELOAD:-}" ] && echo "(diagnostic run: mfa-sender with LD_PRELOAD=$SENDER_PRELOAD)"
printf '%-44s %14s %12s  %s\n' "metric" "value" "target" "result"
printf '%-44s %14s %12s  %s\n' "--------------------------------------------" "--------------" "------------" "------"
printf '%-44s %11s ms %9s ms  %s\n' "latency p50, enqueue -> accepted (n=$(kv "$lat" n))" "$p50" "<= $target_p50_ms" "$(verdict "$p50" "<=" "$target_p50_ms")"
printf '%-44s %11s ms %9s ms  %s\n' "latency p99, enqueue -> accepted" "$p99" "<= $target_p99_ms" "$(verdict "$p99" "<=" "$target_p99_ms")"
printf '%-44s %11s %% %10s %%  %s\n' "drain rate / smtp-source -d (medians)" "$ratio" ">= $target_ratio" "$(verdict "$ratio" ">=" "$target_ratio")"
printf '%-44s %8s msg/s %6s msg/s  %s\n' "drain rate, --once, $n_tput queued" "$rate" ">= $target_tput" "$(verdict "$rate" ">=" "$target_tput")"
printf '%-44s %11s MB %9s MB  %s\n' "daemon peak RSS (VmHWM) at the end" "$hwm_mb" "<= $target_rss_mb" "$(verdict "$hwm_mb" "<=" "$target_rss_mb")"
echo
echo "baseline, same sink, same run: smtp-source -s $workers -m $n_tput -l 300 (median of $rounds)"
printf '  %-42s %8s msg/s\n' "smtp-source -d (one connection per session)" "$src_reuse"
printf '  %-42s %8s msg/s\n' "smtp-source (new connection per message)" "$src_fresh"
printf '  %-42s %8s msg/s  (%s%% of smtp-source -d)\n' "mfa-sender --once, $workers workers" "$rate" "$ratio"
printf '  %-42s %8s µs (smtp-source -d: %s µs; the sink not counted)\n' "CPU per message, user+sys (median)" "$drain_cpu" "$src_cpu"
echo
echo "details"
for l in "${round_lines[@]}"; do printf '  %s\n' "$l"; done
printf '  %-42s %s\n' "daemon: burst of $n_tput enqueued at once" "$(kv "$tput" drain_s) s until the spool was empty, enqueue loop included ($(kv "$tput" msg_per_s) msg/s)"
printf '  %-42s %s\n' "latency p90 / max / mean" "$(ms "$(kv "$lat" p90_us)") / $(ms "$(kv "$lat" max_us)") / $(ms "$(kv "$lat" mean_us)") ms"
printf '  %-42s %s\n' "enqueue call p50 (write tmp/, rename)" "$(ms "$(kv "$lat" enqueue_p50_us)") ms"
printf '  %-42s %s\n' "enqueue -> claimed (in cur/) p50 / p99" "$(ms "$(kv "$lat" claim_p50_us)") / $(ms "$(kv "$lat" claim_p99_us)") ms"
printf '  %-42s %s\n' "daemon burst: the enqueue loop alone" "$(kv "$tput" enqueue_s) s ($(kv "$tput" enqueue_per_s) msg/s)"
printf '  %-42s %s\n' "sender RSS idle at start / at the end" "$(awk -v k="$rss_idle_kb" 'BEGIN {printf "%.1f", k/1024}') / $(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k/1024}') MB"
printf '  %-42s %s\n' "sender threads / CPU time (user+sys)" "$threads / ${cpu_s} s"
printf '  %-42s %s\n' "messages: logged sent / counted by sink" "$sent_log / $sink_got (expected $expected)"
echo "  raw: $lat"
echo "  raw: $tput"

if [ "${#problems[@]}" -gt 0 ]; then
    printf 'sender_bench: %s\n' "${problems[@]}" >&2
    exit 1
fi
exit 0
