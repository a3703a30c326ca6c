#!/usr/bin/env bash
# The deploy bench: figures, never pass/fail. For 1, 2 and 4 worker hosts
# (BENCH_WORKER_HOSTS), fresh test hosts of molecule/scale (the cluster
# scenario's redis1 and web1 plus the worker hosts), then site.yml twice: a
# first converge and a no-change re-run. Prints the playbook's own time
# (ansible.posix.profile_tasks) of each, and writes the table between the
# deploy-scale markers of docs/BENCHMARKS.md; about 7 minutes per count.
#   make bench-deploy
set -euo pipefail
cd "$(dirname "$0")/../.."
counts=${BENCH_WORKER_HOSTS:-1 2 4}
logs=.molecule-logs/bench-deploy
mkdir -p "$logs"

# The last elapsed time profile_tasks printed: the playbook's total.
playbook_seconds() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -o '[0-9]*:[0-9][0-9]:[0-9][0-9]\.[0-9]*' | tail -n 1 |
    awk -F: '{printf "%.0f", $1 * 3600 + $2 * 60 + $3}'
}

trap 'molecule destroy -s scale > /dev/null 2>&1' EXIT
rows=()
for count in $counts; do
  for index in 2 3 4; do
    if ((index <= count)); then group=celery_workers; else group=idle; fi
    export "BENCH_WORKER$index=$group"
  done
  echo "=== $count worker host(s): fresh hosts" >&2
  molecule destroy -s scale > "$logs/destroy.log" 2>&1
  molecule create -s scale > "$logs/create-$count.log" 2>&1
  molecule prepare -s scale > "$logs/prepare-$count.log" 2>&1
  echo "=== $count worker host(s): first converge" >&2
  molecule converge -s scale > "$logs/converge-$count.log" 2>&1
  echo "=== $count worker host(s): no-change re-run" >&2
  molecule converge -s scale > "$logs/again-$count.log" 2>&1
  rows+=("$count $(playbook_seconds "$logs/converge-$count.log") $(playbook_seconds "$logs/again-$count.log")")
done

modified=$(git status --porcelain | grep -q . && echo " (modified)" || true)
table=$(
  echo "Written by \`make bench-deploy\` at $(git rev-parse --short HEAD)$modified, $(date -u +%FT%TZ), on this"
  echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), every test"
  echo "host a container on it. Seconds of \`site.yml\` (profile_tasks' total)."
  echo
  echo "| worker hosts | first converge | no-change re-run | first converge ÷ the first row's |"
  echo "| --- | --- | --- | --- |"
  first_row=""
  for row in "${rows[@]}"; do
    read -r count first again <<< "$row"
    first_row=${first_row:-$first}
    echo "| $count | $first s | $again s | $(awk -v a="$first" -v b="$first_row" 'BEGIN {printf "%.2f", a / b}') |"
  done
)
echo "$table"
python3 -c 'import sys; sys.path.insert(0, "tests/bench"); import report, pathlib
report.replace_between_markers(pathlib.Path("docs/BENCHMARKS.md"), "deploy-scale", sys.stdin.read())' <<< "$table"
echo "(logs: $logs; table written to docs/BENCHMARKS.md)"
