#!/usr/bin/env bash
# bench/duo_bench.sh — the Duo broker's overhead: how long from a root client's request to
# mfa-sender's broker (mfa_core::duo::call, as pam_mfa asks) until the Duo mock
# (tests/lib/mock_duo.py, HTTPS on 127.0.0.1) receives the `POST /auth/v2/auth` of that push,
# beside a baseline measured in the same run: the same signed request sent straight to the
# mock by a client without the broker (Python's http.client on one kept-alive HTTPS
# connection, HMAC-SHA512 as Duo documents it). Both clocks are CLOCK_MONOTONIC: the driver
# (mfa-sender/examples/duo_bench.rs) reads it before each call, the mock logs
# time.monotonic() at receipt.
#
#   latency     N pushes one at a time, each answered "approve" at once: p50/p99 of
#               request -> mock receipt of `auth`, broker and baseline; the broker may add
#               at most 5 ms at p50 and 20 ms at p99 over the baseline
#   memory      the sender's RSS (VmRSS) idle (after WARMUP pushes) and with PENDING pushes
#               waiting on Duo at once (the mock answers them after 30 s); at most 30 MB more
#
# Usage: bench/duo_bench.sh      (as root: the broker serves root only; Debian 12 with
#                                 /usr/bin/python3, openssl and cargo)
# Environment:
#   N           pushes of the latency case, broker and baseline each (default 1000)
#   WARMUP      unreported pushes first (default 20)
#   PENDING     pushes held at once for the memory case (default 100)
#   PROFILE     cargo profile of mfa-sender and the driver (default release)
#   CARGO_TARGET_DIR  as for cargo (default <repo>/target)
#   KEEP=1      keep the temporary directory (its path is printed)
#
# Exit status: 0 when every case ran (PASS/MISS is in the table); 1 when something failed to
# build or run, or a push got another answer than expected.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
n=${N:-1000}
warmup=${WARMUP:-20}
pending=${PENDING:-100}
profile=${PROFILE:-release}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
py=/usr/bin/python3
mock_py=$repo/tests/lib/mock_duo.py
ikey=DIWJ8X6AEYOR5OMC6TQ1
skey=Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep
target_p50_ms=5
target_p99_ms=20
target_rss_mb=30

