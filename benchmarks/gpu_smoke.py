"""One trial of each CUDA path on model files (ExportedProgram .pt2 with a dynamic batch, traced TorchScript),
run as navigator runs trials (convert, validate against the source on the CPU, benchmark): a quick check
that every path loads, matches and times on the GPU before a long benchmark.

    PYTHONPATH=.:/tmp/site python benchmarks/gpu_smoke.py --out DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gpu import build  # noqa: E402
from gpu_vs_hand import export  # noqa: E402

FP16 = {"precision": "fp16", "cast": "weights"}
TRIALS = {
    "torch_cuda": [{"precision": "fp32"}, {**FP16, "cuda_graphs": True, "channels_last": True}],
    "torch_compile": [{**FP16, "mode": "default", "channels_last": False}],
    "ort_cuda": [{"exporter": "dynamo", "opset": 18, "fusion": "bert", "precision": "fp16"},
                 {"exporter": "torchscript", "opset": 18, "fusion": "bert", "precision": "fp16",
                  "enable_cuda_graph": True},
                 {"exporter": "dynamo", "opset": 18, "fusion": "off", "precision": "fp16", "enable_cuda_graph": True},
                 {"exporter": "dynamo", "opset": 18, "fusion": "off", "precision": "fp32"}],
    "torch_ao": [{"quant": "int8_dynamic", "precision": "bf16", "mode": "default", "channels_last": False},
                 {"quant": "int8_weight_only", "precision": "bf16", "mode": "none", "cuda_graphs": True,
                  "channels_last": False},
                 {"quant": "fp8_dynamic", "granularity": "per_tensor", "precision": "bf16", "mode": "none",
                  "cuda_graphs": True, "channels_last": False},
                 {"quant": "fp8_dynamic", "granularity": "per_row", "precision": "bf16", "mode": "default",
                  "channels_last": False}],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--models", default="bert,resnet50")
    parser.add_argument("--paths", default=",".join(TRIALS), help="the paths to try, comma-separated")
    args = parser.parse_args()
    import torch

    from navigator import paths
    from navigator.records import TrialConfig
    from navigator.settings import StudySettings
    from navigator.source import load_source
    from navigator.cache import Cache
    from navigator.trial.run import TrialContext, run_trial

    work = Path(tempfile.mkdtemp(prefix="gpu-smoke-"))
    rows = []
    for name in args.models.split(","):
        model, (example,) = build(name, 2)
        files = [work / f"{name}.pt2"]
        export(model, example, files[0])
        if name == "resnet50":  # a traced TorchScript too: its graph carries the CPU as constants
            files.append(work / f"{name}.pt")
            torch.jit.save(torch.jit.trace(model, (example,)), str(files[1]))
        for file in files:
            spec = None
            if file.suffix == ".pt":  # TorchScript records no shapes
                arg = torch.jit.load(str(file)).forward.schema.arguments[1].name
                spec = f"{arg}:float32:-1x3x224x224"
            source = load_source(file, batch=1, input_spec=spec)
            ctx = TrialContext(source, Cache(work / "cache", source.fingerprint),
                               StudySettings(device="cuda"))
            for path, trials in ((p, TRIALS[p]) for p in args.paths.split(",")):
                if paths.get(path).available():
                    rows.append({"file": file.name, "path": path, "status": "unavailable",
                                 "error": paths.get(path).available()})
                    continue
                for params in trials:
                    if source.kind == "torchscript" and params.get("exporter") == "dynamo":  # tracing exporter only
                        continue
                    space = {p.name: p.stage for p in paths.space(path).params}
                    convert = {k: v for k, v in params.items() if space.get(k) == "convert"}
                    runtime = {k: v for k, v in params.items() if space.get(k) != "convert"}
                    o = run_trial(ctx, TrialConfig(-1, path, convert, runtime, 1))
                    row = {"file": file.name, "path": path, "params": params, "status": o.status,
                           "per_s": round(o.bench.throughput, 1) if o.bench else None,
                           "validation": o.validation.reason if o.validation else None,
                           "error": o.error[:300]}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "gpu-smoke.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
