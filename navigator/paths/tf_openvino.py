"""TensorFlow SavedModel -> OpenVINO IR directly (openvino.convert_model reads SavedModels; a Keras
source is exported to one first), OpenVINO CPU runtime, without ONNX in between.

Runtime parameters, runner and Triton config (the openvino backend) are the openvino path's; the IR's
tensors get the source's names and output order.
"""

from __future__ import annotations

from pathlib import Path

from navigator.cache import Cache
from navigator.errors import TrialError
from navigator.lazy import installed, require
from navigator.paths import _openvino, _tf
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.runtimes.openvino import OpenVinoRunner
from navigator.source import ModelSource

NAME = "tf_openvino"
TIMEOUT_S = 600.0  # default trial timeout: SavedModel conversion
COST_S = 30.0  # expected trial cost (until the study measures its own): SavedModel conversion
DEVICES = ("cpu",)
FRAMEWORKS = ("tf",)
narrow = _openvino.narrow  # the inference precisions this CPU supports
precision = _openvino.precision
PRECISION_CLASSES = _openvino.PRECISION_CLASSES


def available() -> str | None:
    if not installed("openvino"):
        return "openvino is not installed (pip install 'triton-navigator[openvino]')"
    return None if installed("tensorflow") else "tensorflow is not installed (pip install 'triton-navigator[tf]')"


def _build(source: ModelSource, savedmodel: Path, out: Path) -> None:
    ov = require("openvino")
    model = ov.convert_model(str(savedmodel))
    by_key = {}
    for result, port in zip(model.get_results(), model.outputs):
        key = next((k for k in source.model.signature_outputs if k in port.get_names()), None)
        if key is not None:
            by_key[key] = result
    keys = source.model.signature_outputs
    if set(by_key) != set(keys):
        raise TrialError(f"OpenVINO's outputs {[sorted(p.get_names()) for p in model.outputs]} do not match the "
                         f"signature's {list(keys)}")
    results = [by_key[k] for k in keys]  # the source's output order
    for result, spec in zip(results, source.io.outputs):
        result.output(0).get_tensor().set_names({spec.name})
    ordered = ov.Model(results, model.get_parameters(), model.get_friendly_name())
    ov.save_model(ordered, str(out / _openvino.XML), compress_to_fp16=False)


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    savedmodel = _tf.savedmodel(source, cache)
    d = cache.get(NAME, {}, lambda out: _build(source, savedmodel, out))
    return Artifact(NAME, d, d.name, dict(params), d / _openvino.XML)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    assert artifact.file is not None
    return OpenVinoRunner(artifact.file, params)


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    return _openvino.model(artifact, params)
