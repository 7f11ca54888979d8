#!/usr/bin/env bash
# gpu_vs_hand.py for several cases in turn on the device machine (after ../shared/gpu's unstage):
# bash benchmarks/gpu_vs_hand.sh OUT BUDGET "resnet50 64" "bert 1 --compile-cache" ...
set -u
out=$1 budget=$2
shift 2
mkdir -p "$out"
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
for case in "$@"; do
  set -- $case
  python benchmarks/gpu_vs_hand.py --model "$1" --batch "$2" "${@:3}" --budget "$budget" --out "$out" > "$out/$1-b$2.log" 2>&1
  echo "done $1 b$2 rc=$?" | tee -a "$out/progress"
  tail -25 "$out/$1-b$2.log"
done
