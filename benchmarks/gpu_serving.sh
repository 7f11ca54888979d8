#!/usr/bin/env bash
# The serving benchmark on the GPU machine: tritonserver (python backend) installed offline from wheels in
# /tmp/wheels (nvidia-pytriton 0.7.0, tritonclient 2.51.0), then benchmarks/serving.py on the CUDA paths.
# Usage (after ../shared/gpu's unstage): bash benchmarks/gpu_serving.sh OUT_DIR
set -u
out=${1:-/tmp/gpu-serving}
mkdir -p "$out"
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 NAVIGATOR_TRITON_HOME=/tmp/triton
WHEELS=/tmp/wheels PYTHON=python3 bash tools/install-triton.sh /tmp/triton > "$out/install.log" 2>&1 || {
  echo "install failed"; tail -20 "$out/install.log"; exit 1; }
python3 benchmarks/serving.py --device cuda --path torch_cuda --case cnn.pt2 --budget 45s \
  --serving-budget 150s --concurrency 1,8 --out "$out/serving-gpu" > "$out/serving.log" 2>&1
rc=$?
# the python twin's CUDA graphs (one per batch shape the dynamic batcher forms), served and checked
for graphs in False True; do
  python3 benchmarks/serve_variant.py /tmp/navigator-bench-*/cnn.pt2 --set CUDA_GRAPHS=$graphs \
    --set PRECISION=fp32_strict --instances 2 --dynamic-batching --concurrency 1,8 --batch-size 4 \
    --out "$out/variant-graphs-$graphs" >> "$out/serving.log" 2>&1 || rc=1
done
cp /tmp/navigator-bench-*/cnn.pt2/serving/tritonserver.log "$out/" 2>/dev/null
cp /tmp/navigator-bench-*/cnn.pt2/report.md "$out/report-cnn.md" 2>/dev/null
tail -40 "$out/serving.log"
exit $rc
