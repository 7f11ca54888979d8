"""navigator against hand-written PyTorch on a CUDA GPU, per case in one process: the hand configurations
(PyTorch eager defaults; fp16 weights (+ channels_last for the CNN) with one CUDA graph capture; the
same in bf16) timed by navigator's harness (navigator/trial/bench.py), then `navigator optimize` through
the CLI on a .pt2 file (torch.export, dynamic batch), then the winner and the best hand configuration
re-measured in interleaved rounds, paired by round. Every figure is timed with CUDA events, as the
search times its trials. With --compile-cache, also the first call of torch.compile (default mode, fp16
weights) through navigator's torch_compile path in two fresh processes: with an empty inductor cache,
then with the study's conversion cache, where the search compiled it (what a rerun pays).

    PYTHONPATH=.:/tmp/site python benchmarks/gpu_vs_hand.py --model bert --batch 64 --budget 5m --out DIR

Adds (or replaces) the case in DIR/gpu-vs-hand.json; copies navigator's report to DIR/<model>-b<batch>.md
and .report.json.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gpu import build, case_parser, save_case  # noqa: E402 - the same models and arguments as the earlier GPU benchmark

ROUNDS = 5
WINDOW_S = 0.25


def _synced(torch: Any, fn: Callable[[], Any]) -> Callable[[], Any]:
    def call() -> Any:
        out = fn()
        torch.cuda.synchronize()
        return out
    return call


def hand_calls(model: Any, example: Any, cnn: bool) -> dict[str, Callable[[], Any]]:
    """What a user writes by hand: model.cuda(); half/bfloat16 weights (+ channels_last) with a CUDA graph."""
    import torch

    calls = {}
    eager = copy.deepcopy(model).cuda().eval()
    x32 = example.cuda()

    def run_eager() -> Any:
        with torch.inference_mode():
            return eager(x32)

    calls["eager fp32 (defaults)"] = _synced(torch, run_eager)
    for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        m = copy.deepcopy(model).cuda().eval().to(dtype)
        x = example.cuda()
        x = x.to(dtype) if x.is_floating_point() else x
        if cnn:
            m, x = m.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    m(x)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = m(x)
        label = f"{name} weights{' + channels_last' if cnn else ''} + CUDA graph"
        # the replay reads and writes the captured addresses: the model, input and output must stay alive
        calls[label] = _synced(torch, lambda g=graph, alive=(m, x, out): g.replay())
    return calls


def export(model: Any, example: Any, path: Path) -> None:
    import torch

    rows = torch.cat([example, example]) if example.shape[0] == 1 else example  # batch 1 specialises
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.export.save(torch.export.export(model, (rows,), dynamic_shapes=({0: batch},)), str(path))


def winner_call(report: Path) -> tuple[Callable[[], Any], dict[str, Any]]:
    """The winner rebuilt from navigator's own report and conversion cache, warm-able."""
    from navigator.report.read import read_report
    from navigator.results import load_winner
    from navigator.source.iospec import resize_batch

    result = read_report(report)
    winner = result.winner
    assert winner is not None
    config = winner.config
    runner, source = load_winner(result)
    samples = resize_batch(source.samples, config.batch_size) if source.io.batched else source.samples
    return runner.prepare(samples), {"path": config.path, "params": {**config.convert, **config.runtime},
                                     "search_per_s": winner.bench.throughput if winner.bench else None}


def optimize_cli(pt2: Path, budget: str, batch: int, out: Path) -> tuple[int, float]:
    """`navigator optimize` as a user runs it on the GPU: (exit code, wall seconds)."""
    cli = [sys.executable, "-m", "navigator", "optimize", "--model", str(pt2), "--budget", budget,
           "--batch-size", str(batch), "--device", "cuda", "--out", str(out), "--no-progress"]
    print("$", " ".join(cli), flush=True)
    start = time.perf_counter()
    rc = subprocess.run(cli, check=False).returncode
    return rc, time.perf_counter() - start


COMPILE_PARAMS = {"mode": "default", "precision": "fp16", "cast": "weights", "channels_last": True}


