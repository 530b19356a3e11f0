#!/usr/bin/env bash
# Supervision at estate scale, Vigie beside Icinga 2 on the same machine (BENCHMARKS.md,
# "Supervision", issue 4). A bench script, not CI: it installs Debian's icinga2 and
# monitoring-plugins-basic when missing (run as root), and runs each product alone in turn.
#
# 1. The fork ceiling: `vigie bench checks --fork-ceiling` (check_dummy spawned, read and
#    waited for in a tight loop on 2 threads).
# 2. Icinga 2, in-process checks: ICINGA_HOSTS hosts × SERVICES services with check_command
#    "dummy", every INTERVAL seconds (hosts carry "dummy" with active checks off, as Vigie's
#    have no host check): checks/s, schedule latency, CPU per check, RSS per object.
# 3. Icinga 2, plugin checks: check_dummy 0 ok as a CheckCommand, offered PLUGIN_RATE
#    checks/s (every 10 s), and check_tcp (the ITL's "tcp") against the listeners of
#    `vigie bench checks --listen-only` on the same addresses in 127.0.0.0/8 Vigie probes.
# 4. Vigie: `vigie bench checks --plugins` (check_dummy at increasing rates) and
#    `vigie bench checks` (HOSTS × SERVICES native TCP checks every INTERVAL seconds).
#
# Icinga 2's numbers come from its own statistics: a service with the ITL's "icinga" check
# every 5 s, whose perfdata (active_service_checks_1min, avg_latency, max_latency) the
# PerfdataWriter writes. For in-process checks (perfdata off for them) the rate is the mean
# of active_service_checks_1min / 60 over the samples whose minute lies inside the measured
# window; plugin runs count their own results instead (perfdata on, one line per result,
# stamped with the check's time), as the statistics check queues behind them. CPU is that of every process of Icinga's session (the daemon, its spawn helper and
# the plugins they waited for); RSS the sum of their VmRSS; per object, less the RSS of the
# same configuration with one host.
#
# Environment (defaults): HOSTS (100000), SERVICES (10), INTERVAL (60), ICINGA_HOSTS (HOSTS),
# WARMUP (90), MEASURE (180) seconds for the 1-minute runs, PLUGIN_RATE (3000),
# PLUGIN_SECONDS (60, warm-up and window of each plugin run), RATES (plugin checks/s offered
# to Vigie in turn: 500,1000,1500,2000,2500,3000), STEPS (all: "ceiling
# icinga-dummy icinga-plugin icinga-tcp vigie-plugins vigie"), OUT (target/bench-checks),
# VIGIE (a vigie binary to use instead of building one).
set -euo pipefail

cd "$(dirname "$0")/.."
HOSTS=${HOSTS:-100000}
SERVICES=${SERVICES:-10}
INTERVAL=${INTERVAL:-60}
ICINGA_HOSTS=${ICINGA_HOSTS:-$HOSTS}
WARMUP=${WARMUP:-90}
MEASURE=${MEASURE:-180}
PLUGIN_RATE=${PLUGIN_RATE:-3000}
PLUGIN_SECONDS=${PLUGIN_SECONDS:-60}
RATES=${RATES:-500,1000,1500,2000,2500,3000}
STEPS=${STEPS:-ceiling icinga-dummy icinga-plugin icinga-tcp vigie-plugins vigie}
OUT=${OUT:-target/bench-checks}
HOSTS_PER_CLIENT=1000
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if ! command -v icinga2 >/dev/null || [ ! -x /usr/lib/nagios/plugins/check_dummy ]; then
    echo "== installing icinga2 and monitoring-plugins-basic"
    DEBIAN_FRONTEND=noninteractive apt-get install -y icinga2 monitoring-plugins-basic
fi

if [ -z "${VIGIE:-}" ]; then
    echo "== building (release)"
    cargo build --release -p vigie
fi
vigie=${VIGIE:-$PWD/target/release/vigie}

echo "== machine"
echo "nproc: $(nproc); $(lscpu | grep -m1 'Model name' | sed 's/  */ /g'); $(icinga2 --version | head -1)"
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
has_step() { [[ " $STEPS " == *" $1 "* ]]; }

