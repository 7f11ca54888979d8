"""The search on the tree and TensorFlow fixtures, on this machine: for each model and for batch 1 and
batch 1024, the winner's speedup over the source library's own predict (the baseline trial,
re-measured interleaved with the winner in the same run), and the Triton config written for it.

    python benchmarks/trees_tf.py [--budget 150s] [--out reports/trees-tf-cpu]

The two batch sizes of one model run in the same output directory (the second with force=True, a new
study), so that converted artifacts (the compiled Treelite predictor) are reused. Configs are copied
to <out>-configs/<model>-b<batch>.pbtxt.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import navigator  # noqa: E402

CASES = ("xgb_multiclass.ubj", "lgb_multiclass.txt", "rf.skops", "cnn.keras")
BATCHES = (1, 1024)
# A second reference, re-measured with the finalists: the source library tuned by hand the obvious way
# (one thread for trees, whose default of every core contends on a busy machine; tf.function with XLA).
TUNED = {"trees": ("library, 1 thread", ("tree_native", {"threads": 1})),
         "tf": ("tf.function + XLA", ("tf_baseline", {"mode": "graph", "jit_compile": True}))}


def _cell(result: navigator.api.Result, role: str) -> tuple[str, dict]:
    """'x.xx (low-high)' for the winner vs a reference role, and the JSON record of it."""
    w = result.winner
    vs = next((c for c in result.comparisons if c.against.endswith(role)), None)
    if w is None:
        return "no winner", {}
    if vs is None:  # the winner is that reference itself
        return "1.00 (it won)", {"ratio": 1.0, "winner_is_reference": True}
    text = f"{vs.ratio:.2f}x ({vs.low:.2f}-{vs.high:.2f}){'' if vs.distinct else ', not distinguishable'}"
    return text, {"ratio": vs.ratio, "low": vs.low, "high": vs.high, "distinct": vs.distinct}


def _row(case: dict) -> str:
    """One table row from a case's JSON record (the figures of its finalists and comparisons)."""
    finalists = case["finalists"]

    def median(f: dict | None) -> str:
        return f"{sorted(f['throughput'])[len(f['throughput']) // 2]:.0f}" if f else "not re-measured"

    def ratio(record: dict) -> str:
        if not record:
            return "no winner"
        if record.get("winner_is_reference"):
            return "1.00 (it won)"
        return (f"{record['ratio']:.2f}x ({record['low']:.2f}-{record['high']:.2f})"
                f"{'' if record['distinct'] else ', not distinguishable'}")

    w, b = case["winner"], case["baseline"]
    winner_f = next((f for f in finalists if w and f["number"] == w["trial"]), None)
    # a baseline whose configuration is also a top trial shares that finalist ("top 2, baseline")
    baseline_f = next((f for f in finalists if f["role"].endswith("baseline")), None)
    tuned_role = case["tuned_role"]
    labels = case.get("label_agreement")
    return (f"| {case['model']} | {case['batch']} | {b['path'] if b else '-'} | {median(baseline_f)} | "
            f"{w['path'] if w else '-'} | {median(winner_f)} | {ratio(case['speedup_vs_baseline'])} | "
            f"{tuned_role}: {ratio(case['speedup_vs_tuned'])} | {f'{labels:.2%}' if labels is not None else 'n/a'} | "
            f"{case['trials']} | `{Path(case['config']).name if case['config'] else '-'}` |")


def _markdown(budget: str, data: dict, env: dict) -> str:
    rows = [_row(case) for case in data.values()]
    return "\n".join([
        f"# Trees and TensorFlow on the CPU ({env['cpu']}, {env['cores_usable']} cores, budget {budget} "
        "per model and batch)", "",
        "Speedup = the winner's throughput over the baseline's (the source library's own predict, or "
        "TensorFlow as it is), paired by interleaved round in the same run: median with a 95% bootstrap "
        "interval. Throughputs are the medians of those rounds (inferences/s). The second speedup is over the "
        "library tuned by hand the obvious way (enqueued, re-measured with the finalists). Label agreement: "
        "the winner's class labels equal to the source's, on the validation rows.", "",
        "| model | batch | baseline | baseline infer/s | winner | winner infer/s | speedup vs baseline | "
        "speedup vs the library tuned by hand | labels agree | trials | Triton config |",
        "|---|---|---|---|---|---|---|---|---|---|---|", *rows, ""])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", default="150s")
    parser.add_argument("--out", default=str(ROOT / "reports" / "trees-tf-cpu"))
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the .json")
    args = parser.parse_args()
    out = Path(args.out)
    if args.render:
        saved = json.loads(out.with_suffix(".json").read_text())
        out.with_suffix(".md").write_text(_markdown(saved["budget"], saved["cases"], saved["environment"]))
        return
    from fixtures.make import write_tf, write_trees

    work = Path(tempfile.mkdtemp())
    models = {**write_trees(work / "models"), **write_tf(work / "models")}
    configs = out.parent / f"{out.name}-configs"
    configs.mkdir(parents=True, exist_ok=True)
    old = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {}
    data = old.get("cases", {}) if old.get("budget") == args.budget else {}  # cases of another budget are dropped
    env = navigator.api.env.snapshot()
    for name in args.cases:
        for batch in BATCHES:
            tuned_role, tuned = TUNED["tf" if name.endswith(".keras") else "trees"]
            result = navigator.optimize(str(models[name]), budget=args.budget, out=work / name, progress=False,
                                        batch_size=batch, force=True, trust_pickle=False, enqueue={tuned_role: tuned})
            report = json.loads(result.report.read_text())
            w, b = result.winner, result.baseline
            config_name = f"{Path(name).name.replace('.', '_')}-b{batch}.pbtxt"
            if result.repository:
                shutil.copyfile(result.repository / "config.pbtxt", configs / config_name)
            labels = [c.agreement for c in (w.validation.outputs if w and w.validation else ())
                      if c.agreement is not None]
            data[f"{name}@{batch}"] = {
                "model": name, "batch": batch, "tuned_role": tuned_role,
                "winner": {"trial": w.config.number, "path": w.config.path,
                           "params": {**w.config.convert, **w.config.runtime}} if w else None,
                "baseline": {"trial": b.config.number, "path": b.config.path,
                             "params": {**b.config.convert, **b.config.runtime}} if b else None,
                "speedup_vs_baseline": _cell(result, "baseline")[1],
                "speedup_vs_tuned": _cell(result, tuned_role)[1],
                "label_agreement": min(labels) if labels else None,
                "finalists": report["finalists"], "comparisons": report["comparisons"],
                "trials": len(result.outcomes), "trials_by_status": report["trials_by_status"],
                "notes": report.get("notes", []),
                "config": str(configs.relative_to(ROOT) / config_name) if result.repository else None,
                "unavailable": report.get("unavailable", {}), "load_average_after": env_load()}
            print(_row(data[f"{name}@{batch}"]), flush=True)
            # written after every case, so that an interrupted run keeps what it measured
            out.with_suffix(".json").write_text(json.dumps({"budget": args.budget, "cases": data, "environment": env},
                                                           indent=2, default=str) + "\n")
            out.with_suffix(".md").write_text(_markdown(args.budget, data, env))
    print(_markdown(args.budget, data, env))


def env_load() -> str:
    return navigator.api.env.snapshot()["load_average"]


if __name__ == "__main__":
    main()
