"""INT8 on the CPU without navigator: ONNX Runtime and OpenVINO sessions of one model timed side by side in
one process, to see what the INT8 paths' choices cost (reports/int8-cpu.md, "Why ort_int8 lost").

    python benchmarks/int8_direct.py resnet18 [--work /tmp/navigator-int8-cpu] [--threads 1,2] [--rounds 5]

Uses the model files of benchmarks/int8_cpu.py (made there when missing). Variants: ORT fp32; ORT static
QDQ S8S8 and U8S8 (per-channel MinMax, the op types and steps of ort_int8), U8S8 per-tensor, U8S8 with
Percentile calibration, U8S8 with the first and last Conv/MatMul/Gemm in fp32, U8S8 of every op type
quantize_static takes by default, dynamic; OpenVINO
f32 and bf16 (INFERENCE_PRECISION_HINT), NNCF INT8 (default, and the ends ignored; each with the f32 and
the bf16 hint for the layers left unquantized). For each: the ops
of the ORT model after the "all" graph level (SessionOptions.optimized_model_filepath), the top-1
agreement with the fp32 source on the 256 metric rows, and throughput at batch 8 in interleaved rounds
(each variant once per round, the order rotated), per thread count. Writes WORK/<model>/direct.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

BATCH = 8
Call = Callable[[dict[str, np.ndarray]], np.ndarray]


def export(files: dict[str, Path], d: Path) -> Path:
    """model.onnx as ort_cpu exports it by default (dynamo exporter, opset 18)."""
    import torch

    target = d / "model.onnx"
    if not target.is_file():
        program = torch.export.load(str(files["model"]))
        names = list(np.load(files["val"]).files)
        onnx_program = torch.onnx.export(program, (), input_names=names, output_names=["logits"], opset_version=18,
                                         dynamo=True, external_data=False)
        assert onnx_program is not None
        onnx_program.save(str(target))
    return target


def ort_variants(model: Path, cal: dict[str, np.ndarray], d: Path) -> dict[str, Path]:
    from onnxruntime import quantization as q
    from onnxruntime.quantization.registry import QDQRegistry
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from navigator.paths.ort_int8 import ends

    prepared = d / "prepared.onnx"
    quant_pre_process(str(model), str(prepared))
    # The op types ort_int8 quantizes (QDQRegistry); "u8s8_all_ops" takes quantize_static's own default,
    # which adds the QLinear-only ops (Add, Mul, Softmax, ...).
    u8 = {"activation_type": q.QuantType.QUInt8, "op_types_to_quantize": list(QDQRegistry)}
    s8 = {**u8, "activation_type": q.QuantType.QInt8}
    static = {"s8s8": s8, "u8s8": u8, "u8s8_per_tensor": {**u8, "per_channel": False},
              "u8s8_percentile": {**u8, "calibrate_method": q.CalibrationMethod.Percentile},
              "u8s8_ends": {**u8, "nodes_to_exclude": ends(prepared)},
              "u8s8_all_ops": {"activation_type": q.QuantType.QUInt8}}
    out = {"ort_fp32": model}
    for name, options in static.items():
        batches = iter([{k: v[i:i + 16] for k, v in cal.items()} for i in range(0, len(next(iter(cal.values()))), 16)])

        class Reader(q.CalibrationDataReader):  # type: ignore[misc, name-defined]
            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(batches, None)

        out[f"ort_{name}"] = d / f"{name}.onnx"
        q.quantize_static(str(prepared), str(out[f"ort_{name}"]), Reader(), quant_format=q.QuantFormat.QDQ,
                          weight_type=q.QuantType.QInt8, **{"per_channel": True, **options})
    out["ort_dynamic"] = d / "dynamic.onnx"
    q.quantize_dynamic(str(prepared), str(out["ort_dynamic"]), per_channel=True)
    return out


def nncf_variants(model: Path, cal: dict[str, np.ndarray], d: Path) -> dict[str, Path]:
    import nncf
    import openvino as ov

    from navigator.paths.openvino_int8 import ends

    samples = [{k: v[i:i + 1] for k, v in cal.items()} for i in range(len(next(iter(cal.values()))))]
    out = {}
    for name, ignore in (("ov_int8", False), ("ov_int8_ends", True)):
        m = ov.convert_model(str(model))
        scope = nncf.IgnoredScope(names=ends(m)) if ignore else None
        q = nncf.quantize(m, nncf.Dataset(samples), subset_size=len(samples), ignored_scope=scope)
        out[name] = d / f"{name}.xml"
        ov.save_model(q, str(out[name]), compress_to_fp16=False)
    return out


def fused_ops(model: Path) -> dict[str, int]:
    """Op counts of the model as ORT runs it at graph level "all"."""
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.optimized_model_filepath = str(model.with_suffix(".all.onnx"))
    so.log_severity_level = 3
    ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    return dict(collections.Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node).most_common())


def session(file: Path, threads: int, precision: str | None) -> Call:
    """An ORT session (precision None) or an OpenVINO compiled model at one stream and `threads`."""
    if precision is None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.log_severity_level = 3
        s = ort.InferenceSession(str(file), so, providers=["CPUExecutionProvider"])
        return lambda feed: s.run(None, feed)[0]
    import openvino as ov

    compiled = ov.Core().compile_model(str(file), "CPU", {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1",
                                                          "INFERENCE_NUM_THREADS": str(threads),
                                                          "INFERENCE_PRECISION_HINT": precision})
    request = compiled.create_infer_request()
    return lambda feed: request.infer(feed)[0]


def profile(file: Path, precision: str, feed: dict[str, np.ndarray], calls: int = 20) -> dict[str, float]:
    """OpenVINO's per-node timings (PERF_COUNT) at one thread: ms per call by node type/kernel, summed."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(file), "CPU", {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1",
                                                          "INFERENCE_NUM_THREADS": "1", "PERF_COUNT": "YES",
                                                          "INFERENCE_PRECISION_HINT": precision})
    request = compiled.create_infer_request()
    for _ in range(3):
        request.infer(feed)
    total: collections.Counter[str] = collections.Counter()
    for _ in range(calls):
        request.infer(feed)
        for p in request.profiling_info:
            if p.status == p.Status.EXECUTED:
                total[f"{p.node_type}/{p.exec_type}"] += p.real_time.total_seconds() * 1e3 / calls
    return {"total_ms": round(sum(total.values()), 3), **{k: round(v, 3) for k, v in total.most_common(10)}}


