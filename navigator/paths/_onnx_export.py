"""PyTorch (or TensorFlow, through _tf) -> ONNX, shared by the ONNX consumers (ort_cpu, openvino) and
cached under its own key.

Two exporters, chosen by the `exporter` conversion parameter: "dynamo" (torch.export-based,
torch.onnx.export(dynamo=True)) and "torchscript" (the tracing exporter). Every dynamic axis of the
IOSpec is exported dynamic (torch.export Dims, the tracing exporter's dynamic_axes), the outputs get
the IOSpec's names (dict keys of the source's output), and the exported graph's dims are checked
against the IOSpec the Triton config is written from. An ONNX source is used as it is.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from pathlib import Path
from typing import Any, Iterator

from navigator.cache import Cache
from navigator.errors import TrialError, strip_ansi
from navigator.lazy import require
from navigator.paths._torch import example_args
from navigator.records import IOSpec, Params, TensorSpec
from navigator.source import ModelSource, iospec
from navigator.source import onnx as onnx_source
from navigator.source import torch as torch_source

ONNX_FILE = "model.onnx"


def _dim_name(name: str, axis: int) -> str:
    """A symbol for a dynamic axis: an identifier, as torch.export.Dim requires."""
    symbol = re.sub(r"\W", "_", f"{name}_axis{axis}")
    return symbol if symbol[0].isalpha() else f"d_{symbol}"


def _axis_names(source: ModelSource) -> dict[str, dict[int, str]]:
    """input name -> {dynamic axis: symbol}: "batch" for the batch axis, one symbol per group of
    other dynamic axes that share a size in the samples (they change size together)."""
    axes: dict[str, dict[int, str]] = {t.name: {} for t in source.io.inputs}
    if source.io.batched:
        for t in source.io.inputs:
            axes[t.name][0] = "batch"
    for group in iospec.dynamic_groups(source.io.inputs, source.samples):
        symbol = _dim_name(*group.axes[0])
        for name, axis in group.axes:
            axes[name][axis] = symbol
    return axes


def _dynamic_shapes(source: ModelSource) -> Any:
    """torch.export dynamic_shapes: a torch.export.Dim on every dynamic axis of every input."""
    axes = _axis_names(source)
    if not any(axes.values()):
        return None
    torch = require("torch")
    dims = {symbol: torch.export.Dim(symbol) for a in axes.values() for symbol in a.values()}
    return tuple({axis: dims[symbol] for axis, symbol in axes[t.name].items()} or None for t in source.io.inputs)


def _dynamic_axes(source: ModelSource) -> dict[str, dict[int, str]] | None:
    """The tracing exporter's dynamic_axes: the inputs' and the outputs' dynamic axes (an output's are
    those the IOSpec leaves open: the batch axis and those that follow an input's size)."""
    axes = {n: a for n, a in _axis_names(source).items() if a}
    for t in source.io.outputs:
        if any(d is None for d in t.shape):
            axes[t.name] = {i: "batch" if i == 0 and source.io.batched else _dim_name(t.name, i)
                            for i, d in enumerate(t.shape) if d is None}
    return axes or None


def export_program(source: ModelSource) -> Any:
    """The source as a torch.export ExportedProgram with every dynamic axis of its IOSpec dynamic."""
    torch = require("torch")
    if source.kind == "exported":
        return source.model
    return torch.export.export(source.model, example_args(source), dynamic_shapes=_dynamic_shapes(source))


def _traceable(source: ModelSource) -> Any:
    """The module for the tracing exporter: the source returning its output tensors as a flat tuple.
    A TorchScript source is traced through that wrapper first (its scripted code is kept as it is):
    the exporter cannot convert a scripted dict (prim::DictConstruct)."""
    module = torch_source.flat_module(source.kind, source.model)
    if source.kind != "torchscript":
        return module
    as_is = torch_source.flat_script(source.model, example_args(source))
    if as_is is not None:  # (a ScriptModule's truth value is its scripted __len__: test for None)
        return as_is
    return require("torch").jit.trace(module, example_args(source), strict=False, check_trace=False)


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


# What the exporters say when an operator has no ONNX conversion -> the operator's name.
UNSUPPORTED = (
    re.compile(r"Unsupported: ONNX export of operator ([\w:.]+)"),
    re.compile(r"Exporting the operator '([\w:.]+)' to ONNX opset version \d+ is not supported"),
    re.compile(r"No ONNX function found for <OpOverload\(op='([\w.]+)'"),
    re.compile(r"No decomposition for ([\w:.]+)"),
    re.compile(r"Unsupported FX nodes: \{'call_function': \['([\w:.]+)'"),
)
DATA_DEPENDENT = re.compile(r"Could not guard on data-dependent expression ([^\n]+?) \(unhinted")
SPECIALIZED = re.compile(r"You marked (\w+) as dynamic but your code specialized it to be a constant \((\d+)\)")


