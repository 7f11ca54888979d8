"""Quantized trials (torch_ao: torchao INT8 / FP8) against the best fp16 or bf16 trial on a CUDA GPU, under a
user metric, through the CLI on a torch.export file (dynamic batch):

    navigator optimize --model M.pt2 --input-data val.npz --batch-size B --device cuda --budget BUDGET \\
        --metric top1.py:top1 --max-metric-drop 1% --trust-pickle

The metric is the top-1 agreement with the fp32 source (PyTorch eager on the CPU, no TF32) over SAMPLES
rows that are not the validation rows. Afterwards the best quantized trial within the drop and the best
fp16 or bf16 trial (whichever measured faster: the 16-bit float a quantized trial has to beat) are rebuilt from the run's cache and re-measured in interleaved rounds (CUDA events), their
ratio paired by round with a 95% bootstrap interval; the quantized trials over the drop are listed with
both metric values.

    PYTHONPATH=.:/tmp/site python benchmarks/gpu_quant.py --model bert --batch 64 --budget 6m --out DIR

Adds (or replaces) the case in DIR/gpu-quant.json; copies navigator's report.md to DIR/quant-<model>-b<batch>.md.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gpu import case_parser, save_case  # noqa: E402

SAMPLES = 256
STEPS, MAX_STEPS, TARGET_ACCURACY, WARMUP = 60, 480, 0.9, 40  # training: rounds of STEPS steps
CHUNK = 32  # the source's labels, on the CPU
ROUNDS = 5
WINDOW_S = 0.25
QUANTIZED = ("int8", "fp8")
AGAINST = ("fp16", "bf16")  # the tolerance classes of the trials the quantized ones are held against
METRIC = '''"""Top-1 agreement with the fp32 source's labels on the rows of metric.npz (written beside this file)."""
from pathlib import Path

import numpy as np

with np.load(Path(__file__).with_name("metric.npz")) as data:  # arrays, not the open file: carried by value
    X, LABELS, NAME, BATCH = data["x"], data["labels"], str(data["name"]), int(data["batch"])


def top1(runner):  # in batches of the served size: a runner compiled for static shapes compiles no other
    got = np.concatenate([np.asarray(runner({NAME: X[i:i + BATCH]})[0]).argmax(-1) for i in range(0, len(X), BATCH)])
    return float((got == LABELS).mean())