# Writes an Icinga 2 configuration in $1: $2 hosts × $3 services of kind $4 (dummy, plugin
# or tcp; $5 the listeners' port for tcp) every $6 seconds. Host i gets the address Vigie's
# bench gives host i of its client (listener_address in crates/vigie/src/bench/checks.rs).
icinga_config() {
    local dir=$1 hosts=$2 services=$3 kind=$4 port=$5 interval=$6
    rm -rf "$dir"
    mkdir -p "$dir"/{etc,lib,cache,log,spool/tmp,run,perf}
    local command names
    case $kind in
        dummy) command='check_command = "dummy"; vars.dummy_state = 0; vars.dummy_text = "ok"' ;;
        plugin) command='check_command = "bench-dummy"' ;;
        tcp) command="check_command = \"tcp\"; vars.tcp_port = $port" ;;
    esac
    names=$(seq 0 $((services - 1)) | sed 's/.*/"&"/' | paste -sd,)
    # Plugin runs count their own results (one perfdata line each): the statistics check
    # waits in the same queue as the plugins when Icinga 2 falls behind.
    local perfdata=false
    [ "$kind" = dummy ] || perfdata=true
    cat > "$dir/etc/icinga2.conf" <<EOF
const PluginDir = "/usr/lib/nagios/plugins"
const NodeName = "bench"
const ZoneName = "bench"
include <itl>
include <plugins>
object CheckerComponent "checker" { }
object PerfdataWriter "perfdata" {
  service_perfdata_path = "$dir/perf/service-perfdata"
  host_perfdata_path = "$dir/perf/host-perfdata"
  rotation_interval = 5s
  service_format_template = "\$service.last_check\$\t\$service.perfdata\$"
  host_format_template = ""
}
object CheckCommand "bench-dummy" { command = [ PluginDir + "/check_dummy", "0", "ok" ] }
object Host "stats" { address = "127.0.0.1"; check_command = "dummy"; enable_active_checks = false }
object Service "icinga" { host_name = "stats"; check_command = "icinga"; check_interval = 5s }
apply Service "s-" for (i in [ $names ]) {
  $command
  check_interval = ${interval}s
  retry_interval = ${interval}s
  enable_perfdata = $perfdata
  assign where host.vars.bench
}
include "hosts.conf"
EOF
    awk -v n="$hosts" -v per=$HOSTS_PER_CLIENT 'BEGIN {
        for (i = 0; i < n; i++) {
            k = i % per
            printf "object Host \"h%07d\" { address = \"127.%d.%d.%d\"; check_command = \"dummy\"; enable_active_checks = false; vars.bench = true }\n",
                i, 1 + k % 254, int(k / 254) % 256, 1 + int(k / 65024) % 254
        }
    }' > "$dir/etc/hosts.conf"
}

# Runs Icinga 2 on the configuration in $1 for $2 seconds of warm-up and $3 measured, and
# prints one line: label ($4), checks/s, latency, CPU per check, RSS.
icinga_run() {
    local dir=$1 warmup=$2 measure=$3 label=$4 baseline_kib=${5:-0} objects=${6:-1}
    local started=$SECONDS
    setsid icinga2 daemon -c "$dir/etc/icinga2.conf" -DConfigDir="$dir/etc" -DDataDir="$dir/lib" \
        -DLogDir="$dir/log" -DCacheDir="$dir/cache" -DSpoolDir="$dir/spool" \
        -DInitRunDir="$dir/run" -DRunAsUser=root -DRunAsGroup=root >"$dir/icinga2.log" 2>&1 &
    local sid=$!
    # Running once the first statistics are written.
    until cat "$dir"/perf/service-perfdata* 2>/dev/null | grep -q active_service_checks; do
        if ! kill -0 "$sid" 2>/dev/null; then
            echo "icinga2 stopped; its log:" >&2
            tail -20 "$dir/icinga2.log" >&2
            return 1
        fi
        sleep 1
    done
    local startup=$((SECONDS - started))
    sleep "$warmup"
    local cpu0 machine0 t0
    cpu0=$(session_ticks "$sid")
    machine0=$(machine_ticks)
    t0=$(date +%s)
    sleep "$measure"
    local cpu1 machine1 t1 rss
    cpu1=$(session_ticks "$sid")
    machine1=$(machine_ticks)
    t1=$(date +%s)
    rss=$(session_rss_kib "$sid")
    kill -TERM "$sid" 2>/dev/null || true
    wait "$sid" 2>/dev/null || true
    sleep 6
    # Samples whose minute lies inside the window.
    cat "$dir"/perf/service-perfdata* | awk -F'\t' -v from=$((t0 + 60)) -v to="$t1" \
        -v cpu=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v span=$((t1 - t0)) \
        -v mb="${machine1#* }" -v mb0="${machine0#* }" -v mt="${machine1% *}" -v mt0="${machine0% *}" \
        -v rss="$rss" -v base="$baseline_kib" -v objects="$objects" -v label="$label" -v startup="$startup" '
        $2 !~ /active_service_checks/ && int($1) >= from - 60 && int($1) < to { counted++ }
        $2 ~ /active_service_checks/ && int($1) >= from && int($1) <= to {
            n++
            split($2, items, " ")
            for (j in items) {
                split(items[j], kv, "=")
                v = kv[2]; sub(/[a-zA-Z%]+$/, "", v)
                if (kv[1] == "active_service_checks_1min") checks += v / 60
                if (kv[1] == "avg_latency") latency += v
                if (kv[1] == "max_latency" && v > maxlat) maxlat = v
                if (kv[1] == "current_pending_callbacks" && v > pending) pending = v
            }
        }
        END {
            if (n == 0 && counted == 0) { print label ": no statistics inside the window (measure at least 70 s)"; exit }
            if (counted > 0) {
                rate = counted / span; how = sprintf("%d results counted in %d s", counted, span)
            } else {
                # less the statistics check itself (every 5 s)
                rate = checks / n - 0.2; how = sprintf("mean of %d samples", n)
            }
            if (n == 0) n = 1
            printf "%s: %.0f checks/s (%s), latency avg %.0f ms, max %.0f ms; CPU per check %.3f ms; machine busy %.0f %%; RSS %d MiB", \
                label, rate, how, 1000 * latency / n, 1000 * maxlat, 1000 * cpu / hz / (rate * span), \
                100 * (mb - mb0) / (mt - mt0), rss / 1024
            if (base > 0) printf " (%.0f bytes per object over %d MiB with one host)", (rss - base) * 1024 / objects, base / 1024
            printf "; started in %d s\n", startup
        }'
}