def compile_child(pt2: Path, cache_root: Path, batch: int) -> None:
    """(In a fresh process) navigator's torch_compile path on the .pt2: convert, load, first call; prints
    the seconds of load + first call (where inductor compiles, or reads its cache)."""
    from navigator import paths
    from navigator.source import load_source
    from navigator.cache import Cache

    source = load_source(str(pt2), batch=batch)
    module = paths.get("torch_compile")
    artifact = module.convert(source, COMPILE_PARAMS, Cache(cache_root, source.fingerprint))
    start = time.perf_counter()
    module.load(artifact, source, COMPILE_PARAMS)(source.samples)
    print(json.dumps({"first_call_s": round(time.perf_counter() - start, 2)}), flush=True)


def compile_cache(pt2: Path, study_cache: Path, batch: int, work: Path) -> dict[str, Any]:
    """First-call seconds of torch.compile with an empty inductor cache and with the study's cache."""
    figures = {}
    for label, root in (("empty cache", work / "empty-cache"), ("study's cache", study_cache)):
        child = subprocess.run([sys.executable, __file__, "--compile-child", str(pt2), str(root), str(batch)],
                               capture_output=True, text=True, check=False)
        lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
        figures[label] = json.loads(lines[-1])["first_call_s"] if lines else f"failed: {child.stderr[-400:]}"
    return {"params": COMPILE_PARAMS, "first_call_s": figures}


def paired(report: Path, hand: dict[str, float], calls: dict[str, Callable[[], Any]], batch: int) -> dict[str, Any]:
    """The winner and the best hand configuration re-measured in interleaved rounds, ratio paired by round."""
    import numpy as np

    from navigator.report.check import ratio_interval
    from navigator.trial.remeasure import interleave
    from navigator.trial.bench import cuda_timer

    call, described = winner_call(report)
    best = max(hand, key=lambda name: hand[name])
    (nav_thr, _), (hand_thr, _) = interleave([(call, batch), (calls[best], batch)], ROUNDS, WINDOW_S,
                                                clock=cuda_timer())
    ratio, low, high = ratio_interval(nav_thr, hand_thr, paired=True)
    return {"navigator": {**described, "per_s": round(float(np.median(nav_thr)), 1)}, "best_hand": best,
            "best_hand_per_s": round(float(np.median(hand_thr)), 1),
            "rounds": {"navigator": [round(t, 1) for t in nav_thr], "hand": [round(t, 1) for t in hand_thr]},
            "ratio": round(ratio, 3), "ratio_low": round(low, 3), "ratio_high": round(high, 3)}


def main() -> None:
    if sys.argv[1:2] == ["--compile-child"]:
        compile_child(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return
    parser = case_parser("5m")
    parser.add_argument("--compile-cache", action="store_true", help="also time torch.compile's first call cold and warm")
    args = parser.parse_args()
    import torch

    from navigator.settings import parse_budget
    from navigator.trial.bench import cuda_timer, measure

    out, stem = Path(args.out), f"{args.model}-b{args.batch}"
    out.mkdir(parents=True, exist_ok=True)
    work = Path("/tmp/gpu-vs-hand") / stem
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    model, (example,) = build(args.model, args.batch)
    calls = hand_calls(model, example, cnn=args.model == "resnet50")
    hand = {name: round(measure(call, args.batch, WINDOW_S, timer=cuda_timer()).throughput, 1)
            for name, call in calls.items()}
    print("hand:", hand, flush=True)
    export(model, example, work / f"{args.model}.pt2")
    rc, wall = optimize_cli(work / f"{args.model}.pt2", args.budget, args.batch, work / "run")
    case: dict[str, Any] = {"model": args.model, "batch": args.batch, "budget_s": parse_budget(args.budget),
                            "wall_s": round(wall, 1), "exit_code": rc, "hand": hand}
    report = work / "run" / "report.json"
    data = json.loads(report.read_text()) if report.exists() else {}
    if data:
        case.update(trials=sum(data.get("trials_by_status", {}).values()), trials_by_status=data.get("trials_by_status"),
                    phases=data.get("phases"), spend=data.get("spend"))
        shutil.copyfile(report.with_suffix(".md"), out / f"{stem}.md")
        shutil.copyfile(report, out / f"{stem}.report.json")
    if data.get("winner"):
        case.update(paired(report, hand, calls, args.batch))
    if args.compile_cache:
        case["compile_cache"] = compile_cache(work / f"{args.model}.pt2", work / "run" / "cache", args.batch, work)
    case["gpu"] = torch.cuda.get_device_name()
    save_case(out / "gpu-vs-hand.json", case)
    print(json.dumps(case, indent=1), flush=True)


if __name__ == "__main__":
    main()
