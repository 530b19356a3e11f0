#!/usr/bin/env bash
# Alert sent → notification delivered: Vigie beside Alertmanager, measured by the same harness
# (`vigie bench notify`, crates/vigie/src/bench/notify.rs) in the same run. Each product takes
# the alerts at its `POST /api/v2/alerts` and sends an Alertmanager v4 webhook to the harness's
# receiver; each is run idle, then under a background load of re-sent firing alerts, then
# loaded with many new firing alerts for its memory per active alert.
#
# Alertmanager: Debian's prometheus-alertmanager (installed with apt-get if missing: needs
# root), one instance without clustering, a fresh storage directory, the route
# `group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 4h` to one
# webhook receiver. Vigie: `vigie serve` in release on a fresh SQLite data directory with the
# bench estate (bench/notify/estate/bench.yaml: one client, an incident per alertname, the
# first step of its policy notifies an `alertmanager` channel) and an ingest token of the bench
# client.
#
# Environment:
#   ALERTS    probe alerts per run (default: 1000, one every SPACING)
#   SPACING   time between probes (default: 20ms)
#   RATE      background alerts/s under load (default: 10000)
#   MEMORY    new firing alerts loaded for the memory per alert (default: 100000; 0: skip)
#   SETTLE    how long after loading them the RSS is read (default: 10s)
#   PRODUCTS  which products (default: "alertmanager vigie")
#   OUT       where the outputs go (default: target/bench-notify)
#   NO_BUILD  set to use target/release/vigie as it is
#   VIGIE     the vigie binary to run (default: target/release/vigie)
set -euo pipefail

cd "$(dirname "$0")/.."
ALERTS=${ALERTS:-1000}
SPACING=${SPACING:-20ms}
RATE=${RATE:-10000}
MEMORY=${MEMORY:-100000}
SETTLE=${SETTLE:-10s}
PRODUCTS=${PRODUCTS:-alertmanager vigie}
OUT=${OUT:-target/bench-notify}
mkdir -p "$OUT"
vigie=${VIGIE:-target/release/vigie}

if [ -z "${NO_BUILD:-}" ]; then
    echo "== building (release)"
    cargo build --release -p vigie
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until an HTTP endpoint answers, or the process is gone.
wait_ready() {
    local url=$1 pid=$2
    for _ in $(seq 1 150); do
        if curl -fsS -o /dev/null "$url" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.2
    done
    return 1
}

started_pids=()
temp_dirs=()
cleanup() {
    for pid in "${started_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for dir in "${temp_dirs[@]}"; do
        rm -rf "$dir"
    done
}
trap cleanup EXIT

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# The three runs of the harness against one product: idle, under load, memory.
run_harness() {
    local name=$1 target=$2 receiver=$3 pid=$4
    shift 4
    local common=(--name "$name" --target "$target" --receiver "$receiver" --pid "$pid"
        --spacing "$SPACING" "$@")
    echo "== $name: idle (load average before: $(loadavg))"
    "$vigie" bench notify "${common[@]}" --alerts "$ALERTS" | tee "$OUT/$name-idle.txt" || true
    echo "== $name: under load, $RATE alerts/s (load average before: $(loadavg))"
    "$vigie" bench notify "${common[@]}" --alerts "$ALERTS" --background-rate "$RATE" \
        | tee "$OUT/$name-load.txt" || true
    if [ "$MEMORY" -gt 0 ]; then
        echo "== $name: memory, $MEMORY new firing alerts (load average before: $(loadavg))"
        "$vigie" bench notify "${common[@]}" --alerts 10 --memory-alerts "$MEMORY" --memory-settle "$SETTLE" \
            | tee "$OUT/$name-memory.txt" || true
    fi
}

echo "== machine"
echo "nproc: $(nproc); $(lscpu | grep -m1 'Model name' | sed 's/  */ /g'); $(rustc --version)"

for product in $PRODUCTS; do
    rm -f "$OUT/$product-idle.txt" "$OUT/$product-load.txt" "$OUT/$product-memory.txt"
    receiver_port=$(free_port)
    case $product in
    alertmanager)
        if ! command -v prometheus-alertmanager >/dev/null; then
            echo "== installing Debian's prometheus-alertmanager"
            if [ "$(id -u)" = 0 ]; then
                DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus-alertmanager
            else
                sudo DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus-alertmanager
            fi
        fi
        echo "alertmanager: $(prometheus-alertmanager --version 2>&1 | head -1)"
        dir=$(mktemp -d /tmp/bench-notify-am.XXXXXX)
        temp_dirs+=("$dir")
        cat >"$dir/alertmanager.yml" <<EOF
route:
  group_by: ['alertname']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 4h
  receiver: bench
