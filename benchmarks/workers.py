"""One worker vs two workers on one shared study (PostgreSQL), on this machine: the wall time each run
needs to reach the same best throughput, and the trials each worker ran.

Each worker is pinned to its own core (two workers: cores 0 and 1; one worker: core 0), which stands in
for identical one-core machines: the workers do not share a core, so the second worker adds capacity
instead of noise. Both runs search the same fixture model with the same trial cap. "The same best" is
the lower of the two runs' best trial throughputs (a level both reached); for each run we report when
its running best first reached it, counted from the launch of its first process.

    NAVIGATOR_TEST_POSTGRES_URL=postgresql://user@127.0.0.1:PORT/db python benchmarks/workers.py \
        [--trials 16] [--model mlp.pt2] [--out reports/workers-cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _launch(args: list[str], core: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "navigator", *args], env=env, cwd=ROOT,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            preexec_fn=lambda: os.sched_setaffinity(0, {core}))


def _described(url: str, study: str) -> bool:
    import optuna

    from navigator.search.storage import driver_url

    try:
        return "identity" in optuna.load_study(study_name=study, storage=driver_url(url)).user_attrs
    except KeyError:
        return False


def _run(url: str, model: Path, workers: int, trials: int, batch: int, work: Path) -> dict:
    import optuna

    from navigator.search.storage import driver_url

    study = f"bench-{workers}w-{uuid.uuid4().hex[:6]}"
    common = ["--storage", url, "--study", study, "--no-progress"]
    start = time.time()
    procs = [_launch(["optimize", "--model", str(model), "--trials", str(trials), "--batch-size", str(batch),
                      "--budget", "30m", "--window", "0.1", "--out", str(work / f"{study}-0"), *common], 0,
                     work / f"{study}-0.log")]
    while workers > 1 and not _described(url, study):
        time.sleep(0.2)
    for i in range(1, workers):
        procs.append(_launch(["worker", "--model", str(model), "--out", str(work / f"{study}-{i}"), *common], i,
                             work / f"{study}-{i}.log"))
    codes = [p.wait() for p in procs]
    wall = time.time() - start
    if any(codes):
        raise SystemExit(f"{study}: exit codes {codes}; see {work}")
    done = [t for t in optuna.load_study(study_name=study, storage=driver_url(url)).get_trials(deepcopy=False)
            if "outcome" in t.user_attrs]
    history = sorted((t.datetime_complete.timestamp() - start, json.loads(t.user_attrs["outcome"]), t) for t in done)
    points = [{"t_s": round(ts, 1), "trial": t.number, "worker": t.user_attrs["worker"], "status": o["status"],
               "throughput": o["bench"]["throughput"] if o["bench"] and o["status"] == "ok" else None}
              for ts, o, t in history]
    per_worker: dict[str, int] = {}
    for p in points:
        per_worker[p["worker"]] = per_worker.get(p["worker"], 0) + 1
    reports = [str(work / f"{study}-{i}") for i in range(workers) if (work / f"{study}-{i}" / "report.json").is_file()]
    return {"study": study, "workers": workers, "wall_s": round(wall, 1), "trials": len(done),
            "trials_per_worker": per_worker, "search_end_s": points[-1]["t_s"], "history": points,
            "best": max((p["throughput"] for p in points if p["throughput"]), default=None), "reports": reports}


def _reached(run: dict, target: float, scale: float = 1.0) -> float | None:
    """Seconds until the run's first trial at or above `target` (its throughput divided by `scale`)."""
    return next((p["t_s"] for p in run["history"] if p["throughput"] and p["throughput"] / scale >= target), None)


def _baseline(run: dict) -> float:
    """The run's own eager baseline (trial 0), measured under the same machine load as its other trials."""
    return next(p["throughput"] for p in run["history"] if p["trial"] == 0)