die() { echo "duo_bench: $*" >&2; exit 1; }
note() { echo "duo_bench: $*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root: the broker serves root clients only"
for t in openssl cargo awk; do
    command -v "$t" >/dev/null || die "$t is not installed"
done
[ -x "$py" ] || die "$py is missing (apt-get install python3)"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- build
note "building mfa-sender and examples/duo_bench ($profile)"
(cd "$repo" && CARGO_TARGET_DIR=$target_dir cargo build --quiet --profile "$profile" \
    -p mfa-sender --bin mfa-sender --example duo_bench) || die "cargo build failed"
pdir=$profile
[ "$profile" = dev ] && pdir=debug
sender=$target_dir/$pdir/mfa-sender
driver=$target_dir/$pdir/examples/duo_bench
[ -x "$sender" ] && [ -x "$driver" ] || die "built binaries missing under $target_dir/$pdir"

# ---------------------------------------------------------------- setup
work=$(mktemp -d /tmp/duo_bench.XXXXXX)
chmod 755 "$work"
mock_pid=
sender_pid=
driver_pid=
cleanup() {
    for p in $driver_pid $sender_pid $mock_pid; do
        kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then note "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -addext basicConstraints=critical,CA:FALSE \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null || die "openssl failed"
echo '{"*": {"push": "approve"}}' >"$work/users.json"
"$py" "$mock_py" --ready "$work/ready" --cert "$work/cert.pem" --key "$work/key.pem" \
    --ikey "$ikey" --skey "$skey" --users "$work/users.json" --log "$work/mock.jsonl" \
    2>"$work/mock.err" &
mock_pid=$!
for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
[ -s "$work/ready" ] || die "the mock did not start: $(cat "$work/mock.err")"
port=$(cat "$work/ready")

umask 077
mkdir -p "$work/spool/tmp" "$work/spool/new" "$work/spool/cur" "$work/spool/failed" "$work/run"
chmod 755 "$work/run"
printf '%s\n' "$skey" >"$work/duo.skey"
cat >"$work/mfa.toml" <<EOF
[paths]
database = "$work/db/mfa.db"
spool = "$work/spool"
runtime = "$work/run"

[sender]
user = "nobody"

[duo]
host = "127.0.0.1:$port"
ikey = "$ikey"
skey_file = "$work/duo.skey"
ca_file = "$work/cert.pem"
timeout = "60s"
EOF
umask 022

MFA_CONFIG= NOTIFY_SOCKET= "$sender" --config "$work/mfa.toml" 2>"$work/sender.err" &
sender_pid=$!
for _ in $(seq 100); do grep -q "duo: broker listening" "$work/sender.err" 2>/dev/null && break; sleep 0.1; done
grep -q "duo: broker listening" "$work/sender.err" || die "the sender did not start: $(cat "$work/sender.err")"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$sender_pid/status"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$sender_pid/status"; }

# ---------------------------------------------------------------- latency through the broker
"$driver" pushes "$work/run" "$warmup" w >"$work/warmup.txt"
rss_idle=$(rss_kb)
threads_idle=$(threads)
note "broker: $n pushes, one at a time"
"$driver" pushes "$work/run" "$n" b >"$work/broker.txt"
rss_after=$(rss_kb)
bad=$(awk '$3 != "allow"' "$work/warmup.txt" "$work/broker.txt" | head -3)
[ -z "$bad" ] || die "pushes not approved: $bad"

# ---------------------------------------------------------------- baseline: straight to the mock
note "baseline: $n signed requests straight to the mock"
"$py" - "$port" "$work/cert.pem" "$n" "$warmup" >"$work/direct.txt" <<'EOF'
import base64, email.utils, hashlib, hmac, http.client, json, ssl, sys, time
port, ca, n, warm = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ikey, skey = "DIWJ8X6AEYOR5OMC6TQ1", b"Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep"
host = f"127.0.0.1:{port}"
conn = http.client.HTTPSConnection("127.0.0.1", int(port),
                                   context=ssl.create_default_context(cafile=ca))
def push(user):
    t = time.monotonic()
    params = {"username": user, "factor": "push", "device": "auto", "async": "1",
              "ipaddr": "192.0.2.7", "hostname": "bench", "pushinfo": "service=sshd"}
    body = json.dumps(params, sort_keys=True, separators=(",", ":"))
    date = email.utils.formatdate()
    h = lambda s: hashlib.sha512(s.encode()).hexdigest()
    canon = "\n".join([date, "POST", host, "/auth/v2/auth", "", h(body),
                       h("x-duo-date\x00" + date)])
    sig = hmac.new(skey, canon.encode(), hashlib.sha512).hexdigest()
    auth = base64.b64encode(f"{ikey}:{sig}".encode()).decode()
    conn.request("POST", "/auth/v2/auth", body, {"Authorization": "Basic " + auth,
                 "X-Duo-Date": date, "Content-Type": "application/json"})
    r = conn.getresponse()
    data = json.loads(r.read())
    return t, ("ok" if r.status == 200 and data["stat"] == "OK" else f"http{r.status}")
for i in range(warm):
    push(f"x{i}")
for i in range(n):
    t, r = push(f"d{i}")
    print(f"d{i} {t:.6f} {r}")
EOF
bad=$(awk '$3 != "ok"' "$work/direct.txt" | head -3)
[ -z "$bad" ] || die "baseline requests refused: $bad"

# ---------------------------------------------------------------- memory with pending pushes
echo '{"*": {"push": "approve", "after": 30}}' >"$work/users.json.tmp"
mv "$work/users.json.tmp" "$work/users.json"
note "memory: $pending pushes pending at once (the mock answers after 30 s)"
"$driver" pending "$work/run" "$pending" p >"$work/pending.txt" &
driver_pid=$!
seen=0
for _ in $(seq 300); do
    seen=$(grep -c '"path": "/auth/v2/auth", .*"user": "p' "$work/mock.jsonl" || true)
    [ "$seen" -ge "$pending" ] && break
    sleep 0.1
done
[ "$seen" -ge "$pending" ] || die "only $seen of $pending pushes reached the mock"
sleep 1
rss_pending=$(rss_kb)
threads_pending=$(threads)
wait "$driver_pid" || die "the pending driver failed"
driver_pid=
read -r _ ok failed < <(grep '^done' "$work/pending.txt")
[ "$ok" = "$pending" ] && [ "$failed" = 0 ] || die "pending pushes: $ok answered, $failed failed"

# ---------------------------------------------------------------- report
stats() { # CLIENT-FILE -> "n p50 p99" in ms of mock receipt - client request, joined by user
    "$py" - "$1" "$work/mock.jsonl" <<'EOF'
import json, sys
sent = {}
for line in open(sys.argv[1]):
    user, t, _ = line.split()
    sent[user] = float(t)
got = {}
for line in open(sys.argv[2]):
    r = json.loads(line)
    if r["path"] == "/auth/v2/auth" and r["user"] in sent:
        got[r["user"]] = r["t"]
d = sorted((got[u] - sent[u]) * 1000 for u in sent if u in got)
if len(d) != len(sent):
    sys.exit(f"{len(sent) - len(d)} requests missing from the mock's log")
pick = lambda q: d[min(len(d) - 1, int(q * len(d)))]
print(len(d), f"{pick(0.50):.2f}", f"{pick(0.99):.2f}")
EOF
}
read -r bn bp50 bp99 < <(stats "$work/broker.txt")
read -r dn dp50 dp99 < <(stats "$work/direct.txt")
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 <= b + 0) ? "PASS" : "MISS" }'; }
over50=$(awk -v a="$bp50" -v b="$dp50" 'BEGIN { printf "%+.2f", a - b }')
over99=$(awk -v a="$bp99" -v b="$dp99" 'BEGIN { printf "%+.2f", a - b }')
rss_delta_mb=$(awk -v a="$rss_pending" -v b="$rss_idle" 'BEGIN { printf "%.1f", (a - b) / 1024 }')