# CPU ticks of every process of a session, with the children they waited for.
session_ticks() {
    local total=0 pid
    for pid in $(ps -s "$1" -o pid=); do
        total=$((total + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
session_rss_kib() {
    local total=0 pid
    for pid in $(ps -s "$1" -o pid=); do
        total=$((total + $(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
# "total busy" ticks of the machine.
machine_ticks() {
    awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, t - $5 - $6 }' /proc/stat
}

summary=()

if has_step ceiling; then
    echo "== fork ceiling (load average before: $(loadavg))"
    "$vigie" bench checks --fork-ceiling --workers 2 --seconds 20 | tee "$OUT/fork-ceiling.txt"
    summary+=("$(cat "$OUT/fork-ceiling.txt")")
fi

if has_step icinga-dummy; then
    echo "== icinga 2, one host (baseline RSS)"
    icinga_config "$OUT/icinga-base" 1 "$SERVICES" dummy 0 "$INTERVAL"
    base_line=$(icinga_run "$OUT/icinga-base" 5 70 "icinga2 baseline")
    echo "$base_line"
    base_kib=$(echo "$base_line" | sed -n 's/.*RSS \([0-9]*\) MiB.*/\1/p')
    base_kib=$((base_kib * 1024))
    echo "== icinga 2, $ICINGA_HOSTS hosts × $SERVICES dummy services every $INTERVAL s (load average before: $(loadavg))"
    icinga_config "$OUT/icinga-dummy" "$ICINGA_HOSTS" "$SERVICES" dummy 0 "$INTERVAL"
    line=$(icinga_run "$OUT/icinga-dummy" "$WARMUP" "$MEASURE" \
        "icinga2 dummy (in process), $ICINGA_HOSTS × $SERVICES every $INTERVAL s, offered $((ICINGA_HOSTS * SERVICES / INTERVAL))/s" \
        "$base_kib" $((ICINGA_HOSTS * (SERVICES + 1))))
    echo "$line" | tee "$OUT/icinga-dummy.txt"
    summary+=("$line")
fi

plugin_hosts=$((PLUGIN_RATE * 10 / SERVICES))
if has_step icinga-plugin; then
    echo "== icinga 2, check_dummy as a plugin, offered $PLUGIN_RATE/s (load average before: $(loadavg))"
    icinga_config "$OUT/icinga-plugin" "$plugin_hosts" "$SERVICES" plugin 0 10
    line=$(icinga_run "$OUT/icinga-plugin" "$PLUGIN_SECONDS" "$((PLUGIN_SECONDS + 60))" \
        "icinga2 check_dummy (plugin), $plugin_hosts × $SERVICES every 10 s, offered ${PLUGIN_RATE}/s")
    echo "$line" | tee "$OUT/icinga-plugin.txt"
    summary+=("$line")
fi

if has_step icinga-tcp; then
    echo "== icinga 2, check_tcp against local listeners, offered $PLUGIN_RATE/s (load average before: $(loadavg))"
    listen_seconds=$((PLUGIN_SECONDS * 2 + 200))
    "$vigie" bench checks --listen-only --hosts "$plugin_hosts" --seconds "$listen_seconds" >"$OUT/listeners.txt" &
    listener=$!
    until grep -q 'listening on port' "$OUT/listeners.txt" 2>/dev/null; do sleep 0.2; done
    port=$(sed -n 's/listening on port \([0-9]*\).*/\1/p' "$OUT/listeners.txt")
    icinga_config "$OUT/icinga-tcp" "$plugin_hosts" "$SERVICES" tcp "$port" 10
    line=$(icinga_run "$OUT/icinga-tcp" "$PLUGIN_SECONDS" "$((PLUGIN_SECONDS + 60))" \
        "icinga2 check_tcp (plugin), $plugin_hosts × $SERVICES every 10 s, offered ${PLUGIN_RATE}/s")
    kill "$listener" 2>/dev/null || true
    wait "$listener" 2>/dev/null || true
    echo "$line" | tee "$OUT/icinga-tcp.txt"
    summary+=("$line")
fi

if has_step vigie-plugins; then
    echo "== vigie, check_dummy as a plugin (load average before: $(loadavg))"
    "$vigie" bench checks --plugins --warmup "$PLUGIN_SECONDS" --seconds "$PLUGIN_SECONDS" \
        --services "$SERVICES" --rates "$RATES" | tee "$OUT/vigie-plugins.txt"
    summary+=("$(grep -E 'highest|no rate' "$OUT/vigie-plugins.txt")")
fi

if has_step vigie; then
    echo "== vigie, $HOSTS hosts × $SERVICES TCP checks every $INTERVAL s (load average before: $(loadavg))"
    "$vigie" bench checks --hosts "$HOSTS" --services "$SERVICES" --interval "$INTERVAL" \
        --warmup "$WARMUP" --seconds "$MEASURE" | tee "$OUT/vigie.txt"
    summary+=("$(grep -E 'checks/s \(|lag|CPU per check|RSS' "$OUT/vigie.txt" | sed 's/^  /vigie: /')")
fi

echo "== summary"
printf '%s\n' "${summary[@]}"

# Ratios, from the files of this run (a missing one leaves its ratios out).
num() { [ -f "$OUT/$1" ] && sed -n "s/$2/\1/p" "$OUT/$1" | head -1; }
ceiling=$(num fork-ceiling.txt '.* runs, \([0-9.]*\) runs\/s.*')
i_rate=$(num icinga-dummy.txt '.*: \([0-9.]*\) checks\/s (.*')
i_cpu=$(num icinga-dummy.txt '.*CPU per check \([0-9.]*\) ms.*')
i_bytes=$(num icinga-dummy.txt '.*(\([0-9.]*\) bytes per object.*')
i_plugin=$(num icinga-plugin.txt '.*: \([0-9.]*\) checks\/s (.*')
i_tcp=$(num icinga-tcp.txt '.*: \([0-9.]*\) checks\/s (.*')
v_rate=$(num vigie.txt '.*completed, \([0-9.]*\) checks\/s.*')
v_cpu=$(num vigie.txt '.*Vigie alone: \([0-9.]*\) µs.*')
v_bytes=$(num vigie.txt '.*: \([0-9.]*\) bytes per check.*')
v_plugin=$(num vigie-plugins.txt '.*highest rate sustained: \([0-9.]*\) plugin.*')
ratio() { [ -n "$2" ] && [ -n "$3" ] && awk -v a="$2" -v b="$3" -v what="$1" 'BEGIN { printf "%s: %.2f\n", what, a / b }'; }
echo "== ratios"
ratio "native checks/s, Vigie TCP / Icinga 2 in-process dummy (at their own sizes)" "$v_rate" "$i_rate" || true
ratio "CPU per check, Icinga 2 dummy / Vigie TCP (ms)" "$i_cpu" "$(awk -v u="${v_cpu:-}" 'BEGIN { if (u != "") print u / 1000 }')" || true
ratio "memory per object, Icinga 2 / Vigie" "$i_bytes" "$v_bytes" || true
ratio "plugin checks/s, Vigie / Icinga 2 (check_dummy)" "$v_plugin" "$i_plugin" || true
ratio "Vigie native TCP / Icinga 2 check_tcp (checks/s)" "$v_rate" "$i_tcp" || true
ratio "Vigie plugins / fork ceiling" "$v_plugin" "$ceiling" || true
ratio "Icinga 2 plugins / fork ceiling" "$i_plugin" "$ceiling" || true