'''


class Classifier(torch.nn.Module):
    """body -> head (a linear layer over CLASSES), one input `x`."""

    def __init__(self, body: Any, head: Any) -> None:
        super().__init__()
        self.body, self.head = body, head

    def forward(self, x: Any) -> Any:
        return self.head(self.body(x))


@dataclasses.dataclass
class Trainer:
    """AdamW with a linear warm-up over WARMUP steps, kept from one round of training to the next."""

    optimizer: Any
    warmup: Any
    generator: Any


def train(model: Any, trainer: Trainer, x: Any, labels: Any, steps: int, device: str) -> float:
    """Every weight trained for `steps` more steps (batches of 32, gradients clipped to norm 1: BERT-base
    from scratch at 3e-4 without warm-up or clipping stayed at chance on the H100); batch-norm statistics
    then taken afresh over `x` (int8_models.batch_statistics); returns the accuracy on `x`."""
    import int8_models

    model.train()
    optimizer = trainer.optimizer
    target = torch.from_numpy(labels)
    for _ in range(steps):
        rows = torch.randint(0, len(labels), (32,), generator=trainer.generator)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x[rows].to(device)), target[rows].to(device)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        trainer.warmup.step()
    int8_models.batch_statistics(model, x, device)  # leaves it in eval mode
    with torch.no_grad():
        got = torch.cat([model(x[i:i + 64].to(device)).argmax(1).cpu() for i in range(0, len(labels), 64)])
    return float((got == target).float().mean())


def classifier(name: str, device: str, tiny: bool = False) -> tuple[Any, Any, float]:
    """(model, a function (n, seed) -> (rows, classes), its accuracy): torchvision's ResNet-50 and a
    transformers BERT-base sequence classifier (seq 128, token ids only), trained for a few steps on the
    synthetic classes of int8_models (images; topic token sequences), so that their logits have the
    margins of a trained model and top-1 agreement measures the quantization, not near-ties of random
    logits (nor a head fitted on nearly constant random features, which fp32 on a GPU already fails).
    `tiny`: ResNet-18 and a 2-layer BERT of width 64, for a dry run of this script on a CPU."""
    import int8_models

    torch.manual_seed(0)
    if name == "resnet50":
        import torchvision

        net = (torchvision.models.resnet18 if tiny else torchvision.models.resnet50)(weights=None)
        features, net.fc = net.fc.in_features, torch.nn.Identity()
        model = Classifier(net, torch.nn.Linear(features, int8_models.CLASSES))
        data_of, key, lr = int8_models.images, "image", 1e-3
    else:
        import transformers

        config = (transformers.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
                  if tiny else transformers.BertConfig())

        class Pooled(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bert = transformers.BertModel(config, add_pooling_layer=True)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.bert(input_ids=x).pooler_output

        model = Classifier(Pooled(), torch.nn.Linear(config.hidden_size, int8_models.CLASSES))
        data_of, key, lr = int8_models.texts, "input_ids", 1e-4

    def rows(n: int, seed: int) -> tuple[Any, Any]:
        data, labels = data_of(n, seed)
        return torch.from_numpy(data[key]), labels

    x, labels = rows(512, 10)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    trainer = Trainer(optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / WARMUP)),
                      torch.Generator().manual_seed(0))
    accuracy, steps = 0.0, 0
    while accuracy < TARGET_ACCURACY and steps < MAX_STEPS:  # a few seconds a round on a GPU
        accuracy, steps = train(model, trainer, x, labels, STEPS, device), steps + STEPS
    return model.cpu().eval(), rows, accuracy


def prepare(name: str, batch: int, work: Path, device: str, tiny: bool) -> tuple[Path, Path, Path, float]:
    """The .pt2, the validation .npz (one batch), the metric file with its data (labels from fp32 eager
    on the CPU, the source's own runtime) and the model's accuracy on its training rows."""
    model, rows, accuracy = classifier(name, device, tiny)
    input_name = "x"
    x, _ = rows(SAMPLES + batch, 11)
    example = x[:2] if batch == 1 else x[:batch]
    dim = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: dim},))
    pt2 = work / f"{name}.pt2"
    torch.export.save(program, str(pt2))
    with torch.inference_mode():
        labels = torch.cat([model(x[i:i + CHUNK]) for i in range(batch, SAMPLES + batch, CHUNK)]).argmax(-1)
    np.savez(work / "val.npz", **{input_name: x[:batch].numpy()})
    np.savez(work / "metric.npz", x=x[batch:].numpy(), labels=labels.numpy(), name=np.array(input_name),
             batch=np.array(batch))
    (work / "top1.py").write_text(METRIC)
    return pt2, work / "val.npz", work / "top1.py", accuracy


def optimize_cli(pt2: Path, val: Path, metric: Path, budget: str, batch: int, out: Path,
                 device: str, only: list[str], narrowing: str | None) -> tuple[int, float]:
    cli = [sys.executable, "-m", "navigator", "optimize", "--model", str(pt2), "--input-data", str(val),
           "--batch-size", str(batch), "--device", device, "--budget", budget, "--out", str(out),
           "--metric", f"{metric}:top1", "--max-metric-drop", "1%", "--trust-pickle", "--no-progress", *(f"--path={name}" for name in only),
           *(["--search-space", narrowing] if narrowing else [])]
    print("$", " ".join(cli), flush=True)
    start = time.perf_counter()
    rc = subprocess.run(cli, check=False).returncode
    return rc, time.perf_counter() - start


def describe(o: Any, precision: str) -> dict[str, Any]:
    b = o.bench
    return {"trial": o.config.number, "path": o.config.path, "params": {**o.config.convert, **o.config.runtime},
            "precision": precision, "status": o.status, "metric": o.metric, "error": o.error or None,
            "per_s": round(b.throughput, 1) if b else None, "p99_ms": round(b.p99_ms, 3) if b else None}


def remeasure(result: Any, a: Any, b: Any, batch: int, device: str) -> dict[str, Any]:
    """Trials a and b rebuilt from the run's cache and timed in interleaved rounds; a / b paired by round."""
    from navigator.report.check import ratio_interval
    from navigator.results import load_winner
    from navigator.source.iospec import resize_batch
    from navigator.trial.bench import cuda_timer
    from navigator.trial.remeasure import interleave

    calls = []
    for outcome in (a, b):
        runner, source = load_winner(dataclasses.replace(result, winner=outcome), trust_pickle=True)
        calls.append((runner.prepare(resize_batch(source.samples, batch)), batch))
    (a_thr, _), (b_thr, _) = interleave(calls, ROUNDS, WINDOW_S, clock=cuda_timer() if device == "cuda" else None)
    ratio, low, high = ratio_interval(a_thr, b_thr, paired=True)
    return {"quantized_per_s": round(float(np.median(a_thr)), 1), "fp16_per_s": round(float(np.median(b_thr)), 1),
            "rounds": {"quantized": [round(t, 1) for t in a_thr], "fp16": [round(t, 1) for t in b_thr]},
            "ratio": round(ratio, 3), "ratio_low": round(low, 3), "ratio_high": round(high, 3),
            "quantized_wins": low > 1.0}


def summarise(report: Path, batch: int, device: str) -> dict[str, Any]:
    from navigator import paths
    from navigator.report.read import read_report

    result = read_report(report)
    rows = []
    for o in result.outcomes:
        try:
            precision = paths.get(o.config.path).precision({**o.config.convert, **o.config.runtime})
        except Exception:  # noqa: BLE001 - a path this machine cannot load: its class is unknown
            precision = "?"
        rows.append((o, precision))
    measured = [(o, p) for o, p in rows if o.status == "ok" and o.bench is not None]
    quantized = [(o, p) for o, p in measured if p in QUANTIZED]
    fp16 = [(o, p) for o, p in measured if p in AGAINST]
    case: dict[str, Any] = {
        "winner": describe(result.winner, paths.get(result.winner.config.path).precision(
            {**result.winner.config.convert, **result.winner.config.runtime})) if result.winner else None,
        "metric_source": result.settings.metric_source if result.settings else None,
        "quantized_trials": [describe(o, p) for o, p in rows if p in QUANTIZED],
        "rejected_over_drop": [describe(o, p) for o, p in rows if p in QUANTIZED and o.status == "invalid"
                               and "max-metric-drop" in (o.error or "")]}
    best = {k: max(v, key=lambda row: row[0].bench.throughput) for k, v in (("quantized", quantized), ("fp16", fp16)) if v}
    case.update({f"best_{k}": describe(o, p) for k, (o, p) in best.items()})  # best_fp16: fp16 or bf16
    if len(best) == 2:
        case["paired"] = remeasure(result, best["quantized"][0], best["fp16"][0], batch, device)
    return case


def main() -> None:
    from navigator.settings import parse_budget

    parser = case_parser("6m")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script itself (with --tiny)")
    parser.add_argument("--tiny", action="store_true", help="ResNet-18 / a 2-layer BERT of width 64 instead")
    parser.add_argument("--path", action="append", default=[], help="search only these paths (navigator's --path)")
    parser.add_argument("--search-space", help="navigator's --search-space: a directory narrowing paths' spaces")
    args = parser.parse_args()
    out, stem = Path(args.out), f"quant-{args.model}{'-tiny' if args.tiny else ''}-b{args.batch}"
    out.mkdir(parents=True, exist_ok=True)
    work = Path("/tmp/gpu-quant") / stem
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    start = time.perf_counter()
    pt2, val, metric, accuracy = prepare(args.model, args.batch, work, args.device, args.tiny)
    prepare_s = time.perf_counter() - start  # training, export, labels: what a device call spends before navigator
    rc, wall = optimize_cli(pt2, val, metric, args.budget, args.batch, work / "run", args.device, args.path, args.search_space)
    case: dict[str, Any] = {"model": args.model + (" (tiny)" if args.tiny else ""), "batch": args.batch, "budget_s": parse_budget(args.budget),
                            "wall_s": round(wall, 1), "exit_code": rc,
                            "gpu": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
                            "metric": f"top-1 agreement with fp32 eager (CPU) on {SAMPLES} rows", "max_metric_drop": "1%",
                            "paths": args.path or "all", "search_space": args.search_space,
                            "train_accuracy": round(accuracy, 3), "prepare_s": round(prepare_s, 1)}
    report = work / "run" / "report.json"
    if report.exists():
        shutil.copyfile(report.with_suffix(".md"), out / f"{stem}.md")
        case.update(summarise(report, args.batch, args.device))
    save_case(out / "gpu-quant.json", case)
    print(json.dumps(case, indent=1), flush=True)


if __name__ == "__main__":
    main()
