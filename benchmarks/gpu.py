"""navigator on a CUDA GPU: torchvision ResNet-50 and a BERT-base-sized encoder (transformers config,
random weights, sequence 128), at batch 1 and 64. Side by side in the same run, re-measured in
interleaved rounds: PyTorch eager fp32 (the baseline), ONNX Runtime CUDA with its default options
(cudnn_conv_algo_search EXHAUSTIVE is ORT's default), ORT CUDA with cudnn_conv_algo_search DEFAULT,
PyTorch eager with TF32 off everywhere (strict fp32), and the best configuration the search found.

    PYTHONPATH=.:/tmp/site python benchmarks/gpu.py --model resnet50 --batch 64 --budget 6m --out $OUT

Writes <out>/<model>-b<batch>.json (figures) and .md (navigator's report for that run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import navigator  # noqa: E402
from navigator.records import to_dict  # noqa: E402


def build(name: str, batch: int):  # noqa: ANN201 - returns (nn.Module, example tuple)
    import torch

    torch.manual_seed(0)
    if name == "resnet50":
        import torchvision

        return torchvision.models.resnet50(weights=None).eval(), (torch.randn(batch, 3, 224, 224),)
    if name == "bert":
        import transformers

        class Encoder(torch.nn.Module):
            """BERT-base-sized encoder: token ids -> (last hidden state, pooled output)."""

            def __init__(self) -> None:
                super().__init__()
                self.bert = transformers.BertModel(transformers.BertConfig())

            def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                out = self.bert(input_ids=input_ids)
                return out.last_hidden_state, out.pooler_output

        return Encoder().eval(), (torch.randint(0, 30000, (batch, 128)),)
    raise SystemExit(f"unknown model {name}")


def _print(o: "navigator.TrialOutcome") -> None:
    b = o.bench
    figure = (f"{b.throughput:9.1f}/s p99 {b.p99_ms:7.3f} ms (with copies {b.host_throughput:9.1f}/s "
              f"p99 {b.host_p99_ms:7.3f} ms)") if b else ""
    print(f"trial {o.config.number:3} {o.config.path:14} {o.status:8} {figure} convert {o.convert_s:6.1f}s "
          f"load {o.load_s:6.1f}s total {o.duration_s:6.1f}s {o.error[:160]}", flush=True)


def save_case(results: Path, case: dict, keys: tuple[str, ...] = ("model", "batch")) -> None:
    """Adds `case` to the JSON list in `results`, replacing the case of the same keys."""
    cases = [c for c in (json.loads(results.read_text()) if results.exists() else [])
             if any(c.get(k) != case.get(k) for k in keys)]
    results.write_text(json.dumps([*cases, case], indent=2) + "\n")


def case_parser(budget: str) -> argparse.ArgumentParser:
    """The arguments of one benchmark case: --model, --batch, --budget, --out."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["resnet50", "bert"], required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--budget", default=budget)
    parser.add_argument("--out", required=True)
    return parser


def main() -> None:
    parser = case_parser("6m")
    parser.add_argument("--paths", default="torch_cuda,torch_compile,ort_cuda,ort_tensorrt,tensorrt,torch_tensorrt")
    args = parser.parse_args()
    model, example = build(args.model, args.batch)
    work = Path(tempfile.mkdtemp())
    start = time.perf_counter()
    result = navigator.optimize(
        model, example, budget=args.budget, out=work / "run", batch_size=args.batch, device="cuda",
        paths=[p for p in args.paths.split(",") if p], progress=False, on_trial=_print,
        enqueue={"ORT CUDA cudnn_conv_algo_search DEFAULT": ("ort_cuda", {"cudnn_conv_algo_search": "DEFAULT"}),
                 "eager strict fp32 (no TF32)": ("torch_cuda", {"precision": "fp32_strict"})})
    wall = time.perf_counter() - start
    report = json.loads(result.report.read_text())
    compile_s = sum(o.load_s for o in result.outcomes if o.config.path == "torch_compile")
    figures = {
        "model": args.model, "batch": args.batch, "budget": args.budget, "wall_s": round(wall, 1),
        "study_elapsed_s": report["settings"]["study_elapsed_s"], "torch_compile_load_s": round(compile_s, 1),
        "winner": to_dict(result.winner) if result.winner else None,
        "finalists": report["finalists"], "comparisons": report["comparisons"],
        "trials_by_status": report["trials_by_status"], "unavailable": report["unavailable"],
        "environment": report["environment"],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.model}-b{args.batch}"
    (out / f"{stem}.json").write_text(json.dumps(figures, indent=2) + "\n")
    shutil.copyfile(result.report.with_suffix(".md"), out / f"{stem}.md")
    print(result.report.with_suffix(".md").read_text()[:6000])
    print(json.dumps({k: figures[k] for k in ("wall_s", "study_elapsed_s", "torch_compile_load_s",
                                               "comparisons")}, indent=1))


if __name__ == "__main__":
    main()