def exporter_error(exc: BaseException, exporter: str, opset: int) -> str:
    """One line for an exporter's failure, without terminal colours: the operator it cannot handle,
    or the dynamic axis the model fixes, where its message names them."""
    text = strip_ansi(str(exc))
    for pattern in UNSUPPORTED:
        if match := pattern.search(text):
            return f"the {exporter} exporter cannot handle operator {match.group(1)} (opset {opset})"
    if match := SPECIALIZED.search(text):
        return (f"the model fixes dynamic axis {match.group(1)} at {match.group(2)}: "
                "torch.export cannot keep it dynamic")
    if match := DATA_DEPENDENT.search(text):
        return (f"torch.export cannot capture the model: its control flow depends on input values "
                f"(a branch on {match.group(1)})")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:500]


def check_dims(model: Any, io: IOSpec) -> None:
    """Raise TrialError unless the ONNX graph's tensors take what the config (written from `io`)
    declares: same names, ranks, and a dynamic dimension wherever the config has -1."""
    inputs, outputs = onnx_source.io_specs(model)
    for want, have in ((io.inputs, inputs), (io.outputs, outputs)):
        found = {t.name: t for t in have}
        for spec in want:
            got: TensorSpec | None = found.get(spec.name)
            if got is None:
                raise TrialError(f"the ONNX model has no tensor {spec.name!r} (it has {sorted(found)})")
            if len(got.shape) != len(spec.shape):
                raise TrialError(f"ONNX tensor {spec.name!r} has rank {len(got.shape)}, the config declares {spec.shape}")
            for axis, (w, g) in enumerate(zip(spec.shape, got.shape)):
                if g is not None and w != g:
                    declared = "dynamic (-1)" if w is None else str(w)
                    raise TrialError(f"ONNX tensor {spec.name!r} fixes axis {axis} at {g}, the config declares {declared}")


def _export(source: ModelSource, params: Params, out: Path) -> None:
    torch = require("torch")
    onnx = require("onnx")
    names = [t.name for t in source.io.inputs]
    outputs = [t.name for t in source.io.outputs]
    target = out / ONNX_FILE
    opset = int(params["opset"])
    try:
        with _quiet():
            if params["exporter"] == "dynamo":
                onnx_program = torch.onnx.export(export_program(source), (), input_names=names, output_names=outputs,
                                                 opset_version=opset, dynamo=True, external_data=False, verbose=False)
                onnx_program.save(str(target))
            else:
                torch.onnx.export(_traceable(source), example_args(source), str(target), input_names=names,
                                  output_names=outputs, opset_version=opset, dynamic_axes=_dynamic_axes(source),
                                  dynamo=False)
    except Exception as exc:  # any exporter failure is this conversion's, in one clean line
        raise TrialError(exporter_error(exc, str(params["exporter"]), opset)) from None
    onnx.checker.check_model(str(target))
    model = onnx.load(str(target), load_external_data=False)
    got = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if got != opset:  # the dynamo exporter keeps its own opset when down-conversion fails
        raise TrialError(f"the {params['exporter']} exporter produced opset {got}, not {opset}")
    check_dims(model, source.io)


def max_opset(framework: str) -> int | None:
    """The highest ONNX opset every installed converter for this framework accepts: the tracing
    and dynamo torch exporters, or tf2onnx; None when that converter is not installed."""
    from navigator.lazy import installed

    if framework == "torch" and installed("torch"):
        constants = require("torch.onnx._constants")
        return min(constants.ONNX_MAX_OPSET, constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET)
    if framework == "tf" and installed("tf2onnx"):
        return max(require("tf2onnx.constants").OPSET_TO_IR_VERSION)
    return None


def onnx_file(source: ModelSource, params: Params, cache: Cache) -> Path:
    """model.onnx for this source: exported with `exporter`/`opset` for torch, converted by tf2onnx at
    `opset` for TensorFlow, the file itself for ONNX."""
    if source.framework == "onnx":
        assert source.file is not None
        from navigator.source import onnx as onnx_source

        file = source.file
        if not onnx_source.external_files(file):
            return file
        # External weights beside the user's file: one file in the cache, which every ONNX path, the
        # Triton repository and the python twin take whole.
        return cache.get("onnx_whole", {}, lambda out: onnx_source.save_whole(file, out / ONNX_FILE)) / ONNX_FILE
    if source.framework == "tf":
        from navigator.paths import _tf

        return _tf.onnx_file(source, params, cache)
    key = {"exporter": params.get("exporter", "torchscript"), "opset": params["opset"]}
    return cache.get("onnx_export", key, lambda out: _export(source, key, out)) / ONNX_FILE

