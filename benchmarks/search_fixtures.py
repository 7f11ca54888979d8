"""The search on the fixtures, on this machine: speedup of the winner over the eager baseline and over
ONNX Runtime with its default session options (both re-measured interleaved with the winner, same run),
and how many trials the budget allowed.

    python benchmarks/search_fixtures.py [--budget 3m] [--out reports/search-cpu]
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

CASES = {  # fixture file -> optimize() arguments
    "cnn.pt2": {"batch_size": 8},
    "mlp.pt2": {"batch_size": 32},
    "transformer.pt2": {"batch_size": 8},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", default="3m")
    parser.add_argument("--out", default=str(ROOT / "reports" / "search-cpu"))
    args = parser.parse_args()
    from fixtures.make import write_all

    work = Path(tempfile.mkdtemp())
    models = write_all(work / "models")
    rows, data = [], {}
    for name, kwargs in CASES.items():
        result = navigator.optimize(str(models[name]), budget=args.budget, out=work / name, progress=False, **kwargs)
        report = json.loads(result.report.read_text())
        vs = {c.against: c for c in result.comparisons}
        w = result.winner
        data[name] = {"winner": {"trial": w.config.number, "path": w.config.path,
                                 "params": {**w.config.convert, **w.config.runtime}} if w else None,
                      "comparisons": report["comparisons"], "finalists": report["finalists"],
                      "trials": len(result.outcomes), "trials_by_status": report["trials_by_status"],
                      "study_elapsed_s": report["study_elapsed_s"], "phases": report.get("phases"),
                      "spend": report.get("spend")}

        def cell(role: str) -> str:
            c = next((c for a, c in vs.items() if a.endswith(role)), None)
            if c is None:
                return "winner is it" if w and any(f.role.endswith(role) and f.number == w.config.number
                                                   for f in result.finalists) else "n/a"
            return f"{c.ratio:.2f}x ({c.low:.2f}-{c.high:.2f}){'' if c.distinct else ', not distinguishable'}"

        rows.append(f"| {name} | {kwargs['batch_size']} | {w.config.path if w else '-'} | {cell('baseline')} | "
                    f"{cell('ort_cpu defaults')} | {len(result.outcomes)} ({report['trials_by_status']}) |")
        shutil.copyfile(result.report.with_suffix(".md"), Path(args.out).parent / f"search-cpu-{name}.md") \
            if Path(args.out).parent.exists() else None
    env = navigator.api.env.snapshot()
    md = [f"# Search on the fixtures ({env['cpu']}, {env['cores_usable']} cores, budget {args.budget} each)", "",
          "Speedups are the winner's throughput over each reference, paired by interleaved round, "
          "median with a 95% bootstrap interval.", "",
          "| model | batch | winner path | vs eager baseline | vs ORT default session options | trials |",
          "|---|---|---|---|---|---|", *rows, ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"budget": args.budget, "cases": data, "environment": env},
                                                   indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
