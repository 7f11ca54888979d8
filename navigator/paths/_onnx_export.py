"""PyTorch (or TensorFlow, through _tf) -> ONNX, shared by the ONNX consumers (ort_cpu, openvino) and
cached under its own key.

Two exporters, chosen by the `exporter` conversion parameter: "dynamo" (torch.export-based,
torch.onnx.export(dynamo=True)) and "torchscript" (the tracing exporter). The batch axis is exported
as dynamic when the IOSpec says so. An ONNX source is used as it is.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any, Iterator

from navigator.errors import TrialError
from navigator.lazy import require
from navigator.paths._torch import example_args
from navigator.records import Params
from navigator.source import ModelSource
from navigator.trial.cache import Cache

ONNX_FILE = "model.onnx"


def _dynamic_shapes(source: ModelSource) -> Any:
    if not source.io.batched:
        return None
    torch = require("torch")
    batch = torch.export.Dim("batch")
    return tuple({0: batch} for _ in source.io.inputs)


def export_program(source: ModelSource) -> Any:
    """The source as a torch.export ExportedProgram with a dynamic batch axis where batched."""
    torch = require("torch")
    if source.kind == "exported":
        return source.model
    return torch.export.export(source.model, example_args(source), dynamic_shapes=_dynamic_shapes(source))


def _traceable(source: ModelSource) -> Any:
    """The module for the tracing exporter. An ExportedProgram's module refuses train(False), which
    that exporter calls, so it is wrapped in a module that stays in eval mode."""
    if source.kind != "exported":
        return source.model
    torch = require("torch")

    class EvalOnly(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            return self.inner(*args)

        def train(self, mode: bool = True) -> Any:
            return self

    return EvalOnly(source.model.module())


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters print progress and log tracebacks for fallbacks they recover from; a failure
    that matters is raised and recorded on the trial."""
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def _export(source: ModelSource, params: Params, out: Path) -> None:
    torch = require("torch")
    onnx = require("onnx")
    names = [t.name for t in source.io.inputs]
    outputs = [t.name for t in source.io.outputs]
    target = out / ONNX_FILE
    with _quiet():
        if params["exporter"] == "dynamo":
            program = export_program(source)
            onnx_program = torch.onnx.export(program, (), input_names=names, output_names=outputs,
                                             opset_version=int(params["opset"]), dynamo=True,
                                             external_data=False, verbose=False)
            onnx_program.save(str(target))
        else:
            axes = {n: {0: "batch"} for n in names + outputs} if source.io.batched else None
            torch.onnx.export(_traceable(source), example_args(source), str(target), input_names=names, output_names=outputs,
                              opset_version=int(params["opset"]), dynamic_axes=axes, dynamo=False)
    onnx.checker.check_model(str(target))
    model = onnx.load(str(target), load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset != int(params["opset"]):  # the dynamo exporter keeps its own opset when down-conversion fails
        raise TrialError(f"the {params['exporter']} exporter produced opset {opset}, not {params['opset']}")


def onnx_file(source: ModelSource, params: Params, cache: Cache) -> Path:
    """model.onnx for this source: exported with `exporter`/`opset` for torch, converted by tf2onnx at
    `opset` for TensorFlow, the file itself for ONNX."""
    if source.framework == "onnx":
        assert source.file is not None
        from navigator.source import onnx as onnx_source

        if not onnx_source.external_files(source.file):
            return source.file
        # External weights beside the user's file: one file in the cache, which every ONNX path, the
        # Triton repository and the python twin take whole.
        return cache.get("onnx_whole", {}, lambda out: onnx_source.save_whole(source.file, out / ONNX_FILE)) / ONNX_FILE
    if source.framework == "tf":
        from navigator.paths import _tf

        return _tf.onnx_file(source, params, cache)
    key = {"exporter": params.get("exporter", "torchscript"), "opset": params["opset"]}
    return cache.get("onnx_export", key, lambda out: _export(source, key, out)) / ONNX_FILE