def render(data: dict, command: str) -> str:
    """Markdown from the measured data: the time each run took to reach the same best, in absolute
    throughput and as a speedup over its own baseline trial (which corrects for the load the workers
    and the machine's other jobs put on each other)."""
    runs = data["runs"]
    target = min(r["best"] for r in runs)
    ratio = min(r["best"] / _baseline(r) for r in runs)
    for r in runs:
        r["reached_target_s"] = _reached(r, target)
        r["reached_ratio_s"] = _reached(r, ratio, _baseline(r))
    one, two = runs

    def gain(key: str) -> str:
        return f"{one[key] / two[key]:.2f}x" if one[key] and two[key] else "n/a"

    rows = [f"| {r['workers']} | {r['trials']} ({', '.join(f'{w}: {n}' for w, n in r['trials_per_worker'].items())}) | "
            f"{_baseline(r):.0f} | {r['best']:.0f} ({r['best'] / _baseline(r):.1f}x) | {r['reached_target_s']} | "
            f"{r['reached_ratio_s']} | {r['search_end_s']} | {r['wall_s']} |" for r in runs]
    machine = data["environment"]
    return "\n".join([
        f"# One vs two workers on one study ({machine['cpu']}, {machine['cores_total']} cores, PostgreSQL)", "",
        f"Model `{data['model']}` (fixtures/make.py), batch {data['batch_size']}, trial cap {data['trials']}, TPE; "
        "each worker pinned to its own core. Times are seconds from the launch of the run's first process.", "",
        f"- Same best throughput = {target:.0f} inferences/s (the lower of the two runs' best trials): reached "
        f"after {one['reached_target_s']} s with 1 worker, {two['reached_target_s']} s with 2 ({gain('reached_target_s')}).",
        f"- Same best speedup over the run's own eager baseline = {ratio:.2f}x: reached after "
        f"{one['reached_ratio_s']} s with 1 worker, {two['reached_ratio_s']} s with 2 ({gain('reached_ratio_s')}).",
        f"- All {data['trials']} trials done after {one['search_end_s']} s with 1 worker, {two['search_end_s']} s "
        f"with 2 ({gain('search_end_s')}).", "",
        "| workers | trials (per worker) | baseline infer/s | best infer/s (x baseline) | reached same best (s) | "
        "reached same speedup (s) | last trial done (s) | wall incl. finalists + report (s) |",
        "|---|---|---|---|---|---|---|---|", *rows, "",
        f"Load average before/after: {' '.join(f'{x:.1f}' for x in data['load_average_before'])} / "
        f"{' '.join(f'{x:.1f}' for x in data['load_average_after'])} (a shared 2-core machine: other jobs ran too; "
        "with two workers both cores are busy with trials, so every trial of that run, the baseline included, "
        "measures lower than with one).", "", f"Command: `{command}`", ""])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--model", default="mlp.pt2")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--out", default=str(ROOT / "reports" / "workers-cpu"))
    parser.add_argument("--render", action="store_true", help="only rewrite OUT.md from OUT.json")
    args = parser.parse_args()
    out = Path(args.out)
    if args.render:
        data = json.loads(out.with_suffix(".json").read_text())
        out.with_suffix(".md").write_text(render(data, data["command"]))
        print(out.with_suffix(".md").read_text())
        return
    url = os.environ.get("NAVIGATOR_TEST_POSTGRES_URL")
    if not url:
        raise SystemExit("set NAVIGATOR_TEST_POSTGRES_URL (.ci/setup.d/30-postgres.sh starts a server)")
    from fixtures.make import write_all
    from navigator import env

    work = Path(tempfile.mkdtemp(prefix="navigator-workers-"))
    model = write_all(work / "models")[args.model]
    load_before = os.getloadavg()
    runs = [_run(url, model, n, args.trials, args.batch_size, work) for n in (1, 2)]
    data = {"model": args.model, "batch_size": args.batch_size, "trials": args.trials, "runs": runs,
            "load_average_before": load_before, "load_average_after": os.getloadavg(),
            "environment": env.snapshot(), "command": "python benchmarks/workers.py " + " ".join(sys.argv[1:])}
    md = render(data, data["command"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
