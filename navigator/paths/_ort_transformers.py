"""ONNX Runtime's transformer optimizer and float16 conversion for the ONNX Runtime paths (not a path).

`fusion` (a conversion parameter) names the model type whose fusions onnxruntime.transformers.optimizer
applies (attention, SkipLayerNormalization, BiasGelu, ...; "bert" also covers encoders like RoBERTa
and ViT, "gpt2" decoders) or "off". `precision` fp16 converts the model with that package's
convert_float_to_float16: fp32 inputs and outputs (keep_io_types), types filled in by symbolic shape
inference first (a plain cast leaves value types behind that sessions refuse to load), and the ops
in FP32_OPS kept in fp32. Each result is one conversion-cache entry.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any, Iterator
from pathlib import Path

from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.lazy import require
from navigator.paths import _onnx_export
from navigator.records import Params
from navigator.source import ModelSource

FUSIONS = ("off", "bert", "gpt2")
# Kept in fp32 besides the package's own DEFAULT_OP_BLOCK_LIST: the pieces of an unfused LayerNorm or
# softmax whose intermediate values overflow or lose all precision in fp16 (x**2 sums, exp, log).
FP32_OPS = ("Pow", "ReduceMean", "ReduceSum", "Sqrt", "Reciprocal", "Exp", "Log", "Softplus")


def onnx_file(source: ModelSource, params: Params, cache: Cache, use_gpu: bool) -> Path:
    """The model.onnx a session of this trial loads: exported (or the user's), then fused and/or fp16."""
    model = _onnx_export.onnx_file(source, params, cache)
    fusion, precision = str(params.get("fusion", "off")), str(params.get("precision", "fp32"))
    if fusion == "off" and precision != "fp16":
        return model
    key: dict[str, Any] = {**{k: params[k] for k in ("exporter", "opset") if k in params}, "fusion": fusion,
                           "precision": precision, "use_gpu": use_gpu}
    return cache.get("onnx_transformers", key, lambda out: _convert(model, fusion, precision, use_gpu, out)) \
        / _onnx_export.ONNX_FILE


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The optimizer logs each fusion it tries and prints its statistics; failures are raised."""
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)


def _convert(src: Path, fusion: str, precision: str, use_gpu: bool, out: Path) -> None:
    onnx = require("onnx")
    transformers = require("onnxruntime.transformers.optimizer")
    with _quiet():
        if fusion == "off":
            from onnxruntime.transformers.onnx_model import OnnxModel

            model = OnnxModel(onnx.load(str(src)))
        else:
            # opt_level 1: ORT's basic graph rewrites first, which the fusions' patterns expect; higher
            # levels would tie the file to one execution provider.
            model = transformers.optimize_model(str(src), model_type=fusion, opt_level=1, use_gpu=use_gpu)
            if isinstance(model, str):  # what it returns when use_gpu finds no GPU provider to optimize with
                raise TrialError("ONNX Runtime's transformer optimizer found no GPU execution provider")
        if precision == "fp16":
            from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST

            model.convert_float_to_float16(keep_io_types=True, op_block_list=[*DEFAULT_OP_BLOCK_LIST, *FP32_OPS])
    model.save_model_to_file(str(out / _onnx_export.ONNX_FILE))