def agreement(call: Call, metric: dict[str, np.ndarray]) -> float:
    from int8_metric import agreement as agree

    return agree(lambda feed: [call(feed)], metric)


def interleave(calls: dict[str, Call], feed: dict[str, np.ndarray], rounds: int, window_s: float) -> dict[str, list[float]]:
    """Inferences/s of each call per round, the order rotated every round."""
    for call in calls.values():
        for _ in range(3):
            call(feed)
    names = list(calls)
    got: dict[str, list[float]] = {n: [] for n in calls}
    for r in range(rounds):
        for n in np.roll(names, -r):
            start, count = time.perf_counter(), 0
            while time.perf_counter() - start < window_s:
                calls[n](feed)
                count += 1
            got[n].append(count * BATCH / (time.perf_counter() - start))
    return got


def main() -> None:
    from int8_cpu import prepare

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=["resnet18", "encoder"])
    parser.add_argument("--work", default="/tmp/navigator-int8-cpu")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--window", type=float, default=1.5)
    args = parser.parse_args()
    files = prepare(args.model, Path(args.work))
    d = Path(args.work) / args.model / "direct"
    d.mkdir(exist_ok=True)
    model = export(files, Path(args.work) / args.model)
    cal, metric = dict(np.load(files["cal"])), dict(np.load(files["metric"]))
    onnx_files = ort_variants(model, cal, d)
    variants: dict[str, tuple[Path, str | None]] = {n: (f, None) for n, f in onnx_files.items()}
    variants |= {"ov_f32": (model, "f32"), "ov_bf16": (model, "bf16")}
    for n, f in nncf_variants(model, cal, d).items():  # what NNCF leaves unquantized in f32, or in bf16
        variants |= {n: (f, "f32"), f"{n}_bf16": (f, "bf16")}
    feed = {k: np.ascontiguousarray(v[:BATCH]) for k, v in dict(np.load(files["val"])).items()}
    report: dict[str, Any] = {"ops_at_level_all": {n: fused_ops(f) for n, f in onnx_files.items()},
                              "agreement": {n: agreement(session(f, 2, p), metric) for n, (f, p) in variants.items()},
                              "openvino_profile_1_thread": {n: profile(variants[n][0], str(variants[n][1]), feed) for n in
                                                            ("ov_f32", "ov_bf16", "ov_int8", "ov_int8_bf16")},
                              "throughput": {}}
    for threads in map(int, args.threads.split(",")):
        before = os.getloadavg()[0]
        got = interleave({n: session(f, threads, p) for n, (f, p) in variants.items()}, feed, args.rounds, args.window)
        base = np.asarray(got["ort_fp32"])
        report["throughput"][threads] = {"load_before": round(before, 2), "load_after": round(os.getloadavg()[0], 2),
                                         **{n: {"median": float(np.median(v)), "vs_ort_fp32": float(np.median(np.asarray(v) / base)),
                                                "rounds": [round(x, 1) for x in v]} for n, v in got.items()}}
    (d.parent / "direct.json").write_text(json.dumps(report, indent=2) + "\n")
    for threads, table in report["throughput"].items():
        print(f"{args.model}, batch {BATCH}, {threads} thread(s), load {table['load_before']} -> {table['load_after']}")
        for n in variants:
            t = table[n]
            print(f"  {n:20s} {t['median']:8.1f}/s  {t['vs_ort_fp32']:5.2f}x ort_fp32  top-1 agreement "
                  f"{report['agreement'][n]:.4f}")


if __name__ == "__main__":
    main()
