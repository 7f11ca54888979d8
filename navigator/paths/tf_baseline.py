"""Runs the source TensorFlow model as it is (the baseline of TensorFlow sources): called eagerly, or
wrapped in tf.function with or without XLA (jit_compile). A SavedModel is called through its
serving_default signature, a graph already; `graph` wraps it once more so that XLA can compile it.

Triton's TensorFlow backend is deprecated since release 25.03 (server PR #8068), so by default this
path writes no config and the best ONNX Runtime / OpenVINO trial is deployed instead. For an older
server (--triton-server before 25.03) it writes a tensorflow_savedmodel config, with a warning; XLA
maps to optimization.graph.level 1, the TensorFlow backend's switch for it.
"""

from __future__ import annotations

from navigator.cache import Cache
from navigator.lazy import installed, require
from navigator.paths import _tf
from navigator.paths.base import Runner, Target, TritonTarget
from navigator.records import Artifact, Params, TritonModel
from navigator.source import ModelSource

NAME = "tf_baseline"
TIMEOUT_S = 300.0  # default trial timeout: XLA compiles on the first call
COST_S = 20.0  # expected trial cost (until the study measures its own): XLA compiles on the first call
DEVICES = ("cpu",)
FRAMEWORKS = ("tf",)
# TensorFlow runs on the CPU here: on a CUDA study the baseline is absent (the path does not run there).
BASELINE = (("tf", "cpu"), ("tf", "cuda"))
# The server runs the SavedModel's graph whichever mode was measured (there is no python twin for TF).
TWIN_ONLY = ("mode",)


def available() -> str | None:
    return None if installed("tensorflow") else "tensorflow is not installed (pip install 'triton-navigator[tf]')"


def convert(source: ModelSource, params: Params, cache: Cache, target: Target) -> Artifact:
    """The SavedModel Triton's TensorFlow backend would load (a Keras source is exported once)."""
    d = _tf.savedmodel(source, cache)
    return Artifact(NAME, d, d.name, dict(params), d)


def load(artifact: Artifact, source: ModelSource, params: Params) -> Runner:
    fn = source.model.fn
    if params.get("mode") == "graph":
        tf = require("tensorflow")
        fn = tf.function(fn, input_signature=_tf.signature_specs(source), jit_compile=bool(params.get("jit_compile")))
    # Keras: its layers; a SavedModel: the serving signature's graph (runtimes/precision.py)
    reads = source.model.model if source.kind == "keras" else source.model.model.signatures["serving_default"]
    return _tf.TFRunner(fn, source, reads)


def triton(artifact: Artifact, params: Params, target: TritonTarget) -> TritonModel:
    """tensorflow_savedmodel for a server older than 25.03 (as tf_trt's); refused for current ones."""
    return _tf.savedmodel_model(artifact, params, target)
