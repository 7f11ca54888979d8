"""Evidence for `navigator check`: its exit codes on a planted regression and on repeated identical runs.

1. Baseline: `navigator optimize` on an MLP (64 -> 512 -> 512 -> 8) at batch 8.
2. Planted regression: the same network with 7 hidden 512x512 layers instead of 1, checked with
   `--model` (optimized, then re-measured interleaved with the baseline): expected exit 1.
3. No flapping: the unchanged baseline model checked with `--model` N times: expected exit 0 every time.
4. Report mode: a second independent `optimize` of the unchanged model compared with `--candidate`.

    python benchmarks/check_gate.py [--repeats 5] [--budget 30s] [--out reports/check-gate]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from navigator import env  # noqa: E402


def model(path: Path, hidden_layers: int) -> Path:
    import torch
    from torch import nn

    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(64, 512), nn.ReLU()]
    for _ in range(hidden_layers):
        layers += [nn.Linear(512, 512), nn.ReLU()]
    net = nn.Sequential(*layers, nn.Linear(512, 8)).eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.export.save(torch.export.export(net, (torch.randn(8, 64),), dynamic_shapes=({0: batch},)), str(path))
    return path


def cli(*args: str) -> tuple[int, str, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "navigator", *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode == 2:
        raise SystemExit(f"navigator {' '.join(args)}: {proc.stderr}")
    return proc.returncode, proc.stdout, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", default="30s")
    parser.add_argument("--out", default=str(ROOT / "reports" / "check-gate"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="navigator-gate-"))
    fast, slow = model(work / "mlp.pt2", 1), model(work / "mlp_slow.pt2", 7)
    common = ("--batch-size", "8", "--window", "0.1", "--no-progress")
    code, _, took = cli("optimize", "--model", str(fast), "--budget", args.budget, "--out", str(work / "base"), *common)
    assert code == 0, "baseline optimize failed"
    base = str(work / "base" / "report.json")
    runs = []

    def check(kind: str, *extra: str) -> None:
        code, summary, seconds = cli("check", "--baseline", base, *extra)
        runs.append({"kind": kind, "exit": code, "seconds": round(seconds, 1), "summary": summary})
        print(f"{kind}: exit {code} ({seconds:.0f} s)", flush=True)

    check("planted regression (--model, 7 hidden layers instead of 1)", "--model", str(slow), "--budget",
          args.budget, "--out", str(work / "slow"))
    for i in range(args.repeats):
        check(f"unchanged model, run {i + 1} (--model)", "--model", str(fast), "--budget", args.budget,
              "--out", str(work / f"same{i}"))
    cli("optimize", "--model", str(fast), "--budget", args.budget, "--out", str(work / "again"), *common)
    check("unchanged model, independent second optimize (--candidate)", "--candidate",
          str(work / "again" / "report.json"))

    snapshot = env.snapshot()
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"environment": snapshot, "runs": runs}, indent=2) + "\n")
    lines = ["# navigator check: planted regression and repeated identical runs", "",
             f"Machine: {snapshot.get('cpu')}, {snapshot.get('cores_usable')} usable cores, load average at the "
             f"end {snapshot.get('load_average')} (a shared machine). Command: `python benchmarks/check_gate.py "
             f"--repeats {args.repeats} --budget {args.budget}`; baseline optimize took {took:.0f} s.", "",
             "| run | exit code | seconds |", "|---|---|---|"]
    lines += [f"| {r['kind']} | {r['exit']} | {r['seconds']} |" for r in runs]
    lines += ["", "## Summaries as printed", ""]
    for r in runs:
        lines += [f"### {r['kind']}", ""] + [f"> {line}" for line in r["summary"].rstrip().splitlines()] + [""]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