receivers:
  - name: bench
    webhook_configs:
      - url: http://127.0.0.1:$receiver_port/
EOF
        port=$(free_port)
        prometheus-alertmanager --config.file="$dir/alertmanager.yml" \
            --storage.path="$dir/data" --web.listen-address="127.0.0.1:$port" \
            --cluster.listen-address= --log.level=warn >"$OUT/alertmanager.log" 2>&1 &
        pid=$!
        started_pids+=("$pid")
        if ! wait_ready "http://127.0.0.1:$port/-/ready" "$pid"; then
            echo "alertmanager did not start; its log:" >&2
            cat "$OUT/alertmanager.log" >&2
            exit 1
        fi
        run_harness alertmanager "http://127.0.0.1:$port" "127.0.0.1:$receiver_port" "$pid"
        ;;
    vigie)
        dir=$(mktemp -d /tmp/bench-notify-vigie.XXXXXX)
        temp_dirs+=("$dir")
        mkdir -p "$dir/estate"
        sed "s#127\.0\.0\.1:PORT/#127.0.0.1:$receiver_port/#" bench/notify/estate/bench.yaml \
            >"$dir/estate/bench.yaml"
        if ! "$vigie" check-config "$dir/estate"; then
            echo "vigie: the bench estate is not accepted (see above): no Vigie run" >&2
            continue
        fi
        token=$("$vigie" token create --data-dir "$dir/data" --role ingest --client bench \
            --name bench-notify)
        port=$(free_port)
        "$vigie" serve --data-dir "$dir/data" --estate "$dir/estate" \
            --listen "127.0.0.1:$port" --no-syslog >"$OUT/vigie-serve.log" 2>&1 &
        pid=$!
        started_pids+=("$pid")
        if ! wait_ready "http://127.0.0.1:$port/healthz" "$pid"; then
            echo "vigie serve did not start; its log:" >&2
            cat "$OUT/vigie-serve.log" >&2
            exit 1
        fi
        run_harness vigie "http://127.0.0.1:$port" "127.0.0.1:$receiver_port" "$pid" \
            --token "$token"
        ;;
    *)
        echo "unknown product $product (alertmanager or vigie)" >&2
        exit 2
        ;;
    esac
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done

summary() { grep -h '^summary: ' "$OUT/$1-$2.txt" 2>/dev/null | sed 's/^summary: //' || true; }

echo
echo "== results (send → webhook received, ms; ratio = Vigie / Alertmanager, lower is better)"
printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' product "idle p50" "idle p99" \
    "load p50" "load p99" "background alerts/s asked, achieved" "re-notified during load" \
    "bytes per active alert"
echo '|---|---|---|---|---|---|---|---|'
for product in $PRODUCTS; do
    idle=$(summary "$product" idle)
    load=$(summary "$product" load)
    memory=$(summary "$product" memory)
    jq -rn --arg p "$product" --argjson i "${idle:-null}" --argjson l "${load:-null}" \
        --argjson m "${memory:-null}" '
        def q($r; $k): if $r == null or $r.delivered.n == 0 then "–" else $r.delivered[$k] end;
        "| \($p) | \(q($i; "p50_ms")) | \(q($i; "p99_ms")) | \(q($l; "p50_ms")) | \(q($l; "p99_ms")) | "
        + (if $l == null or $l.background == null then "– |"
           else "\($l.background.asked_per_s), \($l.background.achieved_per_s) |" end)
        + (if $l == null or $l.background == null then " – |"
           else " \($l.background.notified_during_load) |" end)
        + (if $m == null or $m.memory == null then " – |" else " \($m.memory.bytes_per_alert) |" end)'
done
a_idle=$(summary alertmanager idle)
a_load=$(summary alertmanager load)
v_idle=$(summary vigie idle)
v_load=$(summary vigie load)
if [ -n "$a_idle" ] && [ -n "$v_idle" ]; then
    jq -rn --argjson ai "$a_idle" --argjson al "${a_load:-null}" --argjson vi "$v_idle" \
        --argjson vl "${v_load:-null}" '
        def r($v; $a; $k): if $v == null or $a == null or $v.delivered.n == 0 or $a.delivered.n == 0
            then "–" else ($v.delivered[$k] / $a.delivered[$k] * 100 | round / 100) end;
        "ratios Vigie / Alertmanager: idle p50 \(r($vi; $ai; "p50_ms")), idle p99 \(r($vi; $ai; "p99_ms")), "
        + "load p50 \(r($vl; $al; "p50_ms")), load p99 \(r($vl; $al; "p99_ms")); "
        + "target: Vigie p99 under load < 10 ms and <= Alertmanager idle p99 "
        + "(\($ai.delivered.p99_ms) ms in this run)"'
fi
echo "Outputs are in $OUT/."
