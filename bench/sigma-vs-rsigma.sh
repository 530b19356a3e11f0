#!/usr/bin/env bash
# Vigie's Sigma engine beside rsigma on the same documents and rules (BENCHMARKS.md, "Sigma
# evaluation"). Builds both in release, writes the two datasets with
# `vigie bench sigma --write-events`, runs Vigie and rsigma (bench/rsigma) on the same files
# and the whole SigmaHQ rule set, and prints a table with the ratios.
#
# Environment:
#   SIGMAHQ  SigmaHQ copy with rules/, rules-emerging-threats/, rules-threat-hunting/ and
#            regression_data/ (default: ../shared/data/sigmahq)
#   EVENTS   length of each stream (default: 1000000)
#   OUT      where the streams and the outputs go (default: target/bench-sigma)
#   DATASETS which datasets (default: "regression synthetic")
#
# Each program runs alone and evaluates on one thread; the streams are about 1.4 KB an event
# on disk (1.4 GB each at the default length).
set -euo pipefail

cd "$(dirname "$0")/.."
SIGMAHQ=${SIGMAHQ:-../shared/data/sigmahq}
EVENTS=${EVENTS:-1000000}
OUT=${OUT:-target/bench-sigma}
DATASETS=${DATASETS:-regression synthetic}
mkdir -p "$OUT"

rules=()
for dir in rules rules-emerging-threats rules-threat-hunting; do
    rules+=(--rules "$SIGMAHQ/$dir")
done

echo "== building (release)"
cargo build --release -p vigie
cargo build --release --locked --manifest-path bench/rsigma/Cargo.toml --target-dir target/rsigma
vigie=target/release/vigie
rsigma=target/rsigma/release/rsigma-bench

echo "== machine"
echo "nproc: $(nproc); $(lscpu | grep -m1 'Model name' | sed 's/  */ /g'); $(rustc --version)"
rule_files=0
for dir in rules rules-emerging-threats rules-threat-hunting; do
    rule_files=$((rule_files + $(find "$SIGMAHQ/$dir" -name '*.yml' | wc -l)))
done
echo "rule files: $rule_files; events per stream: $EVENTS"

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

for dataset in $DATASETS; do
    stream="$OUT/$dataset.jsonl"
    echo "== $dataset: vigie (load average before: $(loadavg))"
    "$vigie" bench sigma "${rules[@]}" --dataset "$dataset" --events "$EVENTS" \
        --regression-data "$SIGMAHQ/regression_data" --write-events "$stream" \
        | tee "$OUT/vigie-$dataset.txt"
    expected=()
    if [ -f "$OUT/$dataset.expected.tsv" ] && [ "$dataset" = regression ]; then
        expected=(--expected "$OUT/$dataset.expected.tsv")
    fi
    echo "== $dataset: rsigma (load average before: $(loadavg))"
    "$rsigma" "${rules[@]}" --events "$stream" "${expected[@]}" | tee "$OUT/rsigma-$dataset.txt"
    echo "   (load average after: $(loadavg))"
done

echo
echo "== results (events/s on one thread; ratio = Vigie / rsigma)"
printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' dataset "Vigie ev/s" \
    "rsigma ev/s" "rsigma routed ev/s" "ratio" "ratio vs routed" "start-up V / r" \
    "RSS MiB V: rules, +chunk, peak" "RSS MiB r: rules, +chunk, peak" \
    "recall EVTX V / r / r routed"
echo '|---|---|---|---|---|---|---|---|---|---|'
for dataset in $DATASETS; do
    v=$(grep '^summary: ' "$OUT/vigie-$dataset.txt" | sed 's/^summary: //')
    r=$(grep '^summary: ' "$OUT/rsigma-$dataset.txt" | sed 's/^summary: //')
    jq -rn --argjson v "$v" --argjson r "$r" --arg dataset "$dataset" '
        def f2: (. * 100 | round) as $c
            | "\($c / 100 | floor).\($c % 100 | tostring | if length == 1 then "0" + . else . end)";
        def recall: if . == null then "–" else "\(.evtx)/\(.evtx_total)" end;
        ($r.modes[] | select(.mode == "default")) as $plain
        | ($r.modes[] | select(.mode == "logsource routing")) as $routed
        | "| \($dataset) | \($v.events_per_s | round) | \($plain.events_per_s | round) | "
          + "\($routed.events_per_s | round) | \($v.events_per_s / $plain.events_per_s | f2) | "
          + "\($v.events_per_s / $routed.events_per_s | f2) | "
          + "\($v.startup_s | f2) s / \($r.startup_s | f2) s | "
          + "\($v.rss_rules_mib), \($v.rss_documents_mib), \($v.peak_rss_mib) | "
          + "\($r.rss_rules_mib), \($r.rss_documents_mib), \($r.peak_rss_mib) | "
          + "\($v.recall | recall) / \($plain.recall | recall) / \($routed.recall | recall) |"'
done
echo
echo "Vigie always routes by logsource (channel and event id); the like-for-like ratio is the"
echo "one against rsigma with routing. Memory: RSS with the rules loaded, then with the first"
echo "chunk of 10,000 documents prepared (Vigie keeps them nested, rsigma flattened), then peak."
echo "Outputs are in $OUT/."