echo "machine: $(uname -r), $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'), load at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "build: $profile; mock: $mock_py on 127.0.0.1:$port (HTTPS, ECDSA P-256)"
printf '%-34s %6s %10s %10s\n' "request -> mock receipt of auth" n "p50 ms" "p99 ms"
printf '%-34s %6s %10s %10s\n' "through the broker (duo::call)" "$bn" "$bp50" "$bp99"
printf '%-34s %6s %10s %10s\n' "baseline: straight HTTPS (python)" "$dn" "$dp50" "$dp99"
printf '%-34s %6s %10s %10s\n' "broker overhead" "" "$over50" "$over99"
echo "sender RSS: idle $((rss_idle / 1024)) MB ($threads_idle threads), after $n pushes $((rss_after / 1024)) MB, with $pending pending $((rss_pending / 1024)) MB ($threads_pending threads): +$rss_delta_mb MB"
v1=$(verdict "$over50" "$target_p50_ms")
v2=$(verdict "$over99" "$target_p99_ms")
v3=$(verdict "$rss_delta_mb" "$target_rss_mb")
echo "verdict: overhead p50 $over50 ms (<= +$target_p50_ms) $v1; p99 $over99 ms (<= +$target_p99_ms) $v2; RSS +$rss_delta_mb MB with $pending pending (<= $target_rss_mb) $v3"
