"""Serve-check a variant of a written deployment: parameters overridden (e.g. CUDA_GRAPHS=True), serving
knobs set, answers over HTTP/gRPC against the stored reference, perf_analyzer at each concurrency.

    python benchmarks/serve_variant.py OUT_DIR --set CUDA_GRAPHS=True --instances 2 --dynamic-batching \
        --concurrency 1,8 --batch-size 4 --atol 1e-4 --rtol 1e-3 --out reports/variant
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from navigator import serving  # noqa: E402
from navigator.records import to_dict  # noqa: E402
from navigator.triton import deployment  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--set", action="append", default=[], help="PARAM=VALUE for config.pbtxt parameters")
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--dynamic-batching", action="store_true")
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--atol", type=float, default=None)
    parser.add_argument("--rtol", type=float, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    written = deployment.load(next((args.out_dir / "model_repository").iterdir()))
    params = dict(written.model.parameters, **dict(kv.split("=", 1) for kv in args.set))
    variant = replace(written, model=replace(written.model, parameters=params),
                      serving=replace(written.serving, instances=args.instances,
                                      dynamic_batching=args.dynamic_batching))
    work = Path(tempfile.mkdtemp(prefix="navigator-variant-"))
    model_dir = variant.write(work / "model_repository")
    inputs, reference = serving.load_validation(args.out_dir / "validation")
    atol, rtol = serving.tolerances(args.out_dir)
    options = serving.ServingOptions("native", True, False, 0.0, serving.parse_concurrency(args.concurrency))
    report = serving.run(model_dir, inputs, reference, args.atol or atol, args.rtol or rtol, args.batch_size,
                         options, work / "serving")
    lines = [f"# Variant of {written.name}: {', '.join(args.set) or 'as written'}, {args.instances} instance(s), "
             f"dynamic batching {'on' if args.dynamic_batching else 'off'}", ""]
    lines += [f"- {c.protocol}: {'matches the source' if c.ok else 'WRONG: ' + c.reason} "
              f"(max abs err {max((o.max_abs for o in c.outputs), default=0.0):.2e})" for c in report.checks]
    for p in report.default.points if report.default else ():
        lines.append(f"- concurrency {p.concurrency}: {p.throughput:.1f} infer/s, p50 {p.p50_ms:.2f} ms, "
                     f"p99 {p.p99_ms:.2f} ms{'' if p.stable else ' (unstable)'}")
    lines += [f"- note: {n}" for n in report.notes]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(to_dict(report), indent=2) + "\n")
    print("\n".join(lines))
    sys.exit(0 if report.checks and all(c.ok for c in report.checks) else 1)


if __name__ == "__main__":
    main()
