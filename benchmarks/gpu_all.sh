#!/usr/bin/env bash
# The GPU benchmark as run on the device machine (after the wheels in ../shared/gpu were unstaged):
# every model and batch in turn, results in $1 (default /tmp/gpu-results), one log per run.
set -u
out=${1:-/tmp/gpu-results}
mkdir -p "$out"
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
for run in "resnet50 64 4m" "resnet50 1 90s" "bert 64 2m" "bert 1 90s"; do
  set -- $run
  python benchmarks/gpu.py --model "$1" --batch "$2" --budget "$3" --out "$out" > "$out/$1-b$2.log" 2>&1
  echo "done $1 b$2 rc=$?" >> "$out/progress"
done
echo all-done >> "$out/progress"
